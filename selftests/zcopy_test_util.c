// SPDX-License-Identifier: GPL-2.0
/*
 * The bodies of zcopy_test_util.h's helpers.
 */
#include <libgen.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/userfaultfd.h>

#include "zcopy_test_util.h"

int64_t zc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void zc_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

uint64_t zc_fnv_iov(uint64_t h, const struct zcopy_iovec *iov,
		    unsigned int n, uint64_t limit)
{
	unsigned int i;

	for (i = 0; i < n && limit; i++) {
		uint64_t l = iov[i].len < limit ? iov[i].len : limit;

		if (l)
			h = zc_fnv(h, (const void *)(uintptr_t)iov[i].base, l);
		limit -= l;
	}
	return h;
}

uint64_t zc_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t zc_rand_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
	return lo + zc_rand(state) % (hi - lo + 1);
}

bool zc_check_all(const void *buf, uint64_t off, size_t len)
{
	return zc_check(buf, off, len) == len;
}

size_t zc_page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

size_t zc_pages_spanned(uint64_t base, uint64_t len)
{
	uint64_t ps = zc_page_size();

	if (!len)
		return 0;
	return (base + len - 1) / ps - base / ps + 1;
}

void *zc_map(size_t len)
{
	size_t ps = zc_page_size(), sz = (len + ps - 1) / ps * ps;
	char *p;

	p = mmap(NULL, sz + 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + ps, sz, PROT_READ | PROT_WRITE)) {
		munmap(p, sz + 2 * ps);
		return NULL;
	}
	return p + ps;
}

void zc_unmap(void *p, size_t len)
{
	size_t ps = zc_page_size(), sz = (len + ps - 1) / ps * ps;

	if (p)
		munmap((char *)p - ps, sz + 2 * ps);
}

int zc_uffd_open(void *addr, size_t len)
{
	struct uffdio_register reg = { .range = { (uintptr_t)addr, len },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_api api = { .api = UFFD_API };
	int uffd, err;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return -errno;
	if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		err = errno;
		close(uffd);
		return -err;
	}
	return uffd;
}

uintptr_t zc_uffd_next_fault(int uffd, int done)
{
	struct pollfd p[2] = { { .fd = uffd, .events = POLLIN },
			       { .fd = done, .events = POLLIN } };
	struct uffd_msg msg;

	if (poll(p, 2, 10000) < 1 || !(p[0].revents & POLLIN) ||
	    read(uffd, &msg, sizeof(msg)) != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
		return 0;
	return msg.arg.pagefault.address & ~(uintptr_t)(zc_page_size() - 1);
}

void zc_close_fds_except(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a, from = 3;

	if (lo >= from) {
		if (lo > from)
			syscall(SYS_close_range, from, lo - 1, 0);
		from = lo + 1;
	}
	if (hi >= from) {
		if (hi > from)
			syscall(SYS_close_range, from, hi - 1, 0);
		from = hi + 1;
	}
	syscall(SYS_close_range, from, ~0U, 0);
}

int zc_pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

int zc_wait_task_in(pid_t pid, pid_t tid, const char *fn, int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms;
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", pid, tid);
	for (;;) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0)
			return -errno;
		buf[n] = '\0';
		if (strstr(buf, fn))
			return 0;
		if (zc_now_ms() > end)
			return -ETIMEDOUT;
		zc_sleep_ms(10);
	}
}

int zc_wait_child(pid_t pid, int timeout_ms)
{
	int64_t deadline = zc_now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		if (zc_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		zc_sleep_ms(5);
	}
}

/* Each path's name, device here, netns and addresses there and here. */
static const struct {
	const char *name, *dev, *netns, *peer4, *peer6, *local4, *local6;
} zc_paths[] = {
	[ZC_LOOPBACK]	= { "loopback", "lo", NULL, "127.0.0.1", "::1", "127.0.0.1", "::1" },
	[ZC_NIC]	= { "nic", "eth0", "peer", "198.18.0.2", "fd00:5a::2",
			    "198.18.0.1", "fd00:5a::1" },
	[ZC_VETH]	= { "veth", "veth0", "vpeer", "198.18.1.2", "fd00:5b::2",
			    "198.18.1.1", "fd00:5b::1" },
	[ZC_NIC_HS4]	= { "nic-4148", "eth2", "peer", "198.18.2.2", "fd00:5c::2",
			    "198.18.2.1", "fd00:5c::1" },
	[ZC_NIC_HS6]	= { "nic-4168", "eth4", "far", "198.18.3.2", "fd00:5d::2",
			    "198.18.3.1", "fd00:5d::1" },
	[ZC_NIC_JUMBO]	= { "nic-9000", "eth6", "peer", "198.18.4.2", "fd00:5e::2",
			    "198.18.4.1", "fd00:5e::1" },
};

const char *zc_path_name(enum zc_path path)
{
	return zc_paths[path].name;
}

const char *zc_path_netns(enum zc_path path)
{
	return zc_paths[path].netns;
}

const char *zc_path_dev(enum zc_path path)
{
	return zc_paths[path].dev;
}

const char *zc_peer_ip(const struct zc_net *net)
{
	return net->family == AF_INET ? zc_paths[net->path].peer4 : zc_paths[net->path].peer6;
}

const char *zc_local_ip(enum zc_path path, int family)
{
	return family == AF_INET ? zc_paths[path].local4 : zc_paths[path].local6;
}

socklen_t zc_sockaddr(int family, const char *ip, uint16_t port,
		      struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *sin6;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, ip, &sin->sin_addr);
		return sizeof(*sin);
	}
	sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	inet_pton(AF_INET6, ip, &sin6->sin6_addr);
	return sizeof(*sin6);
}

/* setup_net.sh's mark, written last: the test network is whole. */
#define ZC_NET_READY	"/run/zcopy-net-ready"

/* zcopy's VM, by the address scripts/vm-run gives its first NIC. */
static bool zc_in_test_vm(void)
{
	char mac[32] = "";
	int fd = open("/sys/class/net/eth0/address", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (read(fd, mac, sizeof(mac) - 1) < 0)
		mac[0] = 0;
	close(fd);
	return !strncmp(mac, "52:54:00:00:00:10", 17);
}

int zc_enter_netns(const char *name)
{
	char path[128];
	int fd, ret;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return ret;
}

const char *zc_path_missing(enum zc_path path)
{
	if (path == ZC_LOOPBACK || !access(ZC_NET_READY, F_OK))
		return NULL;
	/*
	 * Only a machine that is not zcopy's VM has no test network by
	 * design. In the VM a setup that failed, or stopped half-way, fails
	 * the tests that need it: a skip would hide it.
	 */
	if (zc_in_test_vm())
		return NULL;
	return "not zcopy's VM: no test network (setup_net.sh)";
}

int zc_dev_mtu(const char *dev)
{
	char file[128], buf[32];
	int fd, n;

	snprintf(file, sizeof(file), "/sys/class/net/%s/mtu", dev);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return atoi(buf);
}

int zc_path_mtu(enum zc_path path)
{
	int mtu = zc_dev_mtu(zc_path_dev(path));

	if (mtu > 0)
		return mtu;
	return path == ZC_LOOPBACK ? 65536 : 1500;
}

size_t zc_ip_hdr(int family)
{
	return family == AF_INET ? 20 : 40;
}

size_t zc_udp_max(int family)
{
	return family == AF_INET ? 65535 - 20 - 8 : 65535 - 8;
}

size_t zc_udp_mtu_payload(const struct zc_net *net)
{
	return zc_path_mtu(net->path) - zc_ip_hdr(net->family) - 8;
}

static long zc_copy_below = -1;

bool zc_send_copies(size_t len)
{
	if (zc_copy_below < 0 && zc_param_read("copy_below", &zc_copy_below))
		zc_copy_below = 0;
	return len < (size_t)zc_copy_below;
}

/* A number in a sysfs or procfs file. */
static int zc_long_read(const char *path, long *val)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	*val = strtol(buf, NULL, 0);
	return 0;
}

static int zc_long_write(const char *path, long val)
{
	char buf[32];
	int fd, n, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%ld\n", val);
	if (write(fd, buf, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

int zc_sysctl_read(const char *name, long *val)
{
	char path[160];

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	return zc_long_read(path, val);
}

int zc_ipv4_sysctl_read(const char *name, long *val)
{
	char path[128];

	snprintf(path, sizeof(path), "net/ipv4/%s", name);
	return zc_sysctl_read(path, val);
}

int zc_ipv4_sysctl_write(const char *name, long val)
{
	char path[128];

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/%s", name);
	return zc_long_write(path, val);
}

static long zc_mtu_probing = -1;

int zc_mtu_probing_read(long *val)
{
	return zc_ipv4_sysctl_read("tcp_mtu_probing", val);
}

int zc_mtu_probing_write(long val)
{
	zc_mtu_probing = -1;
	return zc_ipv4_sysctl_write("tcp_mtu_probing", val);
}

/* Whether TCP sockets on @net may send MTU probes. */
static bool zc_tcp_may_probe(const struct zc_net *net)
{
	if (net->type != SOCK_STREAM)
		return false;
	if (zc_mtu_probing < 0 && zc_mtu_probing_read(&zc_mtu_probing))
		zc_mtu_probing = 0;
	return zc_mtu_probing;
}

bool zc_send_probe_copies(const struct zc_net *net)
{
	return zc_tcp_may_probe(net) && !zc_kernel_before(6, 5);
}

uint32_t zc_expected_flags_pages(const struct zc_net *net, size_t dgram,
				 uint32_t npages)
{
	if (zc_send_copies(dgram))
		return ZCOPY_COMPL_COPIED | ZCOPY_COPIED_SMALL;
	if (net->type == SOCK_DGRAM && npages > ZC_MAX_SKB_FRAGS)
		return ZCOPY_COMPL_COPIED | ZCOPY_COPIED_FRAGS;
	if (net->type == SOCK_DGRAM && dgram > zc_udp_mtu_payload(net))
		return ZCOPY_COMPL_COPIED | ZCOPY_COPIED_NOT_OFFLOADED;
	if (zc_send_probe_copies(net))
		return ZCOPY_COMPL_COPIED | ZCOPY_COPIED_MTU_PROBING;
	/*
	 * Before 6.5 a probe copies the skbs it merges, where the record
	 * cannot see it: their bytes count as zero-copy, whatever the path.
	 */
	if (zc_tcp_may_probe(net))
		return 0;
	switch (net->path) {
	case ZC_NIC:
	case ZC_NIC_HS4:
	case ZC_NIC_HS6:
	case ZC_NIC_JUMBO:
		return ZCOPY_COMPL_ZEROCOPY;
	case ZC_VETH:
		return ZCOPY_COMPL_COPIED | ZCOPY_COPIED_STACK;
	case ZC_LOOPBACK:
		break;
	}
	return ZCOPY_COMPL_COPIED | ZCOPY_COPIED_LOOPBACK;
}

uint32_t zc_expected_flags(const struct zc_net *net, size_t dgram)
{
	return zc_expected_flags_pages(net, dgram, 1);
}

int zc_set_buf(int fd, int opt, int val)
{
	int force = opt == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;

	if (!setsockopt(fd, SOL_SOCKET, force, &val, sizeof(val)))
		return 0;
	return setsockopt(fd, SOL_SOCKET, opt, &val, sizeof(val)) ? -errno : 0;
}

void zc_rx_stream(int s, struct zc_rx_shared *sh, char *buf)
{
	for (;;) {
		ssize_t n = read(s, buf, ZC_RX_BUF);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sh->err = errno;
			break;
		}
		sh->hash = zc_fnv(sh->hash, buf, n);
		__atomic_add_fetch(&sh->bytes, n, __ATOMIC_SEQ_CST);
	}
}

void zc_rx_dgrams(int fd, int ctl, bool eof, struct zc_rx_shared *sh,
		  char *buf)
{
	int64_t linger = 0;

	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { ctl, POLLIN, 0 } };
		uint64_t n = __atomic_load_n(&sh->ndgrams, __ATOMIC_SEQ_CST);
		int r, wait = eof ? 3000 : 60000;
		ssize_t len;

		/* All that was sent came: one more would be a datagram too many. */
		if (eof && n >= __atomic_load_n(&sh->expect, __ATOMIC_SEQ_CST)) {
			if (!linger)
				linger = zc_now_ms() + ZC_RX_LINGER_MS;
			wait = linger - zc_now_ms();
			if (wait <= 0)
				break;
		}
		r = poll(p, eof ? 1 : 2, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (!r && linger)
			break;
		if (r <= 0) {
			sh->err = r ? errno : ETIMEDOUT;
			break;
		}
		if (!eof && p[1].revents) {
			char c;

			if (read(ctl, &c, 1) <= 0)
				eof = true;
			continue;
		}
		if (!(p[0].revents & POLLIN))
			continue;
		len = recv(fd, buf, ZC_RX_BUF, MSG_TRUNC | MSG_DONTWAIT);
		if (len < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			sh->err = errno;
			break;
		}
		if (n < ZC_RX_MAX_DGRAMS) {
			sh->dgram[n].len = len;
			sh->dgram[n].hash = zc_fnv(ZC_FNV_INIT, buf,
						   len < ZC_RX_BUF ? len : ZC_RX_BUF);
		}
		__atomic_add_fetch(&sh->bytes, len, __ATOMIC_SEQ_CST);
		__atomic_store_n(&sh->ndgrams, n + 1, __ATOMIC_SEQ_CST);
	}
}

void __noreturn
zc_rx_main(const struct zc_net *net, const struct zc_rx_opts *o, int ready, int ctl,
	   struct zc_rx_shared *sh)
{
	const char *ns = zc_path_netns(net->path);
	struct sockaddr_storage ss;
	int fd, s = -1, one = 1;
	bool eof = false;
	socklen_t sl;
	int32_t v;
	char *buf;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	zc_close_fds_except(ready, ctl);
	if (ns && zc_enter_netns(ns))
		goto fail;
	fd = socket(net->family, net->type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (o->rcvbuf)
		zc_set_buf(fd, SO_RCVBUF, o->rcvbuf);
	else if (net->type == SOCK_DGRAM)
		zc_set_buf(fd, SO_RCVBUF, 8 << 20);
	sl = zc_sockaddr(net->family, zc_peer_ip(net), 0, &ss);
	if (bind(fd, (struct sockaddr *)&ss, sl))
		goto fail;
	if (net->type == SOCK_STREAM && listen(fd, 4))
		goto fail;
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		goto fail;
	v = ntohs(net->family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
			((struct sockaddr_in6 *)&ss)->sin6_port);
	buf = malloc(ZC_RX_BUF);
	if (!buf)
		goto fail;
	if (write(ready, &v, sizeof(v)) != sizeof(v))
		_exit(1);
	close(ready);

	if (net->type == SOCK_STREAM) {
		s = accept(fd, NULL, NULL);
		if (s < 0) {
			sh->err = errno;
			goto out;
		}
	}
	if (o->hold) {
		char c;

		if (read(ctl, &c, 1) <= 0)
			eof = true;
	}
	if (net->type == SOCK_STREAM)
		zc_rx_stream(s, sh, buf);
	else
		zc_rx_dgrams(fd, ctl, eof, sh, buf);
out:
	__atomic_store_n(&sh->done, 1, __ATOMIC_SEQ_CST);
	_exit(0);
fail:
	v = -errno;
	if (write(ready, &v, sizeof(v)) != sizeof(v))
		_exit(2);
	_exit(1);
}

int zc_rx_start(struct zc_rx *rx, const struct zc_net *net,
		const struct zc_rx_opts *opts)
{
	struct zc_rx_opts none = { 0 };
	int ready[2], ctl[2];
	int32_t v;

	memset(rx, 0, sizeof(*rx));
	rx->ctl = -1;
	rx->type = net->type;
	rx->sh = mmap(NULL, sizeof(*rx->sh), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rx->sh == MAP_FAILED) {
		rx->sh = NULL;
		return -errno;
	}
	rx->sh->hash = ZC_FNV_INIT;
	if (pipe2(ready, O_CLOEXEC))
		return -errno;
	if (pipe2(ctl, O_CLOEXEC)) {
		close(ready[0]);
		close(ready[1]);
		return -errno;
	}
	fflush(stdout);
	fflush(stderr);
	rx->pid = fork();
	if (rx->pid == 0)
		zc_rx_main(net, opts ? opts : &none, ready[1], ctl[0], rx->sh);
	close(ready[1]);
	close(ctl[0]);
	rx->ctl = ctl[1];
	if (rx->pid < 0) {
		v = -errno;
		rx->pid = 0;
	} else if (read(ready[0], &v, sizeof(v)) != sizeof(v)) {
		v = -EPIPE;
	}
	close(ready[0]);
	if (v < 0)
		return v;
	rx->port = v;
	return 0;
}

int zc_rx_release(struct zc_rx *rx)
{
	return write(rx->ctl, "G", 1) == 1 ? 0 : -errno;
}

int zc_rx_finish(struct zc_rx *rx, uint64_t dgrams, int timeout_ms)
{
	int status;

	if (!rx->pid)
		return -ECHILD;
	__atomic_store_n(&rx->sh->expect, dgrams, __ATOMIC_SEQ_CST);
	if (rx->ctl >= 0) {
		close(rx->ctl);
		rx->ctl = -1;
	}
	status = zc_wait_child(rx->pid, timeout_ms);
	rx->pid = 0;
	if (status == -1)
		return -ETIMEDOUT;
	return WIFEXITED(status) && !WEXITSTATUS(status) && rx->sh->done ? 0 : -ECHILD;
}

int zc_rx_wait_for(struct zc_rx *rx, uint64_t n, int timeout_ms)
{
	int64_t deadline = zc_now_ms() + timeout_ms;
	uint64_t *ctr = rx->type == SOCK_DGRAM ? &rx->sh->ndgrams : &rx->sh->bytes;

	while (__atomic_load_n(ctr, __ATOMIC_SEQ_CST) < n) {
		if (zc_now_ms() > deadline)
			return -ETIMEDOUT;
		zc_sleep_ms(1);
	}
	return 0;
}

void zc_rx_free(struct zc_rx *rx)
{
	if (rx->pid > 0) {
		kill(rx->pid, SIGKILL);
		waitpid(rx->pid, NULL, 0);
	}
	rx->pid = 0;
	if (rx->ctl >= 0)
		close(rx->ctl);
	rx->ctl = -1;
	if (rx->sh)
		munmap(rx->sh, sizeof(*rx->sh));
	rx->sh = NULL;
}

int zc_connect(const struct zc_net *net, uint16_t port, int sndbuf,
	       bool nonblock)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, err;

	fd = socket(net->family, net->type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sndbuf && zc_set_buf(fd, SO_SNDBUF, sndbuf))
		goto fail;
	sl = zc_sockaddr(net->family, zc_peer_ip(net), port, &ss);
	if (connect(fd, (struct sockaddr *)&ss, sl))
		goto fail;
	if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

bool zc_tx_idle(const struct zcopy_stats *st)
{
	return !st->sends_in_flight && !st->pages_pinned;
}

bool zc_module_idle(const struct zcopy_stats *st)
{
	return zc_tx_idle(st) && !st->pool_pages_in_flight && !st->records_queued &&
	       !st->pool_pages && !st->rx_slots_used && !st->fwd_slots_held;
}

int zc_poll_stats(int zfd, uint32_t flags, int timeout_ms, struct zcopy_stats *st,
		  bool (*done)(const struct zcopy_stats *))
{
	int64_t deadline = zc_now_ms() + timeout_ms;
	struct zcopy_stats tmp;
	int fd = zfd < 0 ? zc_open() : zfd, ret;

	if (!st)
		st = &tmp;
	if (fd < 0)
		return -errno;
	for (;;) {
		ret = zc_stats(fd, flags, st);
		if (ret || done(st))
			break;
		if (zc_now_ms() > deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		zc_sleep_ms(10);
	}
	if (zfd < 0)
		close(fd);
	return ret;
}

int zc_wait_idle(int zfd, uint32_t flags, int timeout_ms,
		 struct zcopy_stats *st)
{
	return zc_poll_stats(zfd, flags, timeout_ms, st, zc_tx_idle);
}

void zc_log_free(struct zc_log *log)
{
	free(log->sent);
	free(log->rec);
	memset(log, 0, sizeof(*log));
}

void zc_log_add(struct zc_log *log, const struct zcopy_send *s,
		uint32_t eflags, uint32_t npages)
{
	if (log->nsent == log->sent_cap) {
		log->sent_cap = log->sent_cap ? 2 * log->sent_cap : 64;
		log->sent = realloc(log->sent, log->sent_cap * sizeof(*log->sent));
		if (!log->sent)
			abort();
	}
	log->sent[log->nsent++] = (struct zc_sent){
		.seq = s->seq, .offset = s->offset, .bytes = s->bytes,
		.cookie = s->cookie, .eflags = eflags, .npages = npages,
	};
	log->bytes += s->bytes;
}

uint32_t zc_iov_pages(const struct zcopy_iovec *iov, unsigned int n,
		      uint64_t limit)
{
	uint32_t pages = 0;
	unsigned int i;

	for (i = 0; i < n && limit; i++) {
		uint64_t l = iov[i].len < limit ? iov[i].len : limit;

		pages += zc_pages_spanned(iov[i].base, l);
		limit -= l;
	}
	return pages;
}

uint64_t zc_iov_len(const struct zcopy_iovec *iov, unsigned int n)
{
	uint64_t len = 0;

	while (n--)
		len += iov[n].len;
	return len;
}

void zc_log_add_rec(struct zc_log *log, const struct zcopy_completion *r)
{
	if (log->nrec == log->rec_cap) {
		log->rec_cap = log->rec_cap ? 2 * log->rec_cap : 64;
		log->rec = realloc(log->rec, log->rec_cap * sizeof(*log->rec));
		if (!log->rec)
			abort();
	}
	log->rec[log->nrec++] = *r;
	log->covered += r->sends;
}

int zc_log_records(int zfd, struct zc_log *log, int timeout_ms)
{
	struct zcopy_completion buf[64];
	int i, n = zc_read_records(zfd, buf, 64, timeout_ms);

	for (i = 0; i < n; i++)
		zc_log_add_rec(log, &buf[i]);
	return n;
}

int zc_collect(int zfd, struct zc_log *log, int timeout_ms)
{
	int64_t deadline = zc_now_ms() + timeout_ms;

	while (log->covered < log->nsent) {
		int64_t left = deadline - zc_now_ms();
		int ret;

		if (left <= 0)
			return -ETIMEDOUT;
		ret = zc_log_records(zfd, log, left > 1000 ? 1000 : left);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int zc_cmp_rec(const void *a, const void *b)
{
	const struct zcopy_completion *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

const char *zc_rec_invalid(const struct zcopy_completion *r)
{
	uint32_t known = ZCOPY_COMPL_ZEROCOPY | ZCOPY_COMPL_COPIED | ZC_COPIED_REASONS;

	if (r->status)
		return "status is not 0";
	if (r->__pad)
		return "__pad is not 0";
	if (!r->sends || !r->bytes)
		return "covers no send or no byte";
	if (r->copied > r->bytes)
		return "copied > bytes";
	if (r->flags & ~known)
		return "unknown flag bits";
	if (!(r->flags & ZCOPY_COMPL_COPIED) != !r->copied)
		return "COPIED set but nothing copied, or copied bytes without COPIED";
	if (!(r->flags & ZCOPY_COMPL_ZEROCOPY) != (r->copied == r->bytes))
		return "ZEROCOPY set but all bytes copied, or some not copied without ZEROCOPY";
	if (!(r->flags & ZCOPY_COMPL_COPIED) != !(r->flags & ZC_COPIED_REASONS))
		return "COPIED without a reason, or a reason without COPIED";
	return NULL;
}

int zc_check_records(const struct zc_log *log, char *msg, size_t len)
{
	struct zcopy_completion *r;
	uint64_t seq = 0, off = 0;
	size_t i, k;
	int ret = -1;

	for (i = 0; i < log->nsent; i++) {
		if (log->sent[i].seq != i || log->sent[i].offset != off) {
			snprintf(msg, len, "send %zu got seq %llu offset %llu, expected %zu and %llu",
				 i, ZC_U64(log->sent[i].seq), ZC_U64(log->sent[i].offset), i,
				 ZC_U64(off));
			return -1;
		}
		off += log->sent[i].bytes;
	}
	r = malloc((log->nrec + 1) * sizeof(*r));
	if (!r)
		abort();
	memcpy(r, log->rec, log->nrec * sizeof(*r));
	qsort(r, log->nrec, sizeof(*r), zc_cmp_rec);
	for (k = 0; k < log->nrec; k++) {
		const struct zcopy_completion *c = &r[k];
		const char *bad = zc_rec_invalid(c);
		uint64_t bytes = 0, j;
		uint32_t ef;

		if (c->seq != seq) {
			snprintf(msg, len, "record seq %llu (+%u), expected seq %llu: %s",
				 ZC_U64(c->seq), c->sends, ZC_U64(seq),
				 c->seq < seq ? "sends covered twice" : "sends missing");
			goto out;
		}
		if (bad) {
			snprintf(msg, len, "record seq %llu: %s (flags %#x bytes %llu copied %llu sends %u status %d)",
				 ZC_U64(c->seq), bad, c->flags, ZC_U64(c->bytes),
				 ZC_U64(c->copied), c->sends, c->status);
			goto out;
		}
		if (c->seq + c->sends > log->nsent) {
			snprintf(msg, len, "record seq %llu +%u: only %zu sends were made",
				 ZC_U64(c->seq), c->sends, log->nsent);
			goto out;
		}
		ef = log->sent[seq].eflags;
		for (j = seq; j < seq + c->sends; j++) {
			bytes += log->sent[j].bytes;
			if (log->sent[j].eflags && ef && log->sent[j].eflags != ef) {
				snprintf(msg, len, "record seq %llu +%u merges sends of different flags (%#x at seq %llu, %#x at %llu)",
					 ZC_U64(c->seq), c->sends, ef, ZC_U64(seq),
					 log->sent[j].eflags, ZC_U64(j));
				goto out;
			}
			if (!ef)
				ef = log->sent[j].eflags;
		}
		if (c->offset != log->sent[seq].offset || c->bytes != bytes) {
			snprintf(msg, len, "record seq %llu +%u covers [%llu, +%llu), its sends [%llu, +%llu)",
				 ZC_U64(c->seq), c->sends, ZC_U64(c->offset), ZC_U64(c->bytes),
				 ZC_U64(log->sent[seq].offset), ZC_U64(bytes));
			goto out;
		}
		if (c->cookie != log->sent[seq].cookie) {
			snprintf(msg, len, "record seq %llu: cookie %#llx, its first send's %#llx",
				 ZC_U64(c->seq), ZC_U64(c->cookie),
				 ZC_U64(log->sent[seq].cookie));
			goto out;
		}
		if (ef && c->flags != ef) {
			snprintf(msg, len, "record seq %llu +%u (%llu bytes): flags %#x, expected %#x (copied %llu)",
				 ZC_U64(c->seq), c->sends, ZC_U64(c->bytes), c->flags, ef,
				 ZC_U64(c->copied));
			goto out;
		}
		seq += c->sends;
	}
	if (seq != log->nsent) {
		snprintf(msg, len, "records cover sends [0, %llu) of %zu",
			 ZC_U64(seq), log->nsent);
		goto out;
	}
	ret = 0;
out:
	free(r);
	return ret;
}

int __printf(3, 4)
	     zc_msg(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return -1;
}

int zc_check_ledger(const struct zcopy_stats *st, const struct zc_log *log,
		    char *msg, size_t len)
{
	uint64_t zc = 0, cp = 0, reason[4] = { 0 }, pages = 0;
	bool single = true;
	size_t i;

	for (i = 0; i < log->nrec; i++) {
		const struct zcopy_completion *r = &log->rec[i];
		uint32_t why = r->flags & ZC_COPIED_REASONS;

		zc += r->bytes - r->copied;
		cp += r->copied;
		/* The module's own copies at send count as not offloaded. */
		if (why == ZCOPY_COPIED_NOT_OFFLOADED || why == ZCOPY_COPIED_FRAGS ||
		    why == ZCOPY_COPIED_MTU_PROBING)
			reason[0] += r->copied;
		else if (why == ZCOPY_COPIED_LOOPBACK)
			reason[1] += r->copied;
		else if (why == ZCOPY_COPIED_STACK)
			reason[2] += r->copied;
		else if (why == ZCOPY_COPIED_SMALL)
			reason[3] += r->copied;
		else if (why)
			single = false;
	}
	/*
	 * The module's copies (short sends, sends to a socket that may send
	 * MTU probes, corked datagrams) pin no pages; sends from a registered
	 * buffer were pinned once, before.
	 */
	for (i = 0; i < log->nsent; i++)
		if (!(log->sent[i].eflags & (ZCOPY_COPIED_SMALL | ZCOPY_COPIED_MTU_PROBING)) &&
		    !log->sent[i].fixed && !log->sent[i].unpinned)
			pages += log->sent[i].npages;

	if (st->sends != log->nsent)
		return zc_msg(msg, len, "ledger: sends %llu, made %zu",
			      ZC_U64(st->sends), log->nsent);
	if (st->send_bytes != log->bytes)
		return zc_msg(msg, len, "ledger: send_bytes %llu, sent %llu",
			      ZC_U64(st->send_bytes), ZC_U64(log->bytes));
	if (st->send_completions != st->sends)
		return zc_msg(msg, len, "ledger: send_completions %llu != sends %llu",
			      ZC_U64(st->send_completions), ZC_U64(st->sends));
	if (st->send_bytes != st->tx_zerocopy_bytes + st->tx_copied_bytes)
		return zc_msg(msg, len,
			      "ledger: send_bytes %llu != tx_zerocopy_bytes %llu + tx_copied_bytes %llu",
			      ZC_U64(st->send_bytes), ZC_U64(st->tx_zerocopy_bytes),
			      ZC_U64(st->tx_copied_bytes));
	if (st->tx_copied_bytes != st->tx_copied_not_offloaded + st->tx_copied_loopback +
	    st->tx_copied_stack + st->tx_copied_small)
		return zc_msg(msg, len,
			      "ledger: tx_copied_bytes %llu != not_offloaded %llu + loopback %llu + stack %llu + small %llu",
			      ZC_U64(st->tx_copied_bytes), ZC_U64(st->tx_copied_not_offloaded),
			      ZC_U64(st->tx_copied_loopback), ZC_U64(st->tx_copied_stack),
			      ZC_U64(st->tx_copied_small));
	if (st->tx_zerocopy_bytes != zc || st->tx_copied_bytes != cp)
		return zc_msg(msg, len,
			      "ledger: tx_zerocopy_bytes %llu tx_copied_bytes %llu, the records say %llu and %llu",
			      ZC_U64(st->tx_zerocopy_bytes), ZC_U64(st->tx_copied_bytes),
			      ZC_U64(zc), ZC_U64(cp));
	if (single && (st->tx_copied_not_offloaded != reason[0] ||
		       st->tx_copied_loopback != reason[1] || st->tx_copied_stack != reason[2] ||
		       st->tx_copied_small != reason[3]))
		return zc_msg(msg, len,
			      "ledger: copied not_offloaded/loopback/stack %llu/%llu/%llu, the records say %llu/%llu/%llu",
			      ZC_U64(st->tx_copied_not_offloaded), ZC_U64(st->tx_copied_loopback),
			      ZC_U64(st->tx_copied_stack), ZC_U64(reason[0]), ZC_U64(reason[1]),
			      ZC_U64(reason[2]));
	if (st->sends_in_flight || st->pages_pinned)
		return zc_msg(msg, len, "ledger: sends_in_flight %llu, pages_pinned %llu",
			      ZC_U64(st->sends_in_flight), ZC_U64(st->pages_pinned));
	if (st->records_queued)
		return zc_msg(msg, len, "ledger: records_queued %llu after reading all",
			      ZC_U64(st->records_queued));
	if (st->pages_pinned_total < pages)
		return zc_msg(msg, len, "ledger: pages_pinned_total %llu, the sends span %llu pages",
			      ZC_U64(st->pages_pinned_total), ZC_U64(pages));
	if (st->pages_pinned_peak > st->pages_pinned_total ||
	    (pages && !st->pages_pinned_peak))
		return zc_msg(msg, len, "ledger: pages_pinned_peak %llu, pages_pinned_total %llu",
			      ZC_U64(st->pages_pinned_peak), ZC_U64(st->pages_pinned_total));
	for (i = 0; i < ARRAY_SIZE(st->reserved); i++)
		if (st->reserved[i])
			return zc_msg(msg, len, "ledger: reserved[%zu] is %#llx", i,
				      ZC_U64(st->reserved[i]));
	return 0;
}

static int zc_modparam_read(const char *mod, const char *name, long *val)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/%s", mod, name);
	return zc_long_read(path, val);
}

static int zc_modparam_write(const char *mod, const char *name, long val)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/%s", mod, name);
	return zc_long_write(path, val);
}

int zc_param_read(const char *name, long *val)
{
	return zc_modparam_read("zcopy", name, val);
}

int zc_param_write(const char *name, long val)
{
	zc_copy_below = -1;
	return zc_modparam_write("zcopy", name, val);
}

bool zc_kernel_before(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma < major || (ma == major && mi < minor);
}

/* Bytes after a struct btf_type of @kind with @vlen entries, or -1. */
static long zc_btf_extra(unsigned int kind, unsigned int vlen)
{
	switch (kind) {
	case BTF_KIND_INT:
		return sizeof(uint32_t);
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return vlen * sizeof(struct btf_member);
	case BTF_KIND_ENUM:
		return vlen * sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:
		return vlen * sizeof(struct btf_param);
	case BTF_KIND_VAR:
		return sizeof(struct btf_var);
	case BTF_KIND_DATASEC:
		return vlen * sizeof(struct btf_var_secinfo);
	case BTF_KIND_DECL_TAG:
		return sizeof(struct btf_decl_tag);
	case BTF_KIND_ENUM64:
		return vlen * sizeof(struct btf_enum64);
	case BTF_KIND_PTR:
	case BTF_KIND_FWD:
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_FUNC:
	case BTF_KIND_FLOAT:
	case BTF_KIND_TYPE_TAG:
		return 0;
	}
	return -1;
}

/* The type id of function @name in the kernel's BTF, or -errno. */
static int zc_btf_func_id(const char *name)
{
	const struct btf_header *h;
	const char *types, *end, *strs;
	struct stat st;
	char *buf;
	int fd, id, ret = -ENOENT;
	ssize_t n;
	size_t got = 0;

	fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_size < (off_t)sizeof(*h)) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc(st.st_size);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size && (n = read(fd, buf + got, st.st_size - got)) > 0)
		got += n;
	close(fd);
	h = (const struct btf_header *)buf;
	if (got != (size_t)st.st_size || h->magic != BTF_MAGIC ||
	    (size_t)h->hdr_len + h->type_off + h->type_len > got ||
	    (size_t)h->hdr_len + h->str_off + h->str_len > got) {
		free(buf);
		return -EINVAL;
	}
	types = buf + h->hdr_len + h->type_off;
	end = types + h->type_len;
	strs = buf + h->hdr_len + h->str_off;
	for (id = 1; types + sizeof(struct btf_type) <= end; id++) {
		const struct btf_type *t = (const struct btf_type *)types;
		long extra = zc_btf_extra(BTF_INFO_KIND(t->info), BTF_INFO_VLEN(t->info));

		if (extra < 0) {
			ret = -EPROTO;
			break;
		}
		if (BTF_INFO_KIND(t->info) == BTF_KIND_FUNC && t->name_off < h->str_len &&
		    !strcmp(strs + t->name_off, name)) {
			ret = id;
			break;
		}
		types += sizeof(*t) + extra;
	}
	free(buf);
	return ret;
}

int zc_lsm_refuse(const char *hook, int err)
{
	/* if (current tgid == getpid()) return -err; return 0; */
	struct bpf_insn prog[] = {
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_get_current_pid_tgid },
		{ .code = BPF_ALU64 | BPF_RSH | BPF_K, .dst_reg = BPF_REG_0, .imm = 32 },
		{ .code = BPF_JMP | BPF_JNE | BPF_K, .dst_reg = BPF_REG_0, .off = 2,
		  .imm = getpid() },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -err },
		{ .code = BPF_JMP | BPF_EXIT },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char fn[128];
	union bpf_attr a;
	int id, pfd, link;

	snprintf(fn, sizeof(fn), "bpf_lsm_%s", hook);
	id = zc_btf_func_id(fn);
	if (id < 0)
		return id;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_LSM;
	a.expected_attach_type = BPF_LSM_MAC;
	a.insns = (uintptr_t)prog;
	a.insn_cnt = ARRAY_SIZE(prog);
	a.license = (uintptr_t)"GPL";
	a.attach_btf_id = id;
	pfd = syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (pfd < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	a.raw_tracepoint.prog_fd = pfd;
	link = syscall(__NR_bpf, BPF_RAW_TRACEPOINT_OPEN, &a, sizeof(a));
	if (link < 0)
		link = -errno;
	close(pfd);
	return link;
}

long long zc_tcpext(const char *name)
{
	char names[4096], vals[4096];
	long long v = -1;
	FILE *f = fopen("/proc/net/netstat", "re");

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f) && fgets(vals, sizeof(vals), f)) {
		char *sn, *sv, *n, *val;

		if (strncmp(names, "TcpExt:", 7))
			continue;
		n = strtok_r(names, "\n ", &sn);
		val = strtok_r(vals, "\n ", &sv);
		while (n && val) {
			if (!strcmp(n, name))
				v = atoll(val);
			n = strtok_r(NULL, "\n ", &sn);
			val = strtok_r(NULL, "\n ", &sv);
		}
	}
	fclose(f);
	return v;
}

long long zc_tcp_mtu_probes(void)
{
	return zc_tcpext("TCPMTUPSuccess") + zc_tcpext("TCPMTUPFail");
}

unsigned int zc_tcp_snd_mss(int sock)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return 0;
	return ti.tcpi_snd_mss;
}

int zc_tcp_wait_mss_below(int sock, unsigned int mss, int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms;

	while (zc_tcp_snd_mss(sock) >= mss) {
		if (zc_now_ms() > end)
			return -ETIMEDOUT;
		zc_sleep_ms(20);
	}
	return 0;
}

int zc_probe_env_init(struct zc_probe_env *e)
{
	*e = (struct zc_probe_env){ .saved_probing = -1, .saved_retries1 = -1 };
	return zc_mtu_probing_read(&e->saved_probing) ?:
	       zc_ipv4_sysctl_read("tcp_retries1", &e->saved_retries1) ?:
	       zc_mtu_probing_write(0);
}

int zc_probe_env_black_hole(struct zc_probe_env *e, bool on)
{
	const char *dev = zc_path_dev(ZC_VETH);
	char cmd[128];
	int ret;

	snprintf(cmd, sizeof(cmd), on ? "/usr/bin/tc qdisc replace dev %s root netem loss 100%%" :
		 "/usr/bin/tc qdisc del dev %s root", dev);
	ret = system(cmd);

	if (!ret)
		e->black_hole = on;
	return ret;
}

int zc_probe_env_arm(struct zc_probe_env *e)
{
	return zc_ipv4_sysctl_write("tcp_retries1", 0) ?: zc_mtu_probing_write(1);
}

void zc_probe_env_restore(struct zc_probe_env *e)
{
	if (e->black_hole)
		zc_probe_env_black_hole(e, false);
	if (e->saved_probing >= 0)
		zc_mtu_probing_write(e->saved_probing);
	if (e->saved_retries1 >= 0)
		zc_ipv4_sysctl_write("tcp_retries1", e->saved_retries1);
	e->saved_probing = e->saved_retries1 = -1;
}

int zc_testmod_load(const char *params)
{
	int fd, ret;

	fd = open(ZC_TESTMOD_KO, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	/* Left loaded by a test that failed before it could unload it. */
	if (ret == -EEXIST && !zc_testmod_unload())
		ret = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

int zc_testmod_unload(void)
{
	return syscall(__NR_delete_module, "zcopy_testmod", O_NONBLOCK) ? -errno : 0;
}

int zc_testmod_read(const char *name, long *val)
{
	return zc_modparam_read("zcopy_testmod", name, val);
}

int zc_testmod_write(const char *name, long val)
{
	return zc_modparam_write("zcopy_testmod", name, val);
}

void zc_tx_fini(struct zc_tx *t)
{
	if (t->sock >= 0)
		close(t->sock);
	t->sock = -1;
	zc_rx_free(&t->rx);
	if (t->zfd >= 0)
		close(t->zfd);
	t->zfd = -1;
	zc_log_free(&t->log);
	free(t->dg);
	t->dg = NULL;
	/* Leave the module idle for the next test, or as idle as it gets. */
	zc_wait_idle(-1, ZCOPY_STATS_MODULE, 5000, NULL);
}

/* The UDP datagram being built is complete: the receiver should get it. */
static void zc_tx_end_dgram(struct zc_tx *t)
{
	if (t->ndg < ZC_RX_MAX_DGRAMS) {
		t->dg[t->ndg].len = t->cork_len;
		t->dg[t->ndg].hash = t->cork_hash;
		t->ndg++;
		t->cork_len = 0;
	}
}

/* @bytes of @iov are in the stream, and for UDP in the datagram being built. */
static void zc_tx_account(struct zc_tx *t, const struct zcopy_iovec *iov, uint32_t n,
			  uint64_t bytes)
{
	t->hash = zc_fnv_iov(t->hash, iov, n, bytes);
	t->bytes += bytes;
	if (t->net.type != SOCK_DGRAM)
		return;
	if (!t->cork_len)
		t->cork_hash = ZC_FNV_INIT;
	t->cork_hash = zc_fnv_iov(t->cork_hash, iov, n, bytes);
	t->cork_len += bytes;
}

int zc_tx_send_once(struct zc_tx *t, int zfd, int sock, struct zc_log *log,
		    const struct zcopy_iovec *iov, uint32_t n, uint32_t flags,
		    uint64_t cookie, struct zcopy_send *out)
{
	bool udp = t->net.type == SOCK_DGRAM, more = (flags & ZCOPY_SEND_MORE) || t->corked;
	struct zcopy_send s = { 0 };
	uint32_t ef, npages;
	bool corked;
	size_t len;
	int ret;

	if (udp && !more && t->ndg >= t->window &&
	    zc_rx_wait_for(&t->rx, t->ndg - t->window + 1, 10000))
		return -ETIMEDOUT;
	if (t->fixed >= 0)
		ret = zc_send_fixed(zfd, sock, t->fixed, iov, n, flags, cookie, &s);
	else
		ret = zc_send(zfd, sock, iov, n, flags, cookie, &s);
	if (ret)
		return ret;
	if (out)
		*out = s;
	npages = zc_iov_pages(iov, n, s.bytes);
	/* Whether the module copies a send depends on the length asked. */
	len = zc_iov_len(iov, n);
	corked = udp && (more || t->cork_len);
	if (corked)
		ef = ZCOPY_COMPL_COPIED | (zc_send_copies(len) ? ZCOPY_COPIED_SMALL :
				       ZCOPY_COPIED_NOT_OFFLOADED);
	else
		ef = zc_expected_flags_pages(&t->net, len, npages);
	zc_log_add(log, &s, ef, npages);
	log->sent[log->nsent - 1].fixed = t->fixed >= 0;
	/* The module copies a corked datagram's sends itself. */
	log->sent[log->nsent - 1].unpinned = corked;
	zc_tx_account(t, iov, n, s.bytes);
	if (udp && !more)
		zc_tx_end_dgram(t);
	return 0;
}

void zc_tx_add_sent(struct zc_tx *t, const struct zcopy_iovec *iov)
{
	zc_tx_account(t, iov, 1, iov->len);
}

int zc_tx_cork(struct zc_tx *t, bool on)
{
	int v = on;

	if (setsockopt(t->sock, IPPROTO_UDP, UDP_CORK, &v, sizeof(v)))
		return -errno;
	t->corked = on;
	/* Clearing UDP_CORK sends the datagram built so far. */
	if (!on && t->cork_len)
		zc_tx_end_dgram(t);
	return 0;
}

void zc_tx_log_sent(struct zc_tx *t, const struct zcopy_iovec *iov,
		    const struct zcopy_send *s)
{
	uint32_t npages = zc_iov_pages(iov, 1, s->bytes);

	zc_log_add(&t->log, s, zc_expected_flags_pages(&t->net, iov->len, npages), npages);
	t->log.sent[t->log.nsent - 1].fixed = t->fixed >= 0;
	t->hash = zc_fnv_iov(t->hash, iov, 1, s->bytes);
	t->bytes += s->bytes;
	if (t->net.type == SOCK_DGRAM && t->ndg < ZC_RX_MAX_DGRAMS) {
		t->dg[t->ndg].len = s->bytes;
		t->dg[t->ndg].hash = zc_fnv_iov(ZC_FNV_INIT, iov, 1, s->bytes);
		t->ndg++;
	}
}

int zc_tx_send_batch(struct zc_tx *t, const struct zcopy_iovec *iov, const uint32_t *flags,
		     uint32_t n, uint32_t per_call)
{
	bool udp = t->net.type == SOCK_DGRAM;
	struct zcopy_iovec *w = malloc(n * sizeof(*w));
	struct zcopy_send *s = calloc(per_call, sizeof(*s));
	uint32_t first = 0, k, i;
	int ret = 0;

	if (!w || !s) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(w, iov, n * sizeof(*w));
	while (first < n) {
		k = n - first < per_call ? n - first : per_call;
		/* Datagrams wait for the receiver, as zc_tx_send_once()'s do. */
		if (udp && t->ndg + k > t->window &&
		    zc_rx_wait_for(&t->rx, t->ndg + k - t->window, 10000)) {
			ret = -ETIMEDOUT;
			break;
		}
		for (i = 0; i < k; i++)
			s[i] = (struct zcopy_send){
				.sockfd = t->sock,
				.flags = (t->fixed >= 0 ? ZCOPY_SEND_FIXED : 0) |
					 (flags ? flags[first + i] : 0),
				.iov = (uintptr_t)&w[first + i],
				.iov_count = 1,
				.buf_index = t->fixed >= 0 ? t->fixed : 0,
				.cookie = first + i,
			};
		ret = zc_send_batch(t->zfd, s, k);
		if (ret <= 0) {
			if (!ret)	/* the ABI says at least one, or an error */
				ret = -EPROTO;
			break;
		}
		for (i = 0; i < (uint32_t)ret; i++)
			zc_tx_log_sent(t, &w[first + i], &s[i]);
		/* A short entry goes on from where it stopped; UDP never is. */
		i = ret - 1;
		if (s[i].bytes < w[first + i].len) {
			w[first + i].base += s[i].bytes;
			w[first + i].len -= s[i].bytes;
			first += i;
		} else {
			first += ret;
		}
		ret = 0;
	}
out:
	free(w);
	free(s);
	return ret;
}

uint32_t zc_iov_advance(struct zcopy_iovec *iov, uint32_t first, uint32_t n,
			uint64_t done)
{
	while (first < n && (done || !iov[first].len)) {
		uint64_t l = iov[first].len < done ? iov[first].len : done;

		iov[first].base += l;
		iov[first].len -= l;
		done -= l;
		if (!iov[first].len)
			first++;
	}
	return first;
}

int zc_tx_sendv(struct zc_tx *t, const struct zcopy_iovec *iov, uint32_t n,
		uint32_t flags, uint64_t cookie)
{
	struct zcopy_iovec *w;
	uint64_t total = 0;
	uint32_t i, first = 0;
	int ret = 0;

	for (i = 0; i < n; i++)
		total += iov[i].len;
	w = malloc((n ? n : 1) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memcpy(w, iov, n * sizeof(*w));
	while (total) {
		struct zcopy_send s = { 0 };

		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, w + first, n - first,
				      flags, cookie, &s);
		if (ret)
			break;
		/* A datagram is all or nothing: EBADMSG is ours, not the module's. */
		if (t->net.type == SOCK_DGRAM && s.bytes != total) {
			ret = -EBADMSG;
			break;
		}
		if (!s.bytes || s.bytes > total) {
			ret = -ERANGE;
			break;
		}
		total -= s.bytes;
		first = zc_iov_advance(w, first, n, s.bytes);
	}
	free(w);
	return ret;
}

int zc_tx_send_buf(struct zc_tx *t, const void *buf, size_t len)
{
	size_t max = t->net.type == SOCK_DGRAM ? zc_udp_max(t->net.family) : len;
	size_t off;

	for (off = 0; off < len; off += max) {
		struct zcopy_iovec iov = {
			.base = (uintptr_t)buf + off,
			.len = len - off < max ? len - off : max,
		};
		int ret = zc_tx_sendv(t, &iov, 1, 0, off);

		if (ret)
			return ret;
	}
	return 0;
}

unsigned int zc_tx_fill(struct zc_tx *t, char *buf, size_t size, size_t chunk,
			unsigned int max_sends, int *err)
{
	unsigned int n = 0;
	size_t off = 0;
	int ret = 0;

	while (off < size && (!max_sends || n < max_sends)) {
		struct zcopy_iovec iov = { (uintptr_t)buf + off, chunk };
		struct zcopy_send s = { 0 };

		if (iov.len > size - off)
			iov.len = size - off;
		ret = zc_tx_send_once(t, t->zfd, t->sock, &t->log, &iov, 1,
				      ZCOPY_SEND_DONTWAIT, off, &s);
		if (ret)
			break;
		off += s.bytes;
		n++;
	}
	*err = -ret;
	return n;
}

uint16_t zc_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return 0;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
}

int zc_bind(int family, int type, const char *ip, int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t sl = zc_sockaddr(family, ip, 0, &ss);
	int fd = socket(family, type | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (rcvbuf && zc_set_buf(fd, SO_RCVBUF, rcvbuf))
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, sl))
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 8))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int zc_dial(int family, int type, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl = zc_sockaddr(family, ip, port, &ss);
	int fd = socket(family, type | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int zc_accept(int lfd, int timeout_ms)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	int fd, ret = poll(&p, 1, timeout_ms);

	if (ret <= 0)
		return ret ? -errno : -ETIMEDOUT;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

const char *zc_lo_ip(int family)
{
	return family == AF_INET ? "127.0.0.1" : "::1";
}

int zc_tcp_pair(int family, int rcvbuf, int *cli, int *srv)
{
	int lfd = zc_bind(family, SOCK_STREAM, zc_lo_ip(family), rcvbuf), c, s;

	*cli = -1;
	*srv = -1;
	if (lfd < 0)
		return lfd;
	c = zc_dial(family, SOCK_STREAM, zc_lo_ip(family), zc_port(lfd));
	if (c < 0) {
		close(lfd);
		return c;
	}
	s = zc_accept(lfd, 5000);
	close(lfd);
	if (s < 0) {
		close(c);
		return s;
	}
	*cli = c;
	*srv = s;
	return 0;
}

int zc_udp_pair(int family, bool connect_back, int *txs, int *rxs)
{
	struct sockaddr_storage ss;
	int r = zc_bind(family, SOCK_DGRAM, zc_lo_ip(family), 4 << 20), t;
	socklen_t sl;

	*txs = -1;
	*rxs = -1;
	if (r < 0)
		return r;
	t = zc_dial(family, SOCK_DGRAM, zc_lo_ip(family), zc_port(r));
	if (t < 0) {
		close(r);
		return t;
	}
	if (connect_back) {
		sl = zc_sockaddr(family, zc_lo_ip(family), zc_port(t), &ss);
		if (connect(r, (struct sockaddr *)&ss, sl)) {
			int err = -errno;

			close(r);
			close(t);
			return err;
		}
	}
	*txs = t;
	*rxs = r;
	return 0;
}

/*
 * Every C test's environment, made before main() so that a test runs the
 * same from kselftest's runner, from run_tests.sh or by hand: the VM's test
 * network (setup_net.sh beside the binary, which does nothing when the
 * network is there or the machine is not zcopy's VM), and copy_below 0, so
 * that a send of any size takes the zero-copy paths the tests are about (a
 * test of the copy path sets its own). The module's copy_below comes back
 * when the test's main process exits. So does net.ipv4.tcp_mtu_probing,
 * which is 0 for the tests but those that set it (their sends would be
 * copied), should one of them die before it puts it back; the harness's
 * children _exit().
 */
static long zc_env_copy_below = -1;
static long zc_env_mtu_probing = -1;
static long zc_env_retries1 = -1;
static int zc_env_mtu[ARRAY_SIZE(zc_paths)];
static pid_t zc_env_pid;

/*
 * A test killed by its timeout skips its teardown: what tests change
 * (MTUs, a netem qdisc, tcp_retries1) goes back too, so that it spoils at
 * most the rest of its own binary.
 */
static void zc_env_restore_net(void)
{
	char cmd[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(zc_paths); i++) {
		const char *dev = zc_paths[i].dev;

		if (zc_env_mtu[i] > 0 && zc_dev_mtu(dev) != zc_env_mtu[i]) {
			/* A veth's ends change together. */
			snprintf(cmd, sizeof(cmd), i == ZC_VETH ?
				 "/usr/bin/ip link set %1$s mtu %2$d && /usr/bin/ip -n %3$s link set veth1 mtu %2$d" :
				 "/usr/bin/ip link set %1$s mtu %2$d",
				 dev, zc_env_mtu[i], zc_paths[i].netns);
			if (system(cmd))
				fprintf(stderr, "# could not put back: %s\n", cmd);
		}
		snprintf(cmd, sizeof(cmd),
			 "if /usr/bin/tc qdisc show dev %1$s 2>/dev/null | grep -q '^qdisc netem'; then /usr/bin/tc qdisc del dev %1$s root; fi",
			 dev);
		if (system(cmd))
			fprintf(stderr, "# could not put back: %s\n", cmd);
	}
	if (zc_env_retries1 >= 0)
		zc_ipv4_sysctl_write("tcp_retries1", zc_env_retries1);
}

static void zc_env_restore(void)
{
	if (getpid() != zc_env_pid)
		return;
	if (zc_env_copy_below >= 0)
		zc_param_write("copy_below", zc_env_copy_below);
	if (zc_env_mtu_probing >= 0)
		zc_mtu_probing_write(zc_env_mtu_probing);
	zc_env_restore_net();
}

static void __attribute__((constructor)) zc_env_setup(void)
{
	char exe[PATH_MAX], cmd[PATH_MAX + 32];
	ssize_t n;
	size_t i;

	if (geteuid())
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0 && access(ZC_NET_READY, F_OK)) {
		exe[n] = 0;
		snprintf(cmd, sizeof(cmd), "%s/setup_net.sh >&2", dirname(exe));
		if (system(cmd))
			fprintf(stderr, "# setup_net.sh failed: the network tests will fail\n");
	}
	zc_env_pid = getpid();
	if (zc_param_read("copy_below", &zc_env_copy_below) ||
	    zc_param_write("copy_below", 0))
		zc_env_copy_below = -1;
	if (zc_mtu_probing_read(&zc_env_mtu_probing) || zc_mtu_probing_write(0))
		zc_env_mtu_probing = -1;
	if (zc_ipv4_sysctl_read("tcp_retries1", &zc_env_retries1))
		zc_env_retries1 = -1;
	for (i = 0; i < ARRAY_SIZE(zc_paths); i++)
		zc_env_mtu[i] = zc_dev_mtu(zc_paths[i].dev);
	atexit(zc_env_restore);
}
