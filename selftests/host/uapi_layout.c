// SPDX-License-Identifier: GPL-2.0
/*
 * The layout of every structure and ioctl number in uapi/linux/zcopy.h.
 *
 * Compiled for -m64 and -m32 with -Wpadded -Werror (no implicit padding),
 * and the two layouts compared by uapi_layout.sh: equal layouts mean equal
 * sizes, offsets and ioctl numbers, so compat_ioctl needs no translation.
 * Each structure's fields must tile it exactly, which also proves that no
 * field was left out of the table below.
 */
#include <stddef.h>

#include <linux/zcopy.h>

/*
 * Compiled with -S, never run (the host may not run 32-bit programs): each
 * macro leaves a line "->KIND NAME VALUES" in the assembly, as the kernel's
 * asm-offsets do, and uapi_layout.sh reads them back.
 */
#define EMIT(kind, name, fmt, ...) \
	asm volatile("\n.ascii \"->" kind " " name " " fmt "\"" : : __VA_ARGS__)
#define STRUCT(s)	EMIT("struct", #s, "%c0", "i" (sizeof(struct s)))
#define FIELD(s, f)	EMIT("field", #s "." #f, "%c0 %c1", \
			     "i" (offsetof(struct s, f)), "i" (sizeof(((struct s *)0)->f)))
#define END(s)		EMIT("end", #s, "%c0", "i" (sizeof(struct s)))
/* In 16-bit halves: an immediate operand is a signed 32-bit number on x86. */
#define IOCTL(c)	EMIT("ioctl", #c, "%c0 %c1", \
			     "i" ((unsigned int)(c) >> 16), "i" ((unsigned int)(c) & 0xffff))

int main(void)
{
	STRUCT(zcopy_info);
	FIELD(zcopy_info, abi_version);
	FIELD(zcopy_info, page_size);
	FIELD(zcopy_info, features);
	FIELD(zcopy_info, flags);
	FIELD(zcopy_info, __pad);
	FIELD(zcopy_info, reserved);
	END(zcopy_info);

	STRUCT(zcopy_iovec);
	FIELD(zcopy_iovec, base);
	FIELD(zcopy_iovec, len);
	END(zcopy_iovec);

	STRUCT(zcopy_send);
	FIELD(zcopy_send, sockfd);
	FIELD(zcopy_send, flags);
	FIELD(zcopy_send, iov);
	FIELD(zcopy_send, iov_count);
	FIELD(zcopy_send, buf_index);
	FIELD(zcopy_send, cookie);
	FIELD(zcopy_send, bytes);
	FIELD(zcopy_send, seq);
	FIELD(zcopy_send, offset);
	FIELD(zcopy_send, reserved);
	END(zcopy_send);

	STRUCT(zcopy_completion);
	FIELD(zcopy_completion, cookie);
	FIELD(zcopy_completion, seq);
	FIELD(zcopy_completion, offset);
	FIELD(zcopy_completion, bytes);
	FIELD(zcopy_completion, copied);
	FIELD(zcopy_completion, sends);
	FIELD(zcopy_completion, flags);
	FIELD(zcopy_completion, status);
	FIELD(zcopy_completion, __pad);
	END(zcopy_completion);

	STRUCT(zcopy_stats);
	FIELD(zcopy_stats, flags);
	FIELD(zcopy_stats, __pad);
	FIELD(zcopy_stats, sends);
	FIELD(zcopy_stats, send_bytes);
	FIELD(zcopy_stats, send_completions);
	FIELD(zcopy_stats, tx_zerocopy_bytes);
	FIELD(zcopy_stats, tx_copied_bytes);
	FIELD(zcopy_stats, tx_copied_not_offloaded);
	FIELD(zcopy_stats, tx_copied_loopback);
	FIELD(zcopy_stats, tx_copied_stack);
	FIELD(zcopy_stats, sends_in_flight);
	FIELD(zcopy_stats, pages_pinned);
	FIELD(zcopy_stats, pages_pinned_peak);
	FIELD(zcopy_stats, pages_pinned_total);
	FIELD(zcopy_stats, records_queued);
	FIELD(zcopy_stats, pool_pages);
	FIELD(zcopy_stats, pool_sends);
	FIELD(zcopy_stats, pool_send_bytes);
	FIELD(zcopy_stats, pool_send_copied_bytes);
	FIELD(zcopy_stats, cow_copies);
	FIELD(zcopy_stats, write_faults);
	FIELD(zcopy_stats, pages_rearmed);
	FIELD(zcopy_stats, pool_pages_in_flight);
	FIELD(zcopy_stats, receives);
	FIELD(zcopy_stats, rx_bytes_mapped);
	FIELD(zcopy_stats, rx_bytes_copied);
	FIELD(zcopy_stats, rx_slots_used);
	FIELD(zcopy_stats, rx_copied_linear);
	FIELD(zcopy_stats, rx_copied_partial);
	FIELD(zcopy_stats, rx_copied_unaligned);
	FIELD(zcopy_stats, rx_copied_foreign);
	FIELD(zcopy_stats, rx_copied_cut);
	FIELD(zcopy_stats, rx_copied_datagram);
	FIELD(zcopy_stats, fwd_sends);
	FIELD(zcopy_stats, fwd_bytes);
	FIELD(zcopy_stats, fwd_completions);
	FIELD(zcopy_stats, fwd_zerocopy_bytes);
	FIELD(zcopy_stats, fwd_copied_bytes);
	FIELD(zcopy_stats, fwd_copied_not_offloaded);
	FIELD(zcopy_stats, fwd_copied_loopback);
	FIELD(zcopy_stats, fwd_copied_stack);
	FIELD(zcopy_stats, fwd_slots_held);
	FIELD(zcopy_stats, tx_copied_small);
	FIELD(zcopy_stats, reserved);
	END(zcopy_stats);

	STRUCT(zcopy_pool_send);
	FIELD(zcopy_pool_send, sockfd);
	FIELD(zcopy_pool_send, flags);
	FIELD(zcopy_pool_send, offset);
	FIELD(zcopy_pool_send, len);
	FIELD(zcopy_pool_send, cookie);
	FIELD(zcopy_pool_send, bytes);
	FIELD(zcopy_pool_send, seq);
	FIELD(zcopy_pool_send, stream_offset);
	FIELD(zcopy_pool_send, reserved);
	END(zcopy_pool_send);

	STRUCT(zcopy_rx_desc);
	FIELD(zcopy_rx_desc, offset);
	FIELD(zcopy_rx_desc, len);
	FIELD(zcopy_rx_desc, flags);
	END(zcopy_rx_desc);

	STRUCT(zcopy_recv);
	FIELD(zcopy_recv, sockfd);
	FIELD(zcopy_recv, flags);
	FIELD(zcopy_recv, desc);
	FIELD(zcopy_recv, desc_count);
	FIELD(zcopy_recv, timeout_ms);
	FIELD(zcopy_recv, max_bytes);
	FIELD(zcopy_recv, release);
	FIELD(zcopy_recv, release_count);
	FIELD(zcopy_recv, __pad);
	FIELD(zcopy_recv, bytes);
	FIELD(zcopy_recv, reserved);
	END(zcopy_recv);

	STRUCT(zcopy_release);
	FIELD(zcopy_release, offsets);
	FIELD(zcopy_release, count);
	FIELD(zcopy_release, flags);
	FIELD(zcopy_release, reserved);
	END(zcopy_release);

	STRUCT(zcopy_fwd_piece);
	FIELD(zcopy_fwd_piece, offset);
	FIELD(zcopy_fwd_piece, len);
	FIELD(zcopy_fwd_piece, __pad);
	END(zcopy_fwd_piece);

	STRUCT(zcopy_forward);
	FIELD(zcopy_forward, sockfd);
	FIELD(zcopy_forward, flags);
	FIELD(zcopy_forward, pieces);
	FIELD(zcopy_forward, count);
	FIELD(zcopy_forward, __pad);
	FIELD(zcopy_forward, cookie);
	FIELD(zcopy_forward, bytes);
	FIELD(zcopy_forward, seq);
	FIELD(zcopy_forward, stream_offset);
	FIELD(zcopy_forward, reserved);
	END(zcopy_forward);

	STRUCT(zcopy_send_batch);
	FIELD(zcopy_send_batch, sends);
	FIELD(zcopy_send_batch, count);
	FIELD(zcopy_send_batch, flags);
	FIELD(zcopy_send_batch, done);
	FIELD(zcopy_send_batch, __pad);
	FIELD(zcopy_send_batch, reserved);
	END(zcopy_send_batch);

	STRUCT(zcopy_register);
	FIELD(zcopy_register, addr);
	FIELD(zcopy_register, len);
	FIELD(zcopy_register, flags);
	FIELD(zcopy_register, index);
	FIELD(zcopy_register, reserved);
	END(zcopy_register);

	STRUCT(zcopy_unregister);
	FIELD(zcopy_unregister, index);
	FIELD(zcopy_unregister, flags);
	FIELD(zcopy_unregister, reserved);
	END(zcopy_unregister);

	IOCTL(ZCOPY_IOC_INFO);
	IOCTL(ZCOPY_IOC_SEND);
	IOCTL(ZCOPY_IOC_STATS);
	IOCTL(ZCOPY_IOC_POOL_SEND);
	IOCTL(ZCOPY_IOC_RECV);
	IOCTL(ZCOPY_IOC_RELEASE);
	IOCTL(ZCOPY_IOC_FORWARD);
	IOCTL(ZCOPY_IOC_REGISTER);
	IOCTL(ZCOPY_IOC_UNREGISTER);
	IOCTL(ZCOPY_IOC_SEND_BATCH);
	IOCTL(ZCOPY_IOC_POOL_SEND_BATCH);

	return 0;
}
