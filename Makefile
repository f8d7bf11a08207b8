# SPDX-License-Identifier: GPL-2.0
#
# zcopy. Kbuild (beside this file) describes the module to the kernel's build;
# this Makefile is the front door for people and CI.
#
#   make                 build zcopy.ko for the running kernel (or KDIR=...)
#   make run             boot a VM and show zcopy at work
#   make check           the whole suite on the pinned kernels (6.1, 6.12, 6.1-rt)
#   make style sparse    checkpatch and sparse, both clean
#   make deb             the Debian packages zcopy-dkms and zcopy-tools
#   make matrix          compile-test against every Debian 12 headers package
#   make bench           every way to move bytes, side by side, into results/
#   make check-debug     the suite, a long fuzz and race stress, and a kmemleak
#                        scan, on a 6.12 built with KASAN, lockdep, kmemleak...
#   make soak            the long fuzz and race stress on both stock kernels
#
# make check/run/style/sparse fetch what they need first (scripts/fetch-deps).

KDIR	?= /lib/modules/$(shell uname -r)/build
KERNELS	?= 6.1 6.12 6.1-rt
export KERNELS

SCRIPTS	:= $(CURDIR)/scripts
# Where the scripts keep what they fetch and build (scripts/lib.sh):
# the VM takes the selftests and tools from there too.
CACHE	:= $(or $(ZCOPY_CACHE),$(CURDIR)/.cache)
KSFT_DIR = $(shell bash -c '. $(SCRIPTS)/lib.sh && echo $$(kernel_src $$(newest_kernel))/tools/testing/selftests')

all: module

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

module-clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

deps:
	$(SCRIPTS)/fetch-deps

# zcopy.ko for every cached kernel, under .cache/build/.
modules: deps
	@for k in $(KERNELS); do $(SCRIPTS)/build-module $$k >/dev/null || exit 1; done

# The selftests in kselftest's install layout, which the VM gets as
# /selftests: run_kselftest.sh, zcopy/, and run_tests.sh, the VM's driver.
KSFT_INSTALL := $(CACHE)/build/kselftest

selftests: tools
	$(MAKE) -C selftests KSFT_DIR=$(KSFT_DIR) OUTPUT=$(CACHE)/build/selftests \
		BUILD=$(CACHE)/build INSTALL_PATH=$(KSFT_INSTALL) install >/dev/null
	install -m 0755 selftests/run_tests.sh $(KSFT_INSTALL)/

tools:
	$(MAKE) -C tools BUILD=$(CACHE)/build

check: deps
	$(SCRIPTS)/check

run: deps selftests tools
	$(SCRIPTS)/vm-run --add $(SCRIPTS)/demo.sh:/demo.sh -- /demo.sh

bench:
	$(SCRIPTS)/bench

deb:
	$(SCRIPTS)/fetch-deps --deb
	$(SCRIPTS)/make-deb

matrix: deps
	$(SCRIPTS)/compile-matrix

# The long runs: >= 100,000 fuzz iterations and 60 s of race stress.
SOAK	:= ZCOPY_FUZZ_ITERS=$(or $(ZCOPY_FUZZ_ITERS),100000) \
	   ZCOPY_STRESS_SECS=$(or $(ZCOPY_STRESS_SECS),60) \
	   ZCOPY_TEST_TIMEOUT=$(or $(ZCOPY_TEST_TIMEOUT),3600)

check-debug:
	$(SCRIPTS)/fetch-deps --debug
	$(SCRIPTS)/build-debug-kernel
	$(SOAK) KERNELS=6.12-debug VM_TIMEOUT=$(or $(VM_TIMEOUT),5400) $(SCRIPTS)/check

soak: deps
	$(SOAK) VM_TIMEOUT=$(or $(VM_TIMEOUT),3600) $(SCRIPTS)/check

style: deps
	$(SCRIPTS)/style

sparse: deps
	$(SCRIPTS)/sparse

clean: module-clean
	$(MAKE) -C selftests KSFT_DIR=$(KSFT_DIR) OUTPUT=$(CACHE)/build/selftests \
		BUILD=$(CACHE)/build clean
	rm -rf $(KSFT_INSTALL)
	$(MAKE) -C tools BUILD=$(CACHE)/build clean

# Everything fetched as well: the next make fetches it again.
distclean:
	rm -rf $(CACHE)

.PHONY: all module module-clean deps modules selftests tools check run bench deb matrix \
	check-debug soak style \
	sparse clean distclean
