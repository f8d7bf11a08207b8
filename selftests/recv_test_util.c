// SPDX-License-Identifier: GPL-2.0
/*
 * The bodies of recv_test_util.h's helpers.
 */
#include "recv_test_util.h"

/* The last SIGSEGV or SIGBUS that rt_probe() caught. */
static sigjmp_buf rt_jmp;
static int rt_sig_no, rt_sig_code;
static void *rt_sig_addr;

int rt_page_mtu(int family)
{
	return 61440 + 32 + (family == AF_INET ? 20 : 40);
}

size_t rt_zero_until(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return i;
	return len;
}

void *rt_mmap_area(int zfd, size_t pages, int prot)
{
	return mmap(NULL, pages * zc_page_size(), prot, MAP_SHARED, zfd, ZCOPY_MMAP_RECV);
}

int rt_rx_init(struct rt_rx *rx, int zfd, int sock, bool udp,
	       const void *area, size_t pages)
{
	memset(rx, 0, sizeof(*rx));
	rx->zfd = zfd;
	rx->sock = sock;
	rx->udp = udp;
	rx->area = area;
	rx->pages = pages;
	rx->ps = zc_page_size();
	rx->slots = calloc(pages, sizeof(*rx->slots));
	rx->busy = calloc(pages, 1);
	return rx->slots && rx->busy ? 0 : -ENOMEM;
}

void rt_rx_free(struct rt_rx *rx)
{
	free(rx->slots);
	free(rx->busy);
	rx->slots = NULL;
	rx->busy = NULL;
}

int __printf(2, 3)
	     rt_rx_bad(struct rt_rx *rx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rx->msg, sizeof(rx->msg), fmt, ap);
	va_end(ap);
	rx->bad = true;
	return 0;
}

void rt_rx_forget(struct rt_rx *rx, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		rx->busy[rx->slots[i].area_off / rx->ps] = 0;
	memmove(rx->slots, rx->slots + n, (rx->nslots - n) * sizeof(*rx->slots));
	rx->nslots -= n;
}

void rt_rx_take(struct rt_rx *rx, uint32_t asked, uint32_t n, uint64_t bytes)
{
	uint64_t sum = 0, size = (uint64_t)rx->pages * rx->ps;
	uint32_t i;

	rx->last_bytes = bytes;
	rx->last_n = n;
	if (n > asked) {
		rt_rx_bad(rx, "%u descriptors filled, %u asked for", n, asked);
		return;
	}
	if (!rx->udp && !n != !bytes) {
		rt_rx_bad(rx, "%u descriptors for %llu bytes", n, ZC_U64(bytes));
		return;
	}
	if (rx->udp && !n && bytes) {
		rt_rx_bad(rx, "a UDP receive with no descriptor (%llu bytes)", ZC_U64(bytes));
		return;
	}
	for (i = 0; i < n; i++) {
		const struct zcopy_rx_desc *d = &rx->desc[i];
		uint32_t kind = d->flags & RT_MAPPED_COPIED;
		const uint8_t *p = rx->area + d->offset;
		bool last = i + 1 == n;
		size_t bad;

		if (d->offset % rx->ps || d->offset >= size) {
			rt_rx_bad(rx, "desc %u/%u: offset %#llx not a slot of a %zu-page area",
				  i, n, ZC_U64(d->offset), rx->pages);
			return;
		}
		if (rx->busy[d->offset / rx->ps]) {
			rt_rx_bad(rx, "desc %u/%u: slot %#llx is already held",
				  i, n, ZC_U64(d->offset));
			return;
		}
		if ((d->flags & ~RT_RX_FLAGS) || (kind != ZCOPY_RX_MAPPED && kind != ZCOPY_RX_COPIED)) {
			rt_rx_bad(rx, "desc %u/%u: flags %#x", i, n, d->flags);
			return;
		}
		if (d->len > rx->ps || (kind == ZCOPY_RX_MAPPED && d->len != rx->ps)) {
			rt_rx_bad(rx, "desc %u/%u: %s slot of %u bytes", i, n,
				  kind == ZCOPY_RX_MAPPED ? "mapped" : "copied", d->len);
			return;
		}
		if (rx->udp) {
			if (kind != ZCOPY_RX_COPIED || !(d->flags & ZCOPY_RX_EOR) != !last) {
				rt_rx_bad(rx, "UDP desc %u/%u: flags %#x", i, n, d->flags);
				return;
			}
			if (!last && d->len != rx->ps) {
				rt_rx_bad(rx, "UDP desc %u/%u: %u bytes before the last", i, n, d->len);
				return;
			}
			if (last && !d->len && n > 1) {
				rt_rx_bad(rx, "UDP desc %u/%u: an empty last slot", i, n);
				return;
			}
		} else {
			if (d->flags & ZCOPY_RX_EOR) {
				rt_rx_bad(rx, "TCP desc %u/%u: ZCOPY_RX_EOR", i, n);
				return;
			}
			if (!d->len) {
				rt_rx_bad(rx, "TCP desc %u/%u: empty", i, n);
				return;
			}
			if (kind == ZCOPY_RX_COPIED && d->len < rx->ps && !last &&
			    !(rx->desc[i + 1].flags & ZCOPY_RX_MAPPED)) {
				rt_rx_bad(rx, "TCP desc %u/%u: copied slot of %u bytes, then desc %#x of %u",
					  i, n, d->len, rx->desc[i + 1].flags, rx->desc[i + 1].len);
				return;
			}
		}
		bad = zc_check(p, rx->off + sum, d->len);
		if (bad < d->len) {
			rt_rx_bad(rx, "desc %u/%u (slot %#llx, %s, %u bytes): byte %zu is %#x, stream byte %llu is %#x",
				  i, n, ZC_U64(d->offset),
				  kind == ZCOPY_RX_MAPPED ? "mapped" : "copied", d->len, bad,
				  p[bad], ZC_U64(rx->off + sum + bad), zc_byte(rx->off + sum + bad));
			return;
		}
		bad = rt_zero_until(p + d->len, rx->ps - d->len);
		if (bad < rx->ps - d->len) {
			rt_rx_bad(rx, "desc %u/%u (slot %#llx): byte %zu past its %u bytes is %#x, not 0",
				  i, n, ZC_U64(d->offset), d->len + bad, d->len, p[d->len + bad]);
			return;
		}
		rx->busy[d->offset / rx->ps] = 1;
		rx->slots[rx->nslots++] = (struct rt_slot){
			.area_off = d->offset, .stream_off = rx->off + sum,
			.len = d->len, .flags = d->flags,
		};
		if (kind == ZCOPY_RX_MAPPED)
			rx->mapped += d->len;
		else
			rx->copied += d->len;
		sum += d->len;
	}
	if (sum != bytes) {
		rt_rx_bad(rx, "descriptors hold %llu bytes, the receive says %llu",
			  ZC_U64(sum), ZC_U64(bytes));
		return;
	}
	rx->off += sum;
	if (n)
		rx->receives++;
}

int rt_rx_once(struct rt_rx *rx, uint32_t ndesc, uint32_t flags,
	       uint32_t timeout_ms, uint64_t max_bytes, bool release)
{
	struct zcopy_recv r = {
		.sockfd = rx->sock,
		.flags = flags,
		.desc = (uintptr_t)rx->desc,
		.desc_count = ndesc,
		.timeout_ms = timeout_ms,
		.max_bytes = max_bytes,
	};
	size_t nrel = 0, i;
	int ret;

	if (release && rx->nslots) {
		nrel = rx->nslots < ZCOPY_MAX_RX_DESC ? rx->nslots : ZCOPY_MAX_RX_DESC;
		for (i = 0; i < nrel; i++)
			rx->rel[i] = rx->slots[i].area_off;
		r.release = (uintptr_t)rx->rel;
		r.release_count = nrel;
	}
	memset(rx->desc, 0xa5, ndesc * sizeof(rx->desc[0]));
	ret = zc_recv_args(rx->zfd, &r);
	if (ret)
		return ret;
	rt_rx_forget(rx, nrel);
	rt_rx_take(rx, ndesc, r.desc_count, r.bytes);
	return 0;
}

int rt_rx_until(struct rt_rx *rx, uint64_t until, uint32_t ndesc,
		uint32_t timeout_ms, bool release)
{
	while (rx->off < until) {
		int ret = rt_rx_once(rx, ndesc, 0, timeout_ms, 0, release);

		if (ret)
			return ret;
		if (rx->bad)
			return 0;
		if (!rx->last_bytes && !rx->last_n)
			return -ENODATA;
	}
	return 0;
}

int rt_rx_release_all(struct rt_rx *rx)
{
	while (rx->nslots) {
		size_t n = rx->nslots < ZCOPY_MAX_RX_DESC ? rx->nslots : ZCOPY_MAX_RX_DESC, i;
		int ret;

		for (i = 0; i < n; i++)
			rx->rel[i] = rx->slots[i].area_off;
		ret = zc_release(rx->zfd, rx->rel, n);
		if (ret)
			return ret;
		rt_rx_forget(rx, n);
	}
	return 0;
}

int rt_rx_recheck(struct rt_rx *rx, const uint8_t *area)
{
	size_t i, bad;

	for (i = 0; i < rx->nslots; i++) {
		const struct rt_slot *s = &rx->slots[i];

		bad = zc_check(area + s->area_off, s->stream_off, s->len);
		if (bad < s->len) {
			rt_rx_bad(rx, "slot %#llx (stream %llu, flags %#x): byte %zu is %#x, was %#x",
				  ZC_U64(s->area_off), ZC_U64(s->stream_off), s->flags, bad,
				  area[s->area_off + bad], zc_byte(s->stream_off + bad));
			return -1;
		}
	}
	return 0;
}

int rt_write_pattern(int sock, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t done = 0;

	if (!buf)
		return -ENOMEM;
	zc_fill(buf, off, len);
	while (done < len) {
		ssize_t n = send(sock, buf + done, len - done, MSG_NOSIGNAL);

		if (n < 0) {
			int err = -errno;

			if (errno == EINTR)
				continue;
			free(buf);
			return err;
		}
		done += n;
	}
	free(buf);
	return 0;
}

int rt_wait_readable(int sock, int bytes, int timeout_ms)
{
	int64_t deadline = zc_now_ms() + timeout_ms;
	int n = 0;

	for (;;) {
		if (!ioctl(sock, FIONREAD, &n) && n >= bytes)
			return 0;
		if (zc_now_ms() > deadline)
			return -ETIMEDOUT;
		zc_sleep_ms(2);
	}
}

int rt_pool_send(int zfd, int sock, uint64_t off, uint64_t len, uint32_t flags)
{
	while (len) {
		struct zcopy_pool_send ps;
		int ret = zc_pool_send(zfd, sock, off, len, flags, 0, &ps);

		if (ret == -EINTR)
			continue;
		if (ret)
			return ret;
		if (!ps.bytes || ps.bytes > len)
			return -ERANGE;
		off += ps.bytes;
		len -= ps.bytes;
	}
	return 0;
}

void __noreturn rt_tx_fail(struct rt_tx_res *res, const char *what, int err)
{
	res->err = err;
	snprintf(res->what, sizeof(res->what), "%s", what);
	_exit(1);
}

/* Read the records that come within 10 s, or fail the sender. */
static void rt_tx_records(int zfd, struct rt_tx_res *res)
{
	struct zcopy_completion rec[64];
	int i, n = zc_read_records(zfd, rec, 64, 10000);

	if (n <= 0)
		rt_tx_fail(res, "reading records", n ? -n : ETIMEDOUT);
	for (i = 0; i < n; i++) {
		res->rec_bytes += rec[i].bytes;
		if (rec[i].flags == ZCOPY_COMPL_ZEROCOPY)
			res->rec_zerocopy += rec[i].bytes;
	}
}

void __noreturn rt_tx_main(const struct rt_tx_args *a, struct rt_tx_res *res)
{
	size_t ps = zc_page_size(), chunk = a->chunk_pages * ps;
	uint8_t *buf = NULL;
	uint64_t off = 0;
	int s, zfd = -1, ret;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	if (a->netns && zc_enter_netns(a->netns))
		rt_tx_fail(res, "setns", errno);
	s = zc_dial(a->family, SOCK_STREAM, a->ip, a->port);
	if (s < 0)
		rt_tx_fail(res, "connect", -s);
	zc_set_buf(s, SO_SNDBUF, 4 << 20);
	if (a->pool) {
		zfd = zc_open();
		if (zfd < 0)
			rt_tx_fail(res, "open " ZCOPY_DEVICE, errno);
		buf = mmap(NULL, a->pool_pages * ps, PROT_READ | PROT_WRITE, MAP_SHARED, zfd,
			   ZCOPY_MMAP_POOL);
		if (buf == MAP_FAILED)
			rt_tx_fail(res, "mmap pool", errno);
	} else {
		buf = malloc(chunk);
		if (!buf)
			rt_tx_fail(res, "malloc", ENOMEM);
	}
	while (off < a->total) {
		uint64_t len = a->total - off < chunk ? a->total - off : chunk;
		uint64_t pos = a->pool ? (off / ps) % a->pool_pages * ps : 0;

		/* With records: the chunk's bytes of one ring ago have come back. */
		while (a->notify && off >= a->pool_pages * ps &&
		       res->rec_bytes < off - a->pool_pages * ps + len)
			rt_tx_records(zfd, res);
		zc_fill(buf + pos, off, len);
		if (a->pool)
			ret = rt_pool_send(zfd, s, pos, len, a->notify ? ZCOPY_POOL_SEND_NOTIFY : 0);
		else
			ret = rt_write_pattern(s, off, len);
		if (ret)
			rt_tx_fail(res, a->pool ? "ZCOPY_IOC_POOL_SEND" : "send", -ret);
		off += len;
		__atomic_store_n(&res->bytes, off, __ATOMIC_SEQ_CST);
	}
	while (a->notify && res->rec_bytes < off)
		rt_tx_records(zfd, res);
	if (zfd >= 0 && zc_stats(zfd, 0, &res->st))
		rt_tx_fail(res, "ZCOPY_IOC_STATS", errno);
	if (close(s))
		rt_tx_fail(res, "close", errno);
	__atomic_store_n(&res->done, 1, __ATOMIC_SEQ_CST);
	_exit(0);
}

pid_t rt_tx_start(const struct rt_tx_args *a, struct rt_tx_res *res)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid)
		rt_tx_main(a, res);
	return pid;
}

int rt_set_mtu(const char *netns, const char *dev, int mtu)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "/usr/bin/ip %s%s link set %s mtu %d",
		 netns ? "-n " : "", netns ? netns : "", dev, mtu);
	return system(cmd);
}

void rt_sig_handler(int sig, siginfo_t *si, void *uc)
{
	__atomic_store_n(&rt_sig_no, sig, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rt_sig_code, si->si_code, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rt_sig_addr, si->si_addr, __ATOMIC_SEQ_CST);
	siglongjmp(rt_jmp, 1);
}

int rt_probe(uint8_t *p, bool write, int *code, void **addr)
{
	struct sigaction sa = { .sa_sigaction = rt_sig_handler, .sa_flags = SA_SIGINFO };
	struct sigaction old_segv, old_bus;
	int sig = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	__atomic_store_n(&rt_sig_no, 0, __ATOMIC_SEQ_CST);
	if (!sigsetjmp(rt_jmp, 1)) {
		if (write)
			__atomic_store_n(p, 0x5a, __ATOMIC_SEQ_CST);
		else
			(void)__atomic_load_n(p, __ATOMIC_SEQ_CST);
	} else {
		sig = __atomic_load_n(&rt_sig_no, __ATOMIC_SEQ_CST);
		*code = __atomic_load_n(&rt_sig_code, __ATOMIC_SEQ_CST);
		*addr = __atomic_load_n(&rt_sig_addr, __ATOMIC_SEQ_CST);
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
}

uint64_t rt_pfn(const void *addr)
{
	uint64_t e = 0, ps = zc_page_size();
	int fd;

	(void)__atomic_load_n((const uint8_t *)addr, __ATOMIC_SEQ_CST);
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), (uintptr_t)addr / ps * sizeof(e)) != sizeof(e))
		e = 0;
	close(fd);
	return e >> 63 ? e & ((1ULL << 55) - 1) : 0;
}

void rt_nop_handler(int sig)
{
}

void rt_catch(int sig)
{
	struct sigaction sa = { .sa_handler = rt_nop_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

struct zcopy_stats rt_module_stats(int zfd)
{
	struct zcopy_stats st;

	/* Counters no ledger reaches: a failed read fails the comparisons. */
	if (zc_stats(zfd, ZCOPY_STATS_MODULE, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}
