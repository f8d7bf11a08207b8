// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/zcopy basics: the device opens, reports its ABI, and rejects what it
 * does not know. Built for 64-bit and for 32-bit (compat_ioctl) user space.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/zcopy.h>

#include "kselftest_harness.h"
#include "libzcopy.h"

FIXTURE(dev)
{
	int fd;
	struct zcopy_info info;
};

FIXTURE_SETUP(dev)
{
	self->fd = open(ZCOPY_DEVICE, O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing: zcopy.ko is not loaded");
	ASSERT_LE(0, self->fd);
	memset(&self->info, 0, sizeof(self->info));
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(dev, info_reports_abi)
{
	ASSERT_EQ(0, ioctl(self->fd, ZCOPY_IOC_INFO, &self->info));
	EXPECT_EQ(ZCOPY_ABI_VERSION, self->info.abi_version);
	EXPECT_EQ((__u32)sysconf(_SC_PAGESIZE), self->info.page_size);
	/* The output leaves the input fields as they were: zero. */
	EXPECT_EQ(0, self->info.flags);
	EXPECT_EQ(0, self->info.__pad);
}

/*
 * Every feature of the uapi, on every kernel: the other tests skip what a
 * module does not offer, so a bit lost would turn their failures into skips.
 */
TEST_F(dev, info_offers_every_feature)
{
	uint64_t all = 0;
	size_t i;

	ASSERT_EQ(0, ioctl(self->fd, ZCOPY_IOC_INFO, &self->info));
	for (i = 0; i < zc_nr_features; i++) {
		EXPECT_TRUE(self->info.features & zc_feature_names[i].bit)
			TH_LOG("feature %s missing", zc_feature_names[i].name);
		all |= zc_feature_names[i].bit;
	}
	EXPECT_EQ(0, self->info.features & ~all)
		TH_LOG("features %#llx not in libzcopy's table",
		       (unsigned long long)(self->info.features & ~all));
}

TEST_F(dev, info_is_repeatable)
{
	struct zcopy_info again = { 0 };

	ASSERT_EQ(0, ioctl(self->fd, ZCOPY_IOC_INFO, &self->info));
	ASSERT_EQ(0, ioctl(self->fd, ZCOPY_IOC_INFO, &again));
	EXPECT_EQ(0, memcmp(&self->info, &again, sizeof(again)));
}

TEST_F(dev, two_opens_are_independent)
{
	int fd2 = open(ZCOPY_DEVICE, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, ioctl(fd2, ZCOPY_IOC_INFO, &self->info));
	EXPECT_EQ(0, close(fd2));
	EXPECT_EQ(0, ioctl(self->fd, ZCOPY_IOC_INFO, &self->info));
}

TEST_F(dev, unknown_ioctl_enotty)
{
	/*
	 * Our magic with an unused number, another magic, and INFO's number
	 * with the wrong size or direction: all unknown commands.
	 */
	unsigned long cmds[] = {
		_IOWR(ZCOPY_IOC_MAGIC, 0x7f, struct zcopy_info),
		_IOWR('T', 0x00, struct zcopy_info),
		_IOWR(ZCOPY_IOC_MAGIC, 0x00, __u64),
		_IOR(ZCOPY_IOC_MAGIC, 0x00, struct zcopy_info),
		_IO(ZCOPY_IOC_MAGIC, 0x00),
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], &self->info));
		EXPECT_EQ(ENOTTY, errno) TH_LOG("command %#lx", cmds[i]);
	}
}

TEST_F(dev, null_pointer_efault)
{
	EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, unmapped_pointer_efault)
{
	long psz = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, psz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_INFO, p));
	EXPECT_EQ(EFAULT, errno);
	munmap(p, psz);
}

TEST_F(dev, readonly_pointer_efault)
{
	long psz = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, psz, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	/* Readable zeroes, so only the copy back can fail. */
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_INFO, p));
	EXPECT_EQ(EFAULT, errno);
	munmap(p, psz);
}

TEST_F(dev, kernel_pointer_efault)
{
	/*
	 * The direct map for 64-bit callers; for 32-bit ones, the top page,
	 * which is above a compat task's address space.
	 */
	uint64_t direct_map = 0xffff888000000000ULL;
	unsigned long kaddr = sizeof(long) == 8 ? direct_map : 0xfffff000UL;

	EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_INFO, kaddr));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, info_flags_einval)
{
	self->info.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_INFO, &self->info));
	EXPECT_EQ(EINVAL, errno);
	self->info.flags = 1u << 31;
	EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_INFO, &self->info));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, info_pad_einval)
{
	self->info.__pad = 1;
	EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_INFO, &self->info));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(dev, info_reserved_einval)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->info.reserved); i++) {
		memset(&self->info, 0, sizeof(self->info));
		self->info.reserved[i] = 1ULL << 63;
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_INFO, &self->info));
		EXPECT_EQ(EINVAL, errno) TH_LOG("reserved[%u]", i);
		/* A rejected call writes nothing back. */
		EXPECT_EQ(0, self->info.abi_version);
	}
}

/* ZCOPY_IOC_STATS as ABI 1's first headers spelled it: 264 bytes, 7 reserved words last. */
#define STATS_V1_SIZE	264
#define IOC_STATS_V1	_IOC(_IOC_READ | _IOC_WRITE, ZCOPY_IOC_MAGIC, _IOC_NR(ZCOPY_IOC_STATS), \
			     STATS_V1_SIZE)

TEST_F(dev, stats_of_abi1_callers)
{
	uint64_t old[STATS_V1_SIZE / 8 + 1];
	struct zcopy_stats st = { 0 };
	unsigned int i;

	/* The structure grew past what ABI 1's callers pass: their calls still work. */
	EXPECT_LT(STATS_V1_SIZE, sizeof(st));
	memset(old, 0x5a, sizeof(old));
	memset(old, 0, STATS_V1_SIZE);
	ASSERT_EQ(0, ioctl(self->fd, IOC_STATS_V1, old)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, old[STATS_V1_SIZE / 8])
		TH_LOG("the kernel wrote past the 264 bytes of the old structure");
	ASSERT_EQ(0, ioctl(self->fd, ZCOPY_IOC_STATS, &st));
	EXPECT_EQ(0, memcmp(old, &st, offsetof(struct zcopy_stats, rx_slots_used) + 8));
	for (i = 0; i < 7; i++)
		EXPECT_EQ(0, old[STATS_V1_SIZE / 8 - 7 + i]) TH_LOG("their reserved[%u]", i);

	/* Their reserved words, now counters, must still be zero coming in. */
	for (i = 0; i < 7; i++) {
		memset(old, 0, STATS_V1_SIZE);
		old[STATS_V1_SIZE / 8 - 7 + i] = 1;
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, IOC_STATS_V1, old));
		EXPECT_EQ(EINVAL, errno) TH_LOG("reserved[%u] of the old structure", i);
	}
	for (i = 0; i < ARRAY_SIZE(st.reserved); i++) {
		memset(&st, 0, sizeof(st));
		st.reserved[i] = 1;
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, ZCOPY_IOC_STATS, &st));
		EXPECT_EQ(EINVAL, errno) TH_LOG("reserved[%u]", i);
	}
}

TEST(open_readonly_works)
{
	int fd = open(ZCOPY_DEVICE, O_RDONLY | O_CLOEXEC);
	struct zcopy_info info = { 0 };

	if (fd < 0 && errno == ENOENT)
		SKIP(return, ZCOPY_DEVICE " is missing");
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, ioctl(fd, ZCOPY_IOC_INFO, &info));
	close(fd);
}

TEST_HARNESS_MAIN
