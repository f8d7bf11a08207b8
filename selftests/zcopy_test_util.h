/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by zcopy's selftests: checksums and a seeded PRNG, buffers
 * between guard pages, the test network (loopback, the e1000e pair with its
 * peer in netns "peer", the veth pair with "vpeer"), a receiver in a forked
 * child that checksums all it gets, the zcopy ioctls, a log of sends and the
 * completion records that must cover them, the ledger, module parameters.
 *
 * Include kselftest_harness.h first: the zc_tx_* helpers at the end use its
 * ASSERT and EXPECT, so they take the test's _metadata, and are there only
 * with it. Everything else, compiled in zcopy_test_util.c, returns 0 or
 * -errno (or a message) and works in forked children too.
 */
#ifndef ZCOPY_TEST_UTIL_H
#define ZCOPY_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/zcopy.h>

#include "kselftest.h"
#include "libzcopy.h"

#define ZC_U64(x)	((unsigned long long)(x))

/* UDP GSO's and GRO's socket options (linux/udp.h), for C libraries without them. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT	103
#endif
#ifndef UDP_GRO
#define UDP_GRO		104
#endif

/* ---- time, checksums, PRNG ---- */

int64_t zc_now_ms(void);

void zc_sleep_ms(int ms);

/* The first @limit bytes of an iovec array, as one stream. */
uint64_t zc_fnv_iov(uint64_t h, const struct zcopy_iovec *iov,
		    unsigned int n, uint64_t limit);

/* splitmix64: a fixed seed gives the same run every time. */
uint64_t zc_rand(uint64_t *state);

/* Uniform in [lo, hi]. */
uint64_t zc_rand_range(uint64_t *state, uint64_t lo, uint64_t hi);

/* Is all of @buf the pattern from @off on? */
bool zc_check_all(const void *buf, uint64_t off, size_t len);

/* ---- memory ---- */

size_t zc_page_size(void);

size_t zc_pages_spanned(uint64_t base, uint64_t len);

/*
 * @len bytes (rounded up to pages), page aligned, between two PROT_NONE
 * guard pages; NULL on failure. Free with zc_unmap().
 */
void *zc_map(size_t len);

void zc_unmap(void *p, size_t len);

/*
 * A userfaultfd (O_NONBLOCK) with @len bytes from @addr registered for
 * missing-page faults: the fd, or -errno.
 */
int zc_uffd_open(void *addr, size_t len);

/*
 * The page of the next fault on @uffd; 0 if @done (an eventfd, or -1) is
 * written first, or nothing comes within 10 s.
 */
uintptr_t zc_uffd_next_fault(int uffd, int done);

/* ---- processes ---- */

/* Close every descriptor from 3 on but @a and @b (either may be -1). */
void zc_close_fds_except(int a, int b);

int zc_pin_cpu(int cpu);

/* waitpid() for up to @timeout_ms, then SIGKILL; the exit status or -1. */
int zc_wait_child(pid_t pid, int timeout_ms);

/*
 * Wait up to @timeout_ms for thread @tid of process @pid to sleep in the
 * kernel function @fn (its /proc stack, root only): 0, -ETIMEDOUT, or
 * -errno if the stack cannot be read.
 */
int zc_wait_task_in(pid_t pid, pid_t tid, const char *fn, int timeout_ms);

/* ---- the test network ---- */

enum zc_path {
	ZC_LOOPBACK,	/* 127.0.0.1, ::1 */
	ZC_NIC,		/* eth0 -> eth1 in netns "peer", through QEMU's hub */
	ZC_VETH,	/* veth0 -> veth1 in netns "vpeer" */
	ZC_NIC_HS4,	/* eth2 -> eth3: header split, a page of TCP payload over IPv4 */
	ZC_NIC_HS6,	/* eth4 -> eth5 in netns "far": the same over IPv6 */
	ZC_NIC_JUMBO,	/* eth6 -> eth7: header split at MTU 9000 */
};

struct zc_net {
	enum zc_path path;
	int family;	/* AF_INET, AF_INET6 */
	int type;	/* SOCK_STREAM (TCP), SOCK_DGRAM (UDP) */
};

const char *zc_path_name(enum zc_path path);

/* The network namespace of the receiving end, NULL for the init one. */
const char *zc_path_netns(enum zc_path path);

/* The sending device, for its MTU. */
const char *zc_path_dev(enum zc_path path);

const char *zc_peer_ip(const struct zc_net *net);
/* This side's address on @path. */
const char *zc_local_ip(enum zc_path path, int family);

socklen_t zc_sockaddr(int family, const char *ip, uint16_t port,
		      struct sockaddr_storage *ss);

/* Move the calling (single-threaded) process into netns @name. */
int zc_enter_netns(const char *name);

/* Why a path cannot be tested here (not zcopy's VM), or NULL. */
const char *zc_path_missing(enum zc_path path);

/* @dev's MTU here, or -1. */
int zc_dev_mtu(const char *dev);

int zc_path_mtu(enum zc_path path);

size_t zc_ip_hdr(int family);

/* The largest UDP payload: 65535 less the headers counted in it. */
size_t zc_udp_max(int family);

/* The largest UDP payload the path carries without IP fragmentation. */
size_t zc_udp_mtu_payload(const struct zc_net *net);

/* Pieces of pages an skb holds: 17 on both kernels (CONFIG_MAX_SKB_FRAGS). */
#define ZC_MAX_SKB_FRAGS	17

/*
 * Whether the module copies a send of @len bytes (shorter than its
 * copy_below parameter), read from sysfs and kept until zc_param_write().
 */
bool zc_send_copies(size_t len);

/*
 * The record flags a send must get: TCP and UDP datagrams that fit the MTU
 * leave zero-copy through the NIC, are copied by loopback and by veth's
 * local delivery; bigger UDP datagrams are fragmented, so copied at send;
 * a datagram whose vectors span more pages than an skb has fragments is
 * copied by the module (FRAGS), whatever its size, and so is a TCP send
 * where the sender may send MTU probes (MTU_PROBING, from 6.5; before,
 * 0: a probe's copy does not show in the record). 0 means unchecked.
 */
uint32_t zc_expected_flags_pages(const struct zc_net *net, size_t dgram,
				 uint32_t npages);

/* The same, for a send that spans no more pages than an skb holds. */
uint32_t zc_expected_flags(const struct zc_net *net, size_t dgram);

/* SO_SNDBUF/SO_RCVBUF, past the sysctl caps when root. */
int zc_set_buf(int fd, int opt, int val);

/* ---- sockets ---- */

uint16_t zc_port(int fd);

/*
 * A socket of @type bound to @ip on a free port, listening if TCP, with
 * SO_RCVBUF @rcvbuf if non-zero: the fd, or -errno.
 */
int zc_bind(int family, int type, const char *ip, int rcvbuf);

/* A socket of @type connected to @ip:@port: the fd, or -errno. */
int zc_dial(int family, int type, const char *ip, uint16_t port);

/* accept() within @timeout_ms: the fd, or -errno. */
int zc_accept(int lfd, int timeout_ms);

const char *zc_lo_ip(int family);

/*
 * A TCP connection over loopback: *cli sends, *srv receives (SO_RCVBUF
 * @rcvbuf if non-zero). 0 or -errno.
 */
int zc_tcp_pair(int family, int rcvbuf, int *cli, int *srv);

/*
 * Two UDP sockets over loopback: *rxs bound, *txs connected to it (and
 * *rxs to *txs when @connect_back). 0 or -errno.
 */
int zc_udp_pair(int family, bool connect_back, int *txs, int *rxs);

/* Stream bytes [@off, @off + @len) with write(): 0 or -errno. */
int rt_write_pattern(int sock, uint64_t off, size_t len);

/* Wait until @sock has @bytes to read (FIONREAD): 0 or -ETIMEDOUT. */
int rt_wait_readable(int sock, int bytes, int timeout_ms);

/* ---- the receiver: a forked child, in the peer's netns ---- */

#define ZC_RX_MAX_DGRAMS	4096
#define ZC_RX_BUF		(256 * 1024)
/*
 * A datagram the sender sent after the last it meant to is on its way
 * when that one arrives: this long catches it on every path we run.
 */
#define ZC_RX_LINGER_MS		100

struct zc_dgram {
	uint32_t len;
	uint32_t __pad;
	uint64_t hash;
};

/* Shared with the receiver (MAP_SHARED); it writes, the test reads. */
struct zc_rx_shared {
	uint64_t bytes;		/* received so far */
	uint64_t hash;		/* FNV-1a of the stream (TCP) */
	uint64_t ndgrams;	/* datagrams received so far (UDP) */
	uint64_t expect;	/* the test: datagrams to wait for (UDP) */
	int32_t err;		/* errno that ended the receiving, 0 at EOF */
	int32_t done;		/* the receiver finished */
	uint64_t extra[4];	/* for tests: a forked sender's results */
	struct zc_dgram dgram[ZC_RX_MAX_DGRAMS];
};

struct zc_rx_opts {
	int rcvbuf;	/* SO_RCVBUF(FORCE) when non-zero */
	bool hold;	/* read nothing until zc_rx_release() (or the end) */
};

struct zc_rx {
	pid_t pid;
	int ctl;	/* the test's end of the control pipe */
	uint16_t port;
	int type;
	struct zc_rx_shared *sh;
};

void zc_rx_stream(int s, struct zc_rx_shared *sh, char *buf);

/*
 * Datagrams until the test closes the control pipe and as many arrived as
 * it says it sent, then for ZC_RX_LINGER_MS more, so that one sent too
 * many is counted; a datagram missing for 3 s ends it too.
 */
void zc_rx_dgrams(int fd, int ctl, bool eof, struct zc_rx_shared *sh,
		  char *buf);

void __noreturn
zc_rx_main(const struct zc_net *net, const struct zc_rx_opts *o, int ready, int ctl,
	   struct zc_rx_shared *sh);

/*
 * Fork a receiver for @net: it binds to the peer's address on a free port
 * (rx->port), accepts one connection (TCP), and checksums everything it
 * reads into rx->sh. 0, or -errno of what failed in the child.
 */
int zc_rx_start(struct zc_rx *rx, const struct zc_net *net,
		const struct zc_rx_opts *opts);

/* Let a holding receiver read. */
int zc_rx_release(struct zc_rx *rx);

/*
 * The test sent all it will: for UDP, @dgrams datagrams. Wait for the
 * receiver to get them (TCP: to read to EOF, so shut the socket down
 * first) and exit: 0, -ETIMEDOUT (killed) or -ECHILD (it failed).
 */
int zc_rx_finish(struct zc_rx *rx, uint64_t dgrams, int timeout_ms);

/* Wait until the receiver has @n datagrams (UDP) or bytes (TCP). */
int zc_rx_wait_for(struct zc_rx *rx, uint64_t n, int timeout_ms);

void zc_rx_free(struct zc_rx *rx);

/* A socket of @net connected to the receiver's @port: fd or -errno. */
int zc_connect(const struct zc_net *net, uint16_t port, int sndbuf,
	       bool nonblock);

/* ---- the zcopy device ---- */

/* Nothing of a send in flight, and no page pinned. */
bool zc_tx_idle(const struct zcopy_stats *st);

/* Nothing of the module's pinned, in flight, queued or mapped. */
bool zc_module_idle(const struct zcopy_stats *st);

/*
 * Poll ZCOPY_IOC_STATS (@flags: 0 or ZCOPY_STATS_MODULE) until @done says
 * so: completions run from a workqueue. 0 or -ETIMEDOUT; @st (may be NULL)
 * gets the last read. With @zfd < 0, opens /dev/zcopy for the time of the call.
 */
int zc_poll_stats(int zfd, uint32_t flags, int timeout_ms, struct zcopy_stats *st,
		  bool (*done)(const struct zcopy_stats *st));

/* Wait until in-flight sends and pinned pages are both zero. */
int zc_wait_idle(int zfd, uint32_t flags, int timeout_ms,
		 struct zcopy_stats *st);

/* ---- sends and their completion records ---- */

struct zc_sent {
	uint64_t seq, offset, bytes, cookie;
	uint32_t eflags;	/* the record flags it must get, 0: unknown */
	uint32_t npages;	/* pages its iovecs span (of the bytes sent) */
	bool fixed;		/* from a registered buffer: pinned before */
	bool unpinned;		/* copied by the module: pinned nothing */
};

/* What one zcopy fd sent and the records read back from it. */
struct zc_log {
	struct zc_sent *sent;
	size_t nsent, sent_cap;
	struct zcopy_completion *rec;
	size_t nrec, rec_cap;
	uint64_t bytes;		/* sum of sent[].bytes */
	uint64_t covered;	/* sum of rec[].sends */
};

void zc_log_free(struct zc_log *log);

void zc_log_add(struct zc_log *log, const struct zcopy_send *s,
		uint32_t eflags, uint32_t npages);

/* Pages spanned by the first @limit bytes of an iovec array. */
uint32_t zc_iov_pages(const struct zcopy_iovec *iov, unsigned int n,
		      uint64_t limit);

/* The bytes an iovec array holds. */
uint64_t zc_iov_len(const struct zcopy_iovec *iov, unsigned int n);

void zc_log_add_rec(struct zc_log *log, const struct zcopy_completion *r);

/*
 * Read the records that wait, or that come within @timeout_ms, into @log:
 * the number read, 0 if none came, or -errno.
 */
int zc_log_records(int zfd, struct zc_log *log, int timeout_ms);

/* Read records until they cover every logged send: 0, -ETIMEDOUT, -errno. */
int zc_collect(int zfd, struct zc_log *log, int timeout_ms);

int zc_cmp_rec(const void *a, const void *b);

#define ZC_COPIED_REASONS (ZCOPY_COPIED_NOT_OFFLOADED | ZCOPY_COPIED_LOOPBACK | \
			   ZCOPY_COPIED_STACK | ZCOPY_COPIED_FRAGS | ZCOPY_COPIED_SMALL | \
			   ZCOPY_COPIED_MTU_PROBING)

/* A record's own consistency: NULL or what is wrong. */
const char *zc_rec_invalid(const struct zcopy_completion *r);

/*
 * The records of @log cover its sends exactly: seqs 0..nsent-1 and bytes
 * [0, total) once each, each record starting and ending on send
 * boundaries, with the first send's cookie, valid flags, and the expected
 * flags where known. 0, or -1 with what is wrong in @msg.
 */
int zc_check_records(const struct zc_log *log, char *msg, size_t len);

/* Format @fmt into @msg; -1, for "return zc_msg(...)". */
int __printf(3, 4)
	     zc_msg(char *msg, size_t len, const char *fmt, ...);

/*
 * A zcopy fd's ledger once all its sends completed and their records were
 * read: it agrees with @log and with itself. 0, or -1 with @msg.
 */
int zc_check_ledger(const struct zcopy_stats *st, const struct zc_log *log,
		    char *msg, size_t len);

/* ---- module parameters ---- */

int zc_param_read(const char *name, long *val);

int zc_param_write(const char *name, long val);

/* Whether the running kernel is older than @major.@minor. */
bool zc_kernel_before(int major, int minor);

/*
 * Make the LSM hook @hook ("socket_recvmsg") refuse this process (its pid
 * in the initial PID namespace, where the tests run) with -@err, by a BPF
 * LSM program: the fd of its link, whose close undoes it,
 * or -errno (ENOENT: no kernel BTF, or no such hook). Whether the hook
 * then runs depends on "bpf" being among the kernel's active LSMs.
 */
int zc_lsm_refuse(const char *hook, int err);

/* net.ipv4.tcp_mtu_probing of the caller's netns: 0 or -errno. */
int zc_mtu_probing_read(long *val);
int zc_mtu_probing_write(long val);

/* A sysctl by its path under /proc/sys ("net/core/..."): 0 or -errno. */
int zc_sysctl_read(const char *name, long *val);

/* A net.ipv4 sysctl of the caller's netns, by its name: 0 or -errno. */
int zc_ipv4_sysctl_read(const char *name, long *val);
int zc_ipv4_sysctl_write(const char *name, long val);

/*
 * Whether the module copies TCP sends on @net because the socket may send
 * MTU probes (ZCOPY_COPIED_MTU_PROBING: 6.5 on, with the sysctl set).
 */
bool zc_send_probe_copies(const struct zc_net *net);

/* A TcpExt counter of /proc/net/netstat, or -1. */
long long zc_tcpext(const char *name);

/* MTU probes that TCP has sent and seen end, so far (TcpExt). */
long long zc_tcp_mtu_probes(void);

/* The MSS that TCP sends with on @sock now (TCP_INFO), 0 if unknown. */
unsigned int zc_tcp_snd_mss(int sock);

/*
 * Wait up to @timeout_ms for TCP to send below @mss on @sock, as it does
 * once it probes for the path's MTU (the search starts low): 0 or
 * -ETIMEDOUT.
 */
int zc_tcp_wait_mss_below(int sock, unsigned int mss, int timeout_ms);

/*
 * What a test of a socket that starts MTU probing late changes, to be put
 * back: tcp_mtu_probing (0 until the test arms it), tcp_retries1, and a
 * black hole on veth0.
 */
struct zc_probe_env {
	long saved_probing;	/* >= 0: restore */
	long saved_retries1;	/* >= 0: restore */
	bool black_hole;
};

/* Save both sysctls and set tcp_mtu_probing to 0: 0 or -errno. */
int zc_probe_env_init(struct zc_probe_env *e);

/*
 * Drop every packet that leaves over veth0 (netem), or no longer: 0 or
 * tc's failing status. TCP sees its segments sent, and times out.
 */
int zc_probe_env_black_hole(struct zc_probe_env *e, bool on);

/* Let TCP probe after its first timeout: 0 or -errno. */
int zc_probe_env_arm(struct zc_probe_env *e);

/* Put back what was changed. */
void zc_probe_env_restore(struct zc_probe_env *e);

/*
 * The selftests' own module (zcopy_testmod/): it holds up returns from a
 * function (its parameter "symbol"), to open a race window wide, or makes
 * them return "retval", to reach an error path. The VM's initramfs carries it; elsewhere loading it fails with
 * ENOENT, and the test that needs it skips.
 */
#define ZC_TESTMOD_KO	"/lib/modules/zcopy_testmod.ko"

/* Load it with @params ("name=value ..."), unloading a stale one: 0 or -errno. */
int zc_testmod_load(const char *params);

int zc_testmod_unload(void);

/* Its parameter @name, read into *@val or written: 0 or -errno. */
int zc_testmod_read(const char *name, long *val);
int zc_testmod_write(const char *name, long val);

/* ---- a sender and its receiver, for harness tests ---- */

struct zc_tx {
	struct zc_net net;
	int zfd;
	int sock;
	bool stats;		/* the module has ZCOPY_FEAT_STATS */
	struct zc_rx rx;
	struct zc_log log;	/* of zfd */
	uint64_t bytes;		/* the stream sent, all fds (TCP) */
	uint64_t hash;
	struct zc_dgram *dg;	/* the datagrams sent, in order (UDP) */
	size_t ndg;
	uint64_t cork_len;	/* a UDP datagram being built with SEND_MORE */
	uint64_t cork_hash;
	bool corked;		/* UDP_CORK is set (zc_tx_cork()) */
	unsigned int window;	/* datagrams sent ahead of the receiver */
	int fixed;		/* >= 0: send from this registered buffer */
};

void zc_tx_fini(struct zc_tx *t);

/*
 * One ZCOPY_IOC_SEND on @sock through @zfd: on success it is logged in
 * @log, its bytes in the stream and, for UDP, the datagram they end.
 * 0 or -errno. UDP sends wait until the receiver is within t->window.
 */
int zc_tx_send_once(struct zc_tx *t, int zfd, int sock, struct zc_log *log,
		    const struct zcopy_iovec *iov, uint32_t n, uint32_t flags,
		    uint64_t cookie, struct zcopy_send *out);

/*
 * @iov's bytes, which the test sent on t->sock itself, are in the stream;
 * for UDP, with MSG_MORE: in the datagram being built.
 */
void zc_tx_add_sent(struct zc_tx *t, const struct zcopy_iovec *iov);

/*
 * Set or clear UDP_CORK on t->sock: while set, sends build one datagram,
 * which clearing it sends. 0 or -errno.
 */
int zc_tx_cork(struct zc_tx *t, bool on);

/*
 * @n single-vector sends of @iov[i] on t->sock, with ZCOPY_SEND_* @flags[i]
 * (@flags may be NULL), in ZCOPY_IOC_SEND_BATCH calls of at most
 * @per_call, each logged as zc_tx_send_once() logs one; an entry sent
 * short is sent on from where it stopped. 0 or -errno.
 */
int zc_tx_send_batch(struct zc_tx *t, const struct zcopy_iovec *iov, const uint32_t *flags,
		     uint32_t n, uint32_t per_call);

/* A single-vector send @s of @iov, made some other way, logged as those are. */
void zc_tx_log_sent(struct zc_tx *t, const struct zcopy_iovec *iov,
		    const struct zcopy_send *s);

/*
 * Step iov[first, n) past @done bytes sent and any empty entries after
 * them: the index of the first entry left to send.
 */
uint32_t zc_iov_advance(struct zcopy_iovec *iov, uint32_t first, uint32_t n,
			uint64_t done);

/*
 * Send all of an iovec array on t->sock through t->zfd: one datagram
 * (UDP: the send must take all of it), or as many sends as it takes (TCP:
 * a send may stop short, at the page cap or a signal). 0 or -errno.
 */
int zc_tx_sendv(struct zc_tx *t, const struct zcopy_iovec *iov, uint32_t n,
		uint32_t flags, uint64_t cookie);

/* A buffer: for UDP, as datagrams of the largest size and the rest. */
int zc_tx_send_buf(struct zc_tx *t, const void *buf, size_t len);

/*
 * Put data in flight (with a holding receiver and small buffers): sends of
 * @chunk bytes from @buf with ZCOPY_SEND_DONTWAIT until one is refused, at
 * most @max_sends (0: no limit). The number of sends made; *err gets the
 * refusal's errno, 0 if all of @size went.
 */
unsigned int zc_tx_fill(struct zc_tx *t, char *buf, size_t size, size_t chunk,
			unsigned int max_sends, int *err);

/* ---- what tests assert through: only with the kselftest harness ---- */
#ifdef __KSELFTEST_HARNESS_H

/*
 * Once every fd is closed: wait up to @timeout_ms for the module to hold
 * nothing (completions run from a workqueue), then expect it, and every
 * byte sent accounted as zero-copied or copied. Its ledger goes to @st.
 */
static inline void zc_expect_module_idle(struct __test_metadata *_metadata, int zfd,
			   int timeout_ms, struct zcopy_stats *st)
{
	int ret = zc_poll_stats(zfd, ZCOPY_STATS_MODULE, timeout_ms, st, zc_module_idle);

	/* A timeout is for the checks below to name. */
	ASSERT_TRUE(!ret || ret == -ETIMEDOUT) TH_LOG("ZCOPY_IOC_STATS: %s", strerror(-ret));
	EXPECT_EQ(0, st->pages_pinned) TH_LOG("leak: %llu pages still pinned",
					      ZC_U64(st->pages_pinned));
	EXPECT_EQ(0, st->sends_in_flight) TH_LOG("%llu sends still in flight",
						 ZC_U64(st->sends_in_flight));
	EXPECT_EQ(0, st->pool_pages_in_flight) TH_LOG("%llu pool pages still in flight",
						      ZC_U64(st->pool_pages_in_flight));
	EXPECT_EQ(0, st->records_queued) TH_LOG("%llu records queued with every fd closed",
						ZC_U64(st->records_queued));
	EXPECT_EQ(0, st->pool_pages) TH_LOG("leak: %llu pool pages", ZC_U64(st->pool_pages));
	EXPECT_EQ(0, st->rx_slots_used) TH_LOG("leak: %llu receive slots",
					       ZC_U64(st->rx_slots_used));
	EXPECT_EQ(0, st->fwd_slots_held) TH_LOG("leak: %llu receive slots held by forwards",
						ZC_U64(st->fwd_slots_held));
	EXPECT_EQ(st->sends, st->send_completions);
	EXPECT_EQ(st->send_bytes, st->tx_zerocopy_bytes + st->tx_copied_bytes);
	EXPECT_EQ(st->fwd_sends, st->fwd_completions);
	EXPECT_EQ(st->fwd_bytes, st->fwd_zerocopy_bytes + st->fwd_copied_bytes);
}

/*
 * Open /dev/zcopy for @net; the reason to skip, or NULL. Fails the test
 * when the device is there but does not open.
 */
static inline const char *zc_tx_init(struct __test_metadata *_metadata, struct zc_tx *t,
		       enum zc_path path, int family, int type)
{
	uint64_t feat;

	memset(t, 0, sizeof(*t));
	t->zfd = -1;
	t->sock = -1;
	t->rx.ctl = -1;
	t->hash = ZC_FNV_INIT;
	t->window = 16;
	t->fixed = -1;
	t->net = (struct zc_net){ path, family, type };
	/* A dead receiver must fail a send, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	t->zfd = zc_open();
	if (t->zfd < 0 && errno == ENOENT)
		return ZCOPY_DEVICE " is missing: zcopy.ko is not loaded";
	if (t->zfd < 0)
		return NULL;	/* the caller asserts */
	feat = zc_features(t->zfd);
	if (!(feat & ZCOPY_FEAT_SEND))
		return "the module has no ZCOPY_FEAT_SEND";
	t->stats = feat & ZCOPY_FEAT_STATS;
	t->dg = calloc(ZC_RX_MAX_DGRAMS, sizeof(*t->dg));
	if (!t->dg)
		return "out of memory";
	/*
	 * Loopback hands each datagram to the backlog of the CPU that sent
	 * it: one CPU keeps them in order.
	 */
	if (type == SOCK_DGRAM)
		zc_pin_cpu(0);
	return zc_path_missing(path);
}

/* Start the receiver and connect t->sock to it. */
static inline void zc_tx_start(struct __test_metadata *_metadata, struct zc_tx *t,
		 bool hold, int rcvbuf, int sndbuf, bool nonblock)
{
	struct zc_rx_opts o = { .rcvbuf = rcvbuf, .hold = hold };
	int ret;

	ret = zc_rx_start(&t->rx, &t->net, &o);
	ASSERT_EQ(0, ret) TH_LOG("receiver: %s", strerror(-ret));
	t->sock = zc_connect(&t->net, t->rx.port, sndbuf, nonblock);
	ASSERT_LE(0, t->sock) TH_LOG("connect to %s port %u: %s", zc_peer_ip(&t->net),
				     t->rx.port, strerror(-t->sock));
}

/* The receiver got exactly what was sent, in order. */
static inline void zc_tx_check_data(struct __test_metadata *_metadata, struct zc_tx *t)
{
	struct zc_rx_shared *sh;
	size_t i, bad = 0;
	int ret;

	if (t->net.type == SOCK_STREAM && t->sock >= 0)
		ASSERT_EQ(0, shutdown(t->sock, SHUT_WR));
	ret = zc_rx_finish(&t->rx, t->ndg, 30000);
	sh = t->rx.sh;
	ASSERT_EQ(0, ret) TH_LOG("receiver: %s after %llu bytes, %llu datagrams",
				 strerror(-ret), ZC_U64(sh->bytes), ZC_U64(sh->ndgrams));
	EXPECT_EQ(0, sh->err) TH_LOG("receiver: %s", strerror(sh->err));
	if (t->net.type == SOCK_STREAM) {
		EXPECT_EQ(t->bytes, sh->bytes);
		EXPECT_EQ(t->hash, sh->hash) TH_LOG("the stream's checksum differs");
		return;
	}
	ASSERT_EQ(t->ndg, sh->ndgrams) TH_LOG("datagrams lost or added");
	for (i = 0; i < t->ndg && bad < 5; i++) {
		if (t->dg[i].len == sh->dgram[i].len && t->dg[i].hash == sh->dgram[i].hash)
			continue;
		bad++;
		EXPECT_EQ(t->dg[i].len, sh->dgram[i].len) TH_LOG("datagram %zu", i);
		EXPECT_EQ(t->dg[i].hash, sh->dgram[i].hash) TH_LOG("datagram %zu checksum", i);
	}
}

/* The records of @zfd cover what @log says it sent; then its ledger. */
static inline void zc_tx_check_records(struct __test_metadata *_metadata, struct zc_tx *t,
			 int zfd, struct zc_log *log)
{
	struct zcopy_stats st;
	char msg[512];
	int ret;

	ret = zc_collect(zfd, log, 20000);
	ASSERT_EQ(0, ret) TH_LOG("records cover %llu of %zu sends: %s",
				 ZC_U64(log->covered), log->nsent, strerror(-ret));
	ret = zc_check_records(log, msg, sizeof(msg));
	ASSERT_EQ(0, ret) TH_LOG("%s", msg);
	if (!t->stats)
		return;
	ret = zc_wait_idle(zfd, 0, 5000, &st);
	EXPECT_EQ(0, ret) TH_LOG("fd: %llu sends in flight, %llu pages pinned after all records",
				 ZC_U64(st.sends_in_flight), ZC_U64(st.pages_pinned));
	ret = zc_check_ledger(&st, log, msg, sizeof(msg));
	EXPECT_EQ(0, ret) TH_LOG("%s", msg);
}

/* All data arrived intact, and the records and ledger account for it. */
static inline void zc_tx_verify(struct __test_metadata *_metadata, struct zc_tx *t)
{
	zc_tx_check_data(_metadata, t);
	zc_tx_check_records(_metadata, t, t->zfd, &t->log);
}

#endif /* __KSELFTEST_HARNESS_H */

#endif /* ZCOPY_TEST_UTIL_H */
