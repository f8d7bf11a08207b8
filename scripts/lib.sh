# SPDX-License-Identifier: GPL-2.0
# Shared settings for zcopy's scripts: the pinned kernels and the cache layout.
# Sourced, never run.

ZCOPY_ROOT=${ZCOPY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ZCOPY_CACHE=${ZCOPY_CACHE:-$ZCOPY_ROOT/.cache}

# short name | ABI name | Debian version | kbuild package | linux-source package
ZCOPY_KERNEL_TABLE="
6.1  6.1.0-56-amd64         6.1.192-2           linux-kbuild-6.1           linux-source-6.1
6.12 6.12.117+deb12-amd64   6.12.117-1~deb12u1  linux-kbuild-6.12.117+deb12 linux-source-6.12
6.1-rt 6.1.0-56-rt-amd64     6.1.192-2           linux-kbuild-6.1           linux-source-6.1
6.12-debug 6.12.117-zcopy-debug 6.12.117-1~deb12u1 - linux-source-6.12
"
# 6.1-rt is Debian's PREEMPT_RT flavour of 6.1: spinlocks sleep there and
# softirqs run in threads. 6.12-debug is built from 6.12's linux-source by
# scripts/build-debug-kernel (KASAN, lockdep, kmemleak, fault injection):
# make check-debug runs it.

# KERNELS overrides the set, by short name or ABI name ("6.12", "6.1 6.12").
KERNELS=${KERNELS:-6.1 6.12 6.1-rt}

msg() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# kernel_field NAME FIELD: FIELD is 1..5 as in the table above.
kernel_field() {
	local line
	line=$(printf '%s\n' "$ZCOPY_KERNEL_TABLE" | awk -v k="$1" '$1 == k || $2 == k')
	[ -n "$line" ] || die "unknown kernel '$1' (known: $(printf '%s\n' "$ZCOPY_KERNEL_TABLE" | awk 'NF {printf "%s ", $1}'))"
	printf '%s\n' "$line" | awk -v f="$2" '{print $f}'
}

kernel_short() { kernel_field "$1" 1; }
kernel_abi() { kernel_field "$1" 2; }
kernel_version() { kernel_field "$1" 3; }

kernel_is_debug() { case $(kernel_short "$1") in *-debug) return 0 ;; esac; return 1; }
kernel_is_rt() { case $(kernel_short "$1") in *-rt) return 0 ;; esac; return 1; }

# Where one kernel's packages are extracted (image, headers, -common, kbuild),
# or where the debug kernel is built (its objects in obj/, its modules in root/).
kernel_root() {
	if kernel_is_debug "$1"; then
		echo "$ZCOPY_CACHE/build/$(kernel_short "$1")"
	else
		echo "$ZCOPY_CACHE/kernels/$(kernel_short "$1")"
	fi
}
kernel_kdir() {
	if kernel_is_debug "$1"; then
		echo "$(kernel_root "$1")/obj"
	else
		echo "$(kernel_root "$1")/usr/src/linux-headers-$(kernel_abi "$1")"
	fi
}
kernel_image() {
	if kernel_is_debug "$1"; then
		echo "$(kernel_root "$1")/obj/arch/x86/boot/bzImage"
	else
		echo "$(kernel_root "$1")/boot/vmlinuz-$(kernel_abi "$1")"
	fi
}
# The selftests' own module (selftests/zcopy_testmod), as build-module builds it.
testmod_path() { echo "$ZCOPY_CACHE/build/$(kernel_short "$1")/testmod/zcopy_testmod.ko"; }
kernel_modules() {
	if kernel_is_debug "$1"; then
		echo "$(kernel_root "$1")/root/lib/modules/$(kernel_abi "$1")"
	else
		echo "$(kernel_root "$1")/lib/modules/$(kernel_abi "$1")"
	fi
}
# The extracted linux-source tree.
kernel_src() { echo "$ZCOPY_CACHE/src/$(kernel_field "$1" 5)"; }

# The newest fetched source: where checkpatch and the kselftest harness come from.
newest_kernel() { printf '%s\n' $KERNELS | sort -V | tail -n1; }
