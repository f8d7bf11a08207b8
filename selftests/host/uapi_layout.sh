#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prove that uapi/linux/zcopy.h has one layout for 32-bit and 64-bit user
# space: no implicit padding, equal sizes, offsets and ioctl numbers, and
# every structure and ioctl of the header described by uapi_layout.c.
# Output: TAP.

set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
hdr=$root/uapi/linux/zcopy.h
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$here/../tap.sh"

tap_plan 5

# The layout as the compiler sees it, read from the assembly: "struct NAME
# SIZE", then "  FIELD OFFSET SIZE" per field; any hole, overlap or size that
# is not a multiple of 8 goes to stderr.
layout() {
	sed -n 's/.*->\([a-z]*\) \([^ ]*\) \([0-9]*\) *\([0-9]*\).*/\1 \2 \3 \4/p' "$1" | awk '
	$1 == "struct" { printf "struct %s %d\n", $2, $3; next_off = 0; next }
	$1 == "field" {
		split($2, sf, ".")
		if ($3 != next_off) {
			printf "struct %s: %s at %d, expected %d (hole or missing field)\n",
				sf[1], sf[2], $3, next_off > "/dev/stderr"
			bad = 1
		}
		printf "  %-16s %4d %4d\n", sf[2], $3, $4
		next_off = $3 + $4
		next
	}
	$1 == "end" {
		if (next_off != $3) {
			printf "struct %s: fields end at %d, size is %d\n", $2, next_off, $3 > "/dev/stderr"
			bad = 1
		}
		if ($3 % 8) {
			printf "struct %s: size %d is not a multiple of 8\n", $2, $3 > "/dev/stderr"
			bad = 1
		}
		next
	}
	$1 == "ioctl" { printf "ioctl %s %#x\n", $2, $3 * 65536 + $4 }
	END { exit bad }'
}

for bits in 64 32; do
	if gcc -m$bits -std=gnu99 -Wall -Wextra -Wpadded -Werror -I"$root/uapi" \
		-S -o "$tmp/layout$bits.s" "$here/uapi_layout.c" 2>"$tmp/cc$bits"; then
		tap_ok "uapi builds for -m$bits with -Wpadded"
	else
		sed 's/^/# /' "$tmp/cc$bits"
		tap_fail "uapi builds for -m$bits with -Wpadded"
	fi
done

if layout "$tmp/layout64.s" >"$tmp/out64" 2>"$tmp/err64" &&
	layout "$tmp/layout32.s" >"$tmp/out32" 2>"$tmp/err32" &&
	[ -s "$tmp/out64" ]; then
	tap_ok "every structure is tiled by its fields"
else
	cat "$tmp/err64" "$tmp/err32" 2>/dev/null | sed 's/^/# /'
	tap_fail "every structure is tiled by its fields"
fi

if diff -u "$tmp/out64" "$tmp/out32" >"$tmp/diff"; then
	tap_ok "-m32 and -m64 layouts and ioctl numbers are identical"
else
	sed 's/^/# /' "$tmp/diff"
	tap_fail "-m32 and -m64 layouts and ioctl numbers are identical"
fi

missing=
for s in $(grep -oE '^struct [a-z0-9_]+ \{' "$hdr" | awk '{print $2}'); do
	grep -q "^struct $s " "$tmp/out64" || missing="$missing struct:$s"
done
for c in $(grep -oE '^#define ZCOPY_IOC_[A-Z0-9_]+[[:space:]]+_IO' "$hdr" | awk '{print $2}'); do
	grep -q "^ioctl $c " "$tmp/out64" || missing="$missing ioctl:$c"
done
if [ -z "$missing" ]; then
	tap_ok "uapi_layout.c covers every structure and ioctl"
else
	echo "# not described in uapi_layout.c:$missing"
	tap_fail "uapi_layout.c covers every structure and ioctl"
fi
tap_done
