#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# libzcopy's test pattern (pattern.c), which zcrecv --verify trusts to place
# each UDP datagram. Output: TAP.

set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! gcc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$root/uapi" -I"$root/tools/lib" \
	-o "$tmp/pattern" "$here/pattern.c" "$root/tools/lib/libzcopy.c" 2>"$tmp/cc"; then
	. "$here/../tap.sh"
	tap_plan 1
	sed 's/^/# /' "$tmp/cc"
	tap_fail "pattern.c builds"
	tap_done
fi
"$tmp/pattern"
