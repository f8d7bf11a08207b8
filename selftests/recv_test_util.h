/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for recv_test.c, on top of zcopy_test_util.h: a byte pattern
 * derived from the stream offset (so every received byte is checked where
 * it lands), the receive area and its ioctls, a receiver that checks each
 * descriptor of each ZCOPY_IOC_RECV, loopback connections, a pool sender
 * in a forked child (in the peer's netns if need be), MTUs, signals.
 *
 * The zc_* helpers come from zcopy_test_util.h; the rt_* ones are ours.
 * Nothing here uses the harness's ASSERT/EXPECT: helpers return -errno,
 * or fill rt_rx.msg, and the tests assert.
 */
#ifndef RECV_TEST_UTIL_H
#define RECV_TEST_UTIL_H

#include <grp.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include "zcopy_test_util.h"

#define RT_MIB		(1024 * 1024ULL)
#define RT_MAPPED_COPIED	(ZCOPY_RX_MAPPED | ZCOPY_RX_COPIED)
#define RT_RX_FLAGS	(ZCOPY_RX_MAPPED | ZCOPY_RX_COPIED | ZCOPY_RX_EOR)

/* An MTU whose TCP payload (with timestamps) is 15 pages: 61440 bytes. */
int rt_page_mtu(int family);

/* The index of the first non-zero byte of @buf, or @len. */
size_t rt_zero_until(const void *buf, size_t len);

/* ---- the receive area and its ioctls ---- */

/* mmap() the receive area of @zfd: the address, or MAP_FAILED with errno. */
void *rt_mmap_area(int zfd, size_t pages, int prot);

/* ---- a receiver that checks every descriptor ---- */

/* A slot the receiver holds: where, which stream bytes, how. */
struct rt_slot {
	uint64_t area_off;
	uint64_t stream_off;
	uint32_t len;
	uint32_t flags;
};

/*
 * The receiving side of one connection (or UDP socket) through one zcopy
 * fd and its area. Stream bytes are the pattern from offset 0 on (UDP: the
 * datagrams' payloads, one after the other, are that stream).
 */
struct rt_rx {
	int zfd;
	int sock;
	bool udp;
	const uint8_t *area;
	size_t pages;
	size_t ps;
	uint64_t off;		/* stream bytes received and checked */
	uint64_t mapped;	/* of which in ZCOPY_RX_MAPPED slots */
	uint64_t copied;	/* ... in ZCOPY_RX_COPIED slots */
	uint64_t receives;	/* receives that returned a descriptor */
	uint64_t last_bytes;	/* of the last receive */
	uint32_t last_n;	/* descriptors of the last receive */
	struct rt_slot *slots;	/* held, in the order received */
	size_t nslots;
	uint8_t *busy;		/* per area slot: held */
	struct zcopy_rx_desc desc[ZCOPY_MAX_RX_DESC];
	uint64_t rel[ZCOPY_MAX_RX_DESC];
	bool bad;		/* a receive broke a rule: see msg */
	char msg[512];
};

int rt_rx_init(struct rt_rx *rx, int zfd, int sock, bool udp,
	       const void *area, size_t pages);

void rt_rx_free(struct rt_rx *rx);

int __printf(2, 3)
	     rt_rx_bad(struct rt_rx *rx, const char *fmt, ...);

/* Forget slots [0, @n) of rx->slots: they were released. */
void rt_rx_forget(struct rt_rx *rx, size_t n);

/*
 * The descriptors of a receive that returned @bytes: each in a free slot
 * of the area, page-aligned, mapped (a whole page) or copied (the rest of
 * the page zero), in stream order, every byte the pattern's; for UDP one
 * datagram, copied, its last descriptor (only) with ZCOPY_RX_EOR. A
 * copied slot short of a page ends the receive or comes before a mapped
 * one: copied bytes are packed. Sets rx->bad on the first broken rule.
 */
void rt_rx_take(struct rt_rx *rx, uint32_t asked, uint32_t n, uint64_t bytes);

/*
 * One receive of up to @ndesc descriptors, releasing every slot held
 * first when @release (in the same call). 0 (rx->bad set if the result
 * broke a rule) or the receive's -errno.
 */
int rt_rx_once(struct rt_rx *rx, uint32_t ndesc, uint32_t flags,
	       uint32_t timeout_ms, uint64_t max_bytes, bool release);

/*
 * Receive until rx->off reaches @until (or EOF, or an error), each
 * receive waiting up to @timeout_ms; release as we go when @release.
 * 0, -ENODATA at an early EOF, or -errno.
 */
int rt_rx_until(struct rt_rx *rx, uint64_t until, uint32_t ndesc,
		uint32_t timeout_ms, bool release);

/* Release every slot held: 0 or -errno. */
int rt_rx_release_all(struct rt_rx *rx);

/* Every held slot still holds its bytes: 0, or -1 with rx->msg. */
int rt_rx_recheck(struct rt_rx *rx, const uint8_t *area);

/* ---- the pool ---- */

/* All of pool bytes [@off, @off + @len), with ZCOPY_POOL_SEND_* @flags: 0 or -errno. */
int rt_pool_send(int zfd, int sock, uint64_t off, uint64_t len, uint32_t flags);

/* ---- a sender in a forked child, in the peer's netns if need be ---- */

struct rt_tx_args {
	const char *netns;	/* NULL: the init netns */
	int family;
	const char *ip;		/* the receiver's */
	uint16_t port;
	uint64_t total;		/* stream bytes to send */
	bool pool;		/* pool sends by reference; else send() */
	bool notify;		/* with records: rewrite a chunk once they came */
	size_t pool_pages;	/* a ring of this many pages ... */
	size_t chunk_pages;	/* ... sent this many at a time */
};

/* Shared with the sender (MAP_SHARED): it writes, the test reads. */
struct rt_tx_res {
	int32_t done;
	int32_t err;		/* errno of the step that failed */
	char what[64];		/* that step */
	uint64_t bytes;		/* sent */
	uint64_t rec_bytes;	/* covered by the records (notify) */
	uint64_t rec_zerocopy;	/* of which in records that say ZEROCOPY only */
	struct zcopy_stats st;	/* the sender's fd's ledger, after sending */
};

void __noreturn rt_tx_fail(struct rt_tx_res *res, const char *what, int err);

/*
 * The sender: connects, and sends stream bytes [0, total): from a pool
 * mapped here (pools are not inherited by fork()), rewriting each chunk of
 * the ring before sending it, or with send(). Closes the socket, exits.
 */
void __noreturn rt_tx_main(const struct rt_tx_args *a, struct rt_tx_res *res);

/* Fork the sender: its pid, or -errno. */
pid_t rt_tx_start(const struct rt_tx_args *a, struct rt_tx_res *res);

/* ---- the network ---- */

/* `/usr/bin/ip [-n NETNS] link set DEV mtu MTU`: 0 or the failing status. */
int rt_set_mtu(const char *netns, const char *dev, int mtu);

/* ---- signals ---- */

void rt_sig_handler(int sig, siginfo_t *si, void *uc);

/*
 * Read (or write, when @write) the byte at @p, catching SIGSEGV and
 * SIGBUS: 0 if the access went through, else the signal, with its
 * si_code in *code and si_addr in *addr.
 */
int rt_probe(uint8_t *p, bool write, int *code, void **addr);

/* The PFN behind @addr (read first, so it is mapped), 0 if none or hidden. */
uint64_t rt_pfn(const void *addr);

void rt_nop_handler(int sig);

/* A handler for @sig that interrupts system calls (no SA_RESTART). */
void rt_catch(int sig);

/* The module's ledger, or all ones if it cannot be read. */
struct zcopy_stats rt_module_stats(int zfd);

#endif /* RECV_TEST_UTIL_H */
