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

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n $1"; }

echo "TAP version 13"
echo "1..5"

for bits in 64 32; do
	if gcc -m$bits -std=c99 -Wall -Wextra -Wpadded -Werror -I"$root/uapi" \
		-o "$tmp/layout$bits" "$here/uapi_layout.c" 2>"$tmp/cc$bits"; then
		ok "uapi builds for -m$bits with -Wpadded"
	else
		sed 's/^/# /' "$tmp/cc$bits"
		not_ok "uapi builds for -m$bits with -Wpadded"
	fi
done

if "$tmp/layout64" >"$tmp/out64" 2>"$tmp/err64" &&
	"$tmp/layout32" >"$tmp/out32" 2>"$tmp/err32"; then
	ok "every structure is tiled by its fields"
else
	cat "$tmp/err64" "$tmp/err32" 2>/dev/null | sed 's/^/# /'
	not_ok "every structure is tiled by its fields"
fi

if diff -u "$tmp/out64" "$tmp/out32" >"$tmp/diff"; then
	ok "-m32 and -m64 layouts and ioctl numbers are identical"
else
	sed 's/^/# /' "$tmp/diff"
	not_ok "-m32 and -m64 layouts and ioctl numbers are identical"
fi

missing=
for s in $(grep -oE '^struct [a-z0-9_]+ \{' "$hdr" | awk '{print $2}'); do
	grep -q "^struct $s " "$tmp/out64" || missing="$missing struct:$s"
done
for c in $(grep -oE '^#define ZCOPY_IOC_[A-Z0-9_]+[[:space:]]+_IO' "$hdr" | awk '{print $2}'); do
	grep -q "^ioctl $c " "$tmp/out64" || missing="$missing ioctl:$c"
done
if [ -z "$missing" ]; then
	ok "uapi_layout.c covers every structure and ioctl"
else
	echo "# not described in uapi_layout.c:$missing"
	not_ok "uapi_layout.c covers every structure and ioctl"
fi
exit $failed
