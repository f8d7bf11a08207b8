# SPDX-License-Identifier: GPL-2.0
# Shared settings for zcopy's scripts: the pinned kernels and the cache layout.
# Sourced, never run.

ZCOPY_ROOT=${ZCOPY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ZCOPY_CACHE=${ZCOPY_CACHE:-$ZCOPY_ROOT/.cache}

# short name | ABI name | Debian version | kbuild package | linux-source package
ZCOPY_KERNEL_TABLE="
6.1  6.1.0-56-amd64         6.1.192-2           linux-kbuild-6.1           linux-source-6.1
6.12 6.12.117+deb12-amd64   6.12.117-1~deb12u1  linux-kbuild-6.12.117+deb12 linux-source-6.12
"

# KERNELS overrides the set, by short name or ABI name ("6.12", "6.1 6.12").
KERNELS=${KERNELS:-6.1 6.12}

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

# Where one kernel's packages are extracted (image, headers, -common, kbuild).
kernel_root() { echo "$ZCOPY_CACHE/kernels/$(kernel_short "$1")"; }
kernel_kdir() { echo "$(kernel_root "$1")/usr/src/linux-headers-$(kernel_abi "$1")"; }
kernel_image() { echo "$(kernel_root "$1")/boot/vmlinuz-$(kernel_abi "$1")"; }
kernel_modules() { echo "$(kernel_root "$1")/lib/modules/$(kernel_abi "$1")"; }
# The extracted linux-source tree.
kernel_src() { echo "$ZCOPY_CACHE/src/linux-source-$(kernel_short "$1")"; }

# The newest fetched source: where checkpatch and the kselftest harness come from.
newest_kernel() { printf '%s\n' $KERNELS | sort -V | tail -n1; }
