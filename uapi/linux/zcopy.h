/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * zcopy: zero-copy socket I/O through /dev/zcopy.
 *
 * This header is the ABI. Its rules:
 *  - structures use fixed-width types only, with explicit padding, and have
 *    the same size and layout for 32-bit and 64-bit user space (checked by
 *    selftests/host/uapi_layout.c), so compat_ioctl needs no translation;
 *  - user pointers travel as __u64 (u64_to_user_ptr() in the kernel);
 *  - every flags word rejects unknown bits with EINVAL, and every field
 *    named reserved or __pad must be zero on input, else EINVAL, so that
 *    they can be given a meaning later;
 *  - ioctl numbers are never reused: a replaced command gets a new number.
 */
#ifndef _UAPI_LINUX_ZCOPY_H
#define _UAPI_LINUX_ZCOPY_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define ZCOPY_DEVICE		"/dev/zcopy"
#define ZCOPY_ABI_VERSION	1

/* Capabilities reported in zcopy_info.features. */
#define ZCOPY_FEAT_SEND		(1ULL << 0)	/* ZCOPY_IOC_SEND, completion records */
#define ZCOPY_FEAT_STATS	(1ULL << 1)	/* ZCOPY_IOC_STATS */
#define ZCOPY_FEAT_POOL		(1ULL << 2)	/* mmap pool, ZCOPY_IOC_POOL_SEND */
#define ZCOPY_FEAT_RECV		(1ULL << 3)	/* receive area, ZCOPY_IOC_RECV */
#define ZCOPY_FEAT_RX_CAUSES	(1ULL << 4)	/* zcopy_stats.rx_copied_* */
#define ZCOPY_FEAT_FORWARD	(1ULL << 5)	/* ZCOPY_IOC_FORWARD, zcopy_stats.fwd_* */
#define ZCOPY_FEAT_COPY_SMALL	(1ULL << 6)	/* ZCOPY_COPIED_SMALL, tx_copied_small */
#define ZCOPY_FEAT_REGISTER	(1ULL << 7)	/* ZCOPY_IOC_REGISTER, ZCOPY_SEND_FIXED */
#define ZCOPY_FEAT_SEND_BATCH	(1ULL << 8)	/* ZCOPY_IOC_SEND_BATCH */
#define ZCOPY_FEAT_POOL_BATCH	(1ULL << 9)	/* ZCOPY_IOC_POOL_SEND_BATCH */
#define ZCOPY_FEAT_COPY_PROBING	(1ULL << 10)	/* ZCOPY_COPIED_MTU_PROBING */

/*
 * What a mapping of /dev/zcopy is, by its offset:
 *
 * ZCOPY_MMAP_POOL: the file's send pool, zeroed pages shared by the
 * application and the kernel. The first such mmap (MAP_SHARED, not
 * PROT_EXEC; PROT_WRITE needs the file opened O_RDWR, as for any shared
 * mapping) creates it with the mapping's size, up to the module's
 * max_pool_pages, charged to RLIMIT_MEMLOCK and to the caller's memory
 * cgroup; later ones map it again, no larger. The pool lives until the
 * file is closed and its last mapping is gone. Pool mappings are not
 * inherited by fork() (as MADV_DONTFORK; MADV_DOFORK fails with EINVAL),
 * and each is used whole: munmap(), mprotect(), mremap(), or madvise()
 * with advice that would change the mapping's flags, of part of one fails
 * with EINVAL.
 *
 * Only zcopy ever holds a pool page: nothing else can take a reference to
 * one. Whatever would pin or reference the pages behind a pool address
 * fails with EFAULT (or that subsystem's own error): vmsplice(), O_DIRECT
 * reads and writes, io_uring buffer registration, process_vm_readv() and
 * process_vm_writev(), MSG_ZEROCOPY, ZCOPY_IOC_SEND (send pool pages with
 * ZCOPY_IOC_POOL_SEND); madvise(MADV_DONTNEED) and advice meant for
 * ordinary memory fail with EINVAL. Plain reads and writes, read(2) into
 * the pool, write(2) and send(2) from it, and ptrace() or /proc/PID/mem
 * (which go through the mapping like a store) all work.
 *
 * A pool page is held from the moment a send takes it: by a send with a
 * completion record until the stack has let go of it (the record), by a
 * send by reference for good, as the receiver may keep the very page.
 * Any write to a held page, by any of the ways above, lands in a fresh
 * copy mapped at the same address: the page in flight never changes. So
 * does a write to a page the stack still has after the record came: from
 * Linux 6.5 a TCP MTU probe can keep the pages of the sends it merged
 * (see ZCOPY_COPIED_MTU_PROBING), and the write is counted in cow_copies.
 */
#define ZCOPY_MMAP_POOL		0x00000000ULL

/*
 * ZCOPY_MMAP_RECV: the file's receive area, where ZCOPY_IOC_RECV maps
 * received data one page-sized slot at a time. It is mapped read-only
 * (PROT_WRITE and PROT_EXEC are refused, and cannot be added later), sized
 * by the first such mmap up to max_recv_pages and charged to
 * RLIMIT_MEMLOCK, and not inherited by fork() (unless the application asks
 * with MADV_DOFORK: the child then sees the same slots). One mapping at a
 * time otherwise, used whole, as the pool's; advice that only drops or
 * reads pages (MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED)
 * works on part of it, as on any shared mapping.
 */
#define ZCOPY_MMAP_RECV		0x40000000ULL

/**
 * struct zcopy_info - what this module offers (ZCOPY_IOC_INFO)
 * @abi_version:	out: ZCOPY_ABI_VERSION of the module
 * @page_size:		out: PAGE_SIZE of the running kernel
 * @features:		out: ZCOPY_FEAT_* bits
 * @flags:		in: none defined, must be zero
 * @__pad:		must be zero
 * @reserved:		must be zero
 */
struct zcopy_info {
	__u32	abi_version;
	__u32	page_size;
	__u64	features;
	__u32	flags;
	__u32	__pad;
	__u64	reserved[4];
};

/**
 * struct zcopy_iovec - one user buffer
 * @base:	user address
 * @len:	length in bytes; zero-length entries are skipped
 */
struct zcopy_iovec {
	__u64	base;
	__u64	len;
};

/* zcopy_send.flags */
#define ZCOPY_SEND_DONTWAIT	(1U << 0)	/* as MSG_DONTWAIT */
#define ZCOPY_SEND_MORE		(1U << 1)	/* as MSG_MORE */
#define ZCOPY_SEND_FLAGS	(ZCOPY_SEND_DONTWAIT | ZCOPY_SEND_MORE)
/* Send from registered buffer @buf_index: see ZCOPY_IOC_REGISTER. */
#define ZCOPY_SEND_FIXED	(1U << 4)

/**
 * struct zcopy_send - send user memory without copying it (ZCOPY_IOC_SEND)
 * @sockfd:	in: a connected TCP or UDP socket, IPv4 or IPv6
 * @flags:	in: ZCOPY_SEND_*
 * @iov:	in: address of an array of struct zcopy_iovec
 * @iov_count:	in: entries in @iov, 1 to ZCOPY_MAX_IOV
 * @buf_index:	in: with ZCOPY_SEND_FIXED, the registered buffer (its
 *		index) that every entry of @iov lies in; else must be zero
 * @cookie:	in: any value; comes back in this send's completion record
 * @bytes:	out: bytes the socket accepted (fewer than asked on a
 *		non-blocking socket, a signal, or past the per-send page cap;
 *		a UDP datagram past the cap fails with EMSGSIZE instead)
 * @seq:	out: this send's sequence number on this zcopy fd, from 0
 * @offset:	out: where this send's bytes start in the fd's stream of sent
 *		bytes; completion records describe byte ranges of that stream
 * @reserved:	must be zero
 *
 * The pages are pinned read-only and handed to the socket as fragments;
 * they must not be written until the completion record covering them has
 * been read. Pool memory cannot be pinned (EFAULT): see ZCOPY_MMAP_POOL.
 * With ZCOPY_SEND_FIXED the pages are those of a registered buffer, pinned
 * already: a vector entry outside the buffer fails with EFAULT, an index
 * that names no buffer with ENOENT; the same rule holds for writing.
 * A send shorter than copy_below bytes is copied instead, whatever memory
 * it names, and its record (ZCOPY_COPIED_SMALL) is queued at once.
 * On success the ioctl returns 0; when nothing was sent, it fails with the
 * socket's error (EAGAIN, EPIPE, ...) and no record follows. One case
 * fails after sending: the results cannot be written back because another
 * thread unmapped or write-protected this struct while the call ran (it is
 * checked writable first). The call then fails with EFAULT, and the
 * record still comes, for a seq the application did not learn. The same
 * holds for ZCOPY_IOC_POOL_SEND and ZCOPY_IOC_FORWARD.
 */
struct zcopy_send {
	__s32	sockfd;
	__u32	flags;
	__u64	iov;
	__u32	iov_count;
	__u32	buf_index;
	__u64	cookie;
	__u64	bytes;
	__u64	seq;
	__u64	offset;
	__u64	reserved[4];
};

#define ZCOPY_MAX_IOV		1024

/**
 * struct zcopy_send_batch - several sends in one call (ZCOPY_IOC_SEND_BATCH,
 *			     ZCOPY_IOC_POOL_SEND_BATCH)
 * @sends:	in: address of an array of struct zcopy_send (SEND_BATCH), each
 *		taken as ZCOPY_IOC_SEND takes one, or of struct zcopy_pool_send
 *		(POOL_SEND_BATCH), each as ZCOPY_IOC_POOL_SEND takes one; the
 *		results of each are written back to it
 * @count:	in: entries in @sends, 1 to ZCOPY_MAX_BATCH
 * @flags:	in: none defined, must be zero
 * @done:	out: entries sent, in order from the first
 * @__pad:	must be zero
 * @reserved:	must be zero
 *
 * As sendmmsg(2): the entries are sent in order until one fails or sends
 * fewer bytes than it names (a non-blocking socket, a signal, a limit);
 * that short one counts in @done. The ioctl fails only when the first
 * entry fails, with that entry's errno; a later failure ends the batch
 * before the failing entry, which the application sends again to learn
 * its error. Each sent entry gets its sequence number and its record, as
 * from ZCOPY_IOC_SEND or ZCOPY_IOC_POOL_SEND. Entries in a row to the same
 * TCP socket with the same flags (and registered buffer), all copied
 * (shorter than the module's copy_below) or none, up to 64 KiB, are sent
 * together, as writev(2) sends its vectors; their records come merged, and
 * their pages are let go of together. As writev(2), copied entries sent
 * together may stop short before an entry whose memory faults: the entry
 * where they stopped counts, short. Results that cannot be written back
 * (the array unmapped by another thread meanwhile) end the batch before
 * that entry, as sendmmsg(2) does with a msg_len it cannot write: the
 * entry, and the rest of its run, were sent but are not counted.
 */
struct zcopy_send_batch {
	__u64	sends;
	__u32	count;
	__u32	flags;
	__u32	done;
	__u32	__pad;
	__u64	reserved[2];
};

#define ZCOPY_MAX_BATCH		1024

/**
 * struct zcopy_register - pin user memory once, send from it many times
 *			   (ZCOPY_IOC_REGISTER)
 * @addr:	in: the buffer's first byte (any alignment)
 * @len:	in: its length, 1 to ZCOPY_MAX_REGISTER_LEN bytes
 * @flags:	in: none defined, must be zero
 * @index:	out: the buffer's index, for zcopy_send.buf_index
 * @reserved:	must be zero
 *
 * The buffer's pages are pinned read-only and long-term, so that sends
 * carry what the application writes there later. On kernels before 6.2
 * the pages of a private mapping are pinned writable, as io_uring pins its
 * fixed buffers there (a read-only pin of memory shared copy-on-write
 * would keep a page the application's next write replaces), and a private
 * mapping the caller cannot write fails with EFAULT. They stay pinned
 * until it is unregistered (ZCOPY_IOC_UNREGISTER) or the file closed and
 * every send from it has completed; they count in the file's pinned
 * pages (max_fd_pages: ENOBUFS) and in RLIMIT_MEMLOCK (ENOBUFS). A send from
 * it (ZCOPY_SEND_FIXED) pins nothing, so costs less than one from plain
 * memory: registered buffers are for memory sent from again and again, as
 * io_uring's fixed buffers are. At most ZCOPY_MAX_REGISTERED per file
 * (ENOSPC). Pool memory cannot be registered, nor unmapped memory (EFAULT;
 * a partial pin is undone). Other errors of the kernel's long-term pin are
 * passed on: EOPNOTSUPP for memory that cannot be pinned long-term (fsdax),
 * ENOMEM or EBUSY for pages that could not be moved out of movable memory
 * first. A page of a private mapping still shared copy-on-write (a file's
 * page cache, a page shared with a parent since fork()) is copied once,
 * when it is pinned, as any long-term pin copies it. The buffer is the
 * file's: whoever holds the file (a child after fork(), a process it was
 * passed to) sends from the pages registered, not from its own memory.
 */
struct zcopy_register {
	__u64	addr;
	__u64	len;
	__u32	flags;
	__u32	index;
	__u64	reserved[2];
};

#define ZCOPY_MAX_REGISTERED	64
#define ZCOPY_MAX_REGISTER_LEN	(1ULL << 30)

/**
 * struct zcopy_unregister - forget a registered buffer (ZCOPY_IOC_UNREGISTER)
 * @index:	in: as ZCOPY_IOC_REGISTER returned it (ENOENT if none)
 * @flags:	in: none defined, must be zero
 * @reserved:	must be zero
 *
 * The index is free at once; the pages stay pinned until the sends in
 * flight from the buffer have completed, and are unpinned before the last
 * of their records is queued.
 */
struct zcopy_unregister {
	__u32	index;
	__u32	flags;
	__u64	reserved[2];
};

/*
 * zcopy_pool_send.flags, beyond ZCOPY_SEND_DONTWAIT and ZCOPY_SEND_MORE:
 * NOTIFY queues a completion record; ADDR says @offset is an address in a
 * mapping of the pool.
 */
#define ZCOPY_POOL_SEND_NOTIFY	(1U << 2)
#define ZCOPY_POOL_SEND_ADDR	(1U << 3)
#define ZCOPY_POOL_SEND_FLAGS	(ZCOPY_SEND_FLAGS | ZCOPY_POOL_SEND_NOTIFY | \
				 ZCOPY_POOL_SEND_ADDR)

/* zcopy_pool_send.seq and .stream_offset of a send without a record */
#define ZCOPY_NO_SEQ		(~0ULL)

/**
 * struct zcopy_pool_send - send from the pool (ZCOPY_IOC_POOL_SEND)
 * @sockfd:	in: a connected TCP or UDP socket, IPv4 or IPv6
 * @flags:	in: ZCOPY_SEND_* and ZCOPY_POOL_SEND_*
 * @offset:	in: first byte, as an offset in the pool, or with
 *		ZCOPY_POOL_SEND_ADDR as an address in a mapping of it
 * @len:	in: bytes to send, all within the pool
 * @cookie:	in: comes back in the completion record, if there is one
 * @bytes:	out: bytes the socket accepted
 * @seq:	out: as zcopy_send.seq, or ZCOPY_NO_SEQ without a record
 * @stream_offset: out: as zcopy_send.offset, or ZCOPY_NO_SEQ
 * @reserved:	must be zero
 *
 * The pages themselves are sent, never copied, except in a send shorter
 * than copy_below bytes (see ZCOPY_COPIED_SMALL), or one with a record
 * to a TCP socket that may send MTU probes (ZCOPY_COPIED_MTU_PROBING),
 * whose bytes are copied and whose pages are not held at all. The
 * application may write to the pool at once: see ZCOPY_MMAP_POOL. TCP
 * sends hand the pages over by reference, so the receiver gets the very
 * pages, unless ZCOPY_POOL_SEND_NOTIFY asks for a completion record; UDP
 * sends always queue one. A page handed over by reference may be kept by a receiver
 * for good, so it stays held (pool_pages_in_flight) and the next write to
 * it copies it. With records, reading them maps the pages they cover
 * writable again where the reader maps the pool: an application that
 * rewrites only pages whose record it has read takes neither a copy nor
 * a fault, unless the stack still has a page (see ZCOPY_MMAP_POOL).
 */
struct zcopy_pool_send {
	__s32	sockfd;
	__u32	flags;
	__u64	offset;
	__u64	len;
	__u64	cookie;
	__u64	bytes;
	__u64	seq;
	__u64	stream_offset;
	__u64	reserved[4];
};

/*
 * zcopy_completion.flags: how the bytes left, and if the stack copied some,
 * why: at send time, because the route's device lacks scatter-gather (TCP),
 * or scatter-gather or checksum offload, or the datagram needs IP
 * fragmentation or is built over several sends (UDP: a send with
 * ZCOPY_SEND_MORE or UDP_CORK, or one that adds to a datagram still being
 * built; the module copies those itself, as the stack does unless
 * UDP_SEGMENT is set), or the send is a TCP socket's first, which
 * TCP_FASTOPEN_CONNECT puts in the SYN (the stack copies it there; the
 * module copies it itself); on delivery over loopback; elsewhere on the way
 * (local delivery through a virtual device such as veth, a packet tap); or
 * because a datagram spans more pieces of pages than an skb holds
 * (MAX_SKB_FRAGS, 17), which the module then sends by copying. In the
 * ledger, the last is counted with tx_copied_not_offloaded.
 *
 * ZCOPY_COPIED_MTU_PROBING: the module copied the send, because the TCP
 * socket may send MTU probes: net.ipv4.tcp_mtu_probing is set, or was when
 * the socket started probing, which it then keeps doing. From Linux 6.5 a
 * probe takes the pages of the sends it merges without holding the sends,
 * which would complete while the probe still carries their pages. The
 * record is queued at once, a forward's (ZCOPY_FORWARD_NOTIFY) too; the
 * bytes are counted with tx_copied_not_offloaded (fwd_copied_not_offloaded
 * for a forward). Pool sends by reference give their pages for good and
 * are not copied. Before 6.5 a probe copies, and sends leave zero-copy.
 * Sends queued while the sysctl was 0 are not copied if it is set later,
 * and may be probed: the pool then copies a page on the write after the
 * record (see ZCOPY_MMAP_POOL), but pinned and registered memory is the
 * application's own, and a write after the record reaches the probe. Set
 * it before connecting.
 *
 * ZCOPY_COPIED_SMALL: the module copied the send itself, as write(2)
 * would, because it was shorter than the module parameter copy_below
 * (bytes; 0 never copies): below that size pinning the pages and waiting
 * for the stack to let go of them costs more than the copy. Nothing is
 * held after the ioctl returns, and the record is queued at once.
 */
#define ZCOPY_COMPL_ZEROCOPY		(1U << 0)
#define ZCOPY_COMPL_COPIED		(1U << 1)
#define ZCOPY_COPIED_NOT_OFFLOADED	(1U << 8)
#define ZCOPY_COPIED_LOOPBACK		(1U << 9)
#define ZCOPY_COPIED_STACK		(1U << 10)
#define ZCOPY_COPIED_FRAGS		(1U << 11)
#define ZCOPY_COPIED_SMALL		(1U << 12)
#define ZCOPY_COPIED_MTU_PROBING	(1U << 13)

/**
 * struct zcopy_completion - the stack has let go of sent pages
 * @cookie:	the cookie of the first send covered
 * @seq:	the sequence number of the first send covered
 * @offset:	first byte covered, in the fd's stream of sent bytes
 * @bytes:	bytes covered
 * @copied:	of which the stack copied (the rest left zero-copy)
 * @sends:	consecutive sends covered: @seq to @seq + @sends - 1
 * @flags:	ZCOPY_COMPL_* and ZCOPY_COPIED_*
 * @status:	0: every page was released; other values are reserved
 * @__pad:	zero
 *
 * Read from the zcopy fd with read(2), whole records only, in order of
 * @seq among those waiting (a send that completes late is read after the
 * records of later sends read before); the fd polls readable while
 * records wait. Records of consecutive sends with the same flags are
 * merged, in whatever order the sends complete, as long as neither has
 * been read. Records are never dropped: a send that could not be given
 * one fails with ENOSPC (read the records waiting, then retry).
 */
struct zcopy_completion {
	__u64	cookie;
	__u64	seq;
	__u64	offset;
	__u64	bytes;
	__u64	copied;
	__u32	sends;
	__u32	flags;
	__s32	status;
	__u32	__pad;
};

/* zcopy_rx_desc.flags */
#define ZCOPY_RX_MAPPED		(1U << 0)	/* the received page itself */
#define ZCOPY_RX_COPIED		(1U << 1)	/* copied into a page of ours */
#define ZCOPY_RX_EOR		(1U << 2)	/* ends a datagram (UDP) */

/**
 * struct zcopy_rx_desc - one piece of received data
 * @offset:	where it lies, as an offset in the receive area; page-aligned
 * @len:	bytes, from the start of the slot: a page when mapped
 * @flags:	ZCOPY_RX_*
 *
 * Received data is split into page-sized slots in stream order. A page
 * the network delivered whole and page-aligned (a sender's page-reference
 * frag) is mapped as it is; anything else (headers, partial or compound
 * pages, ordinary send() data) is copied into pages of ours, mapped the
 * same way. Each slot stays mapped until released, and is unmapped then.
 * A page mapped as it is holds what its sender's page holds: over a
 * network, the NIC's; on this machine, the sender's own page, which zcopy's
 * pool and the kernel's senders no longer write once it is sent, but which
 * a sender that can still write it can change (a packet socket's ring,
 * CAP_NET_RAW, spliced into the socket), as under TCP_ZEROCOPY_RECEIVE.
 * zcopy copies into a page of its own again only once nothing else holds
 * it: one that something took from the area (a vmsplice()d pipe, an
 * O_DIRECT write, a MSG_ZEROCOPY send, and wherever those took it) is left
 * to them as it is. As with any buffer given back, a slot's bytes are the
 * application's until it releases the slot and no longer.
 */
struct zcopy_rx_desc {
	__u64	offset;
	__u32	len;
	__u32	flags;
};

/* zcopy_recv.flags */
#define ZCOPY_RECV_DONTWAIT	(1U << 0)	/* as MSG_DONTWAIT */
#define ZCOPY_RECV_FLAGS	ZCOPY_RECV_DONTWAIT

#define ZCOPY_MAX_RX_DESC	1024

/**
 * struct zcopy_recv - receive into the receive area (ZCOPY_IOC_RECV)
 * @sockfd:	in: a connected TCP socket, or a UDP socket, IPv4 or IPv6
 * @flags:	in: ZCOPY_RECV_*
 * @desc:	in: address of an array of struct zcopy_rx_desc
 * @desc_count:	in: its room, 1 to ZCOPY_MAX_RX_DESC; out: entries filled
 * @timeout_ms:	in: how long a blocking receive waits; 0: as SO_RCVTIMEO
 * @max_bytes:	in: receive at most this much; 0: as much as fits
 * @release:	in: address of an array of area offsets (__u64) whose slots
 *		are released first, as by ZCOPY_IOC_RELEASE
 * @release_count: in: entries in @release, 0 for none
 * @__pad:	must be zero
 * @bytes:	out: bytes received, 0 at the end of the stream
 * @reserved:	must be zero
 *
 * Like recv(2): blocks until data arrives (unless ZCOPY_RECV_DONTWAIT or
 * O_NONBLOCK on the socket: EAGAIN), returns 0 bytes at the end of the
 * stream, and fails with the connection's error; with EPIPE if the socket
 * is disconnected (connect(2) to AF_UNSPEC) while the receive waits, with
 * EPERM under TCP_REPAIR, and as recv(2) where a security module refuses
 * to let it read the socket. The slots in @release stay released whatever the
 * receive then returns, and a receive that released some is not restarted
 * after a signal, even a stop and continue (SIGSTOP, a ptrace attach, the
 * freezer): EINTR, as signal(7) lists for other interfaces that cannot
 * restart. A receive with no free slot fails with ENOSPC. TCP data is
 * split into slots as described for struct zcopy_rx_desc; urgent data is
 * skipped (read inline with SO_OOBINLINE), as recv(2) does: an urgent byte
 * alone is no data, and the receive waits on. UDP gets the datagram at the
 * head of the queue, whole, whatever SO_PEEK_OFF says (which it moves back
 * by the datagram's length, as recv(2) does), copied, its last descriptor
 * flagged ZCOPY_RX_EOR; one that does not fit in @desc_count free slots or
 * @max_bytes fails with EMSGSIZE and stays queued; 0 bytes once shut down
 * for reading. Sockets whose data belongs to an upper layer (kTLS, a BPF
 * sockmap) are refused with EOPNOTSUPP, also when the layer takes over
 * while the receive waits; so are UDP sockets with UDP_GRO, whose
 * datagrams may come merged (their boundaries in a control message), and
 * IPv6 UDP sockets with IPV6_RECVPATHMTU, whose notices only recvmsg(2)
 * returns. Data
 * the kernel cannot copy (the unreadable frags of devmem TCP) fails with
 * EFAULT and stays queued; what came before it is received first. Arrays
 * this call cannot read or write fail with EFAULT before any data is
 * taken, but for one that another thread unmaps while the receive runs:
 * then the data is taken, and its slots stay held, unreported, until the
 * file is closed.
 */
struct zcopy_recv {
	__s32	sockfd;
	__u32	flags;
	__u64	desc;
	__u32	desc_count;
	__u32	timeout_ms;
	__u64	max_bytes;
	__u64	release;
	__u32	release_count;
	__u32	__pad;
	__u64	bytes;
	__u64	reserved[4];
};

/**
 * struct zcopy_release - give receive slots back (ZCOPY_IOC_RELEASE)
 * @offsets:	in: address of an array of area offsets (__u64), one per slot
 * @count:	in: entries, 1 to ZCOPY_MAX_RX_DESC
 * @flags:	in: none defined, must be zero
 * @reserved:	must be zero
 *
 * All or nothing: an offset that is not a slot of the area (EINVAL), or a
 * slot that holds nothing (ENOENT: released twice, or never received
 * into) fails the call and releases none. A slot that a forward still
 * holds is unmapped now and freed once the stack lets go of its page (see
 * struct zcopy_forward).
 */
struct zcopy_release {
	__u64	offsets;
	__u32	count;
	__u32	flags;
	__u64	reserved[2];
};

/**
 * struct zcopy_fwd_piece - received bytes to send on (ZCOPY_IOC_FORWARD)
 * @offset:	where they start, as an offset in the receive area: a
 *		descriptor's offset, plus how far into its slot
 * @len:	how many, 1 or more, all within the slot's data (the
 *		descriptor's @len): a piece never spans two slots
 * @__pad:	must be zero
 */
struct zcopy_fwd_piece {
	__u64	offset;
	__u32	len;
	__u32	__pad;
};

/*
 * zcopy_forward.flags, beyond ZCOPY_SEND_DONTWAIT and ZCOPY_SEND_MORE:
 * NOTIFY queues a completion record.
 */
#define ZCOPY_FORWARD_NOTIFY	(1U << 2)
#define ZCOPY_FORWARD_FLAGS	(ZCOPY_SEND_FLAGS | ZCOPY_FORWARD_NOTIFY)

#define ZCOPY_MAX_FWD_PIECES	1024
/* Pieces of one slot that forwards in flight may hold at once. */
#define ZCOPY_MAX_SLOT_FORWARDS	65535

/**
 * struct zcopy_forward - send received bytes on (ZCOPY_IOC_FORWARD)
 * @sockfd:	in: a connected TCP or UDP socket, IPv4 or IPv6
 * @flags:	in: ZCOPY_SEND_* and ZCOPY_FORWARD_*
 * @pieces:	in: address of an array of struct zcopy_fwd_piece, in the
 *		order their bytes are to be sent
 * @count:	in: entries, 1 to ZCOPY_MAX_FWD_PIECES
 * @__pad:	must be zero
 * @cookie:	in: comes back in the completion record, if there is one
 * @bytes:	out: bytes the socket accepted
 * @seq:	out: as zcopy_send.seq, or ZCOPY_NO_SEQ without a record
 * @stream_offset: out: as zcopy_send.offset, or ZCOPY_NO_SEQ
 * @reserved:	must be zero
 *
 * The router path: the pages of the receive area themselves become the
 * outgoing skb's fragments, the very pages the NIC wrote where the receive
 * mapped them, zcopy's own where it copied. Nothing is copied, unless the
 * stack does it on the way, which the ledger says (fwd_copied_*) and the
 * record too. The application may read what it received before sending it
 * on (to route by its headers), and may forward a slot, or part of one,
 * several times, to several sockets: from TCP or UDP, to TCP or UDP. A UDP
 * socket gets all the pieces as one datagram. TCP may take fewer bytes
 * than asked (@bytes says how many; O_NONBLOCK, ZCOPY_SEND_DONTWAIT, a
 * signal); a datagram is sent whole or not at all.
 *
 * A slot stays held while the stack holds its page: zcopy_stats
 * fwd_slots_held counts them. (From Linux 6.5, an MTU probe of a socket
 * that began probing after the forward was queued may still carry the page
 * when the forward completes, as for ZCOPY_COPIED_MTU_PROBING; the page is
 * not written meanwhile either, as below.) Releasing it meanwhile
 * (ZCOPY_IOC_RELEASE, or a receive's release list) succeeds and unmaps it
 * at once, but the slot is free for new data only once the stack has let
 * go: it still counts in rx_slots_used until then. No one writes to a page
 * that was received into the area while the stack holds it: the NIC's are
 * not reused while referenced, and zcopy copies into its own only while
 * nothing else holds them (see struct zcopy_rx_desc).
 *
 * Errors: EINVAL for a piece outside the area, of length 0, spanning two
 * slots or beyond its slot's data, or a nonzero pad; ENOENT for a piece
 * in a slot that holds nothing (never received into, or released); ENOBUFS
 * for a piece of a slot that ZCOPY_MAX_SLOT_FORWARDS pieces in flight
 * already hold; ENXIO without a receive area; ENOSPC when the file owes too many records
 * (NOTIFY); the socket's errors as ZCOPY_IOC_SEND gives them.
 */
struct zcopy_forward {
	__s32	sockfd;
	__u32	flags;
	__u64	pieces;
	__u32	count;
	__u32	__pad;
	__u64	cookie;
	__u64	bytes;
	__u64	seq;
	__u64	stream_offset;
	__u64	reserved[4];
};

/* zcopy_stats.flags */
/*
 * Totals of the module, not the fd: of every user's sends and receives,
 * readable by anyone who may open the device, as /proc/net/netstat is.
 */
#define ZCOPY_STATS_MODULE	(1U << 0)

/**
 * struct zcopy_stats - the ledger (ZCOPY_IOC_STATS)
 * @flags:		in: ZCOPY_STATS_*
 * @__pad:		must be zero
 * @sends:		sends that moved at least one byte
 * @send_bytes:		bytes accepted by sockets
 * @send_completions:	sends whose pages the stack let go of
 * @tx_zerocopy_bytes:	completed bytes that left without a copy
 * @tx_copied_bytes:	completed bytes the stack copied; by reason:
 * @tx_copied_not_offloaded: ... at send time (ZCOPY_COPIED_NOT_OFFLOADED,
 *			_FRAGS, _MTU_PROBING)
 * @tx_copied_loopback:	... on loopback (ZCOPY_COPIED_LOOPBACK)
 * @tx_copied_stack:	... elsewhere in the stack (ZCOPY_COPIED_STACK)
 * @sends_in_flight:	sends not yet completed (now)
 * @pages_pinned:	user pages pinned for sends (now)
 * @pages_pinned_peak:	highest @pages_pinned seen
 * @pages_pinned_total:	pages ever pinned for sends
 * @records_queued:	completion records waiting to be read (now)
 * @pool_pages:		pages in pools (now)
 * @pool_sends:		sends from a pool that moved at least one byte
 * @pool_send_bytes:	bytes they sent
 * @pool_send_copied_bytes: of which sent from a copy that zcopy made
 *			before taking the pages: sends shorter than
 *			copy_below (with a record or without), sends with
 *			a record to a socket that may send MTU probes, and
 *			sends into a corked UDP datagram. Copies made later
 *			(by the stack, or by zcopy at the send because the
 *			socket started probing or corking since) count in
 *			tx_copied_* only
 * @cow_copies:		pool pages copied because written while held, or
 *			while the stack still had them
 * @write_faults:	writes to pool pages that took a fault (the first
 *			touch of each page is one)
 * @pages_rearmed:	pool pages mapped writable again when their records
 *			were read
 * @pool_pages_in_flight: pool pages held by sends (now): see ZCOPY_MMAP_POOL
 * @receives:		receives that returned data
 * @rx_bytes_mapped:	bytes received as mapped pages
 * @rx_bytes_copied:	bytes received by copying, into mapped pages (charged
 *			to the receiver's memory cgroup); by where they were:
 * @rx_copied_linear:	... in an skb's own buffer: a driver's header buffer
 *			(small segments, a NIC without header split), data
 *			the stack pulled or collapsed into one buffer
 * @rx_copied_partial:	... in a fragment shorter than a page: the payload of
 *			a segment is not a multiple of the page size (MTU, MSS)
 * @rx_copied_unaligned: ... in a fragment that does not start a page, or
 *			from the middle of one (a receive began there)
 * @rx_copied_foreign:	... in a page that cannot be mapped: compound (most
 *			send() data), a file's, slab, or device memory
 * @rx_copied_cut:	... in a whole page that the receive's @max_bytes cut
 * @rx_copied_datagram:	... in a UDP datagram, always copied
 * @rx_slots_used:	receive slots holding data (now)
 * @fwd_sends:		forwards that moved at least one byte
 * @fwd_bytes:		bytes they sent
 * @fwd_completions:	forwards whose pages the stack let go of
 * @fwd_zerocopy_bytes:	completed bytes that left without a copy
 * @fwd_copied_bytes:	completed bytes the stack copied; by reason, as the
 *			tx_copied_* counters:
 * @fwd_copied_not_offloaded: ... at send time, or by the module
 *			(ZCOPY_COPIED_MTU_PROBING)
 * @fwd_copied_loopback: ... on loopback
 * @fwd_copied_stack:	... elsewhere in the stack
 * @fwd_slots_held:	receive slots held by forwards in flight (now)
 * @tx_copied_small:	the fourth reason of @tx_copied_bytes: sends shorter
 *			than copy_below, which the module copied
 *			(ZCOPY_COPIED_SMALL)
 * @reserved:		zero, for counters to come
 *
 * Counters only grow, except those marked (now). ZCOPY_IOC_STATS also takes
 * the structure of ABI 1's first headers, which ended at @rx_slots_used
 * with 7 reserved words (264 bytes): the ioctl number says which.
 */
struct zcopy_stats {
	__u32	flags;
	__u32	__pad;
	__u64	sends;
	__u64	send_bytes;
	__u64	send_completions;
	__u64	tx_zerocopy_bytes;
	__u64	tx_copied_bytes;
	__u64	tx_copied_not_offloaded;
	__u64	tx_copied_loopback;
	__u64	tx_copied_stack;
	__u64	sends_in_flight;
	__u64	pages_pinned;
	__u64	pages_pinned_peak;
	__u64	pages_pinned_total;
	__u64	records_queued;
	__u64	pool_pages;
	__u64	pool_sends;
	__u64	pool_send_bytes;
	__u64	pool_send_copied_bytes;
	__u64	cow_copies;
	__u64	write_faults;
	__u64	pages_rearmed;
	__u64	pool_pages_in_flight;
	__u64	receives;
	__u64	rx_bytes_mapped;
	__u64	rx_bytes_copied;
	__u64	rx_slots_used;
	__u64	rx_copied_linear;
	__u64	rx_copied_partial;
	__u64	rx_copied_unaligned;
	__u64	rx_copied_foreign;
	__u64	rx_copied_cut;
	__u64	rx_copied_datagram;
	__u64	fwd_sends;
	__u64	fwd_bytes;
	__u64	fwd_completions;
	__u64	fwd_zerocopy_bytes;
	__u64	fwd_copied_bytes;
	__u64	fwd_copied_not_offloaded;
	__u64	fwd_copied_loopback;
	__u64	fwd_copied_stack;
	__u64	fwd_slots_held;
	__u64	tx_copied_small;
	__u64	reserved[22];
};

#define ZCOPY_IOC_MAGIC		0xBB

#define ZCOPY_IOC_INFO		_IOWR(ZCOPY_IOC_MAGIC, 0x00, struct zcopy_info)
#define ZCOPY_IOC_SEND		_IOWR(ZCOPY_IOC_MAGIC, 0x01, struct zcopy_send)
#define ZCOPY_IOC_STATS		_IOWR(ZCOPY_IOC_MAGIC, 0x02, struct zcopy_stats)
#define ZCOPY_IOC_POOL_SEND	_IOWR(ZCOPY_IOC_MAGIC, 0x03, struct zcopy_pool_send)
#define ZCOPY_IOC_RECV		_IOWR(ZCOPY_IOC_MAGIC, 0x04, struct zcopy_recv)
#define ZCOPY_IOC_RELEASE	_IOWR(ZCOPY_IOC_MAGIC, 0x05, struct zcopy_release)
#define ZCOPY_IOC_FORWARD	_IOWR(ZCOPY_IOC_MAGIC, 0x06, struct zcopy_forward)
#define ZCOPY_IOC_REGISTER	_IOWR(ZCOPY_IOC_MAGIC, 0x07, struct zcopy_register)
#define ZCOPY_IOC_UNREGISTER	_IOW(ZCOPY_IOC_MAGIC, 0x08, struct zcopy_unregister)
#define ZCOPY_IOC_SEND_BATCH	_IOWR(ZCOPY_IOC_MAGIC, 0x09, struct zcopy_send_batch)
#define ZCOPY_IOC_POOL_SEND_BATCH _IOWR(ZCOPY_IOC_MAGIC, 0x0a, struct zcopy_send_batch)

#endif /* _UAPI_LINUX_ZCOPY_H */
