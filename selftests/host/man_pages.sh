#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The man pages in man/: each renders without a warning from man(1) and
# groff, and each tool's page names every long option its --help lists,
# so that a new option cannot go undocumented. Output: TAP.

set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/.cache/build/tools/bin
. "$here/../tap.sh"

pages=("$root"/man/*.[0-9])
tools=(zcsend zcrecv zcstat zcproxy)
tap_plan $((${#pages[@]} + ${#tools[@]}))

for p in "${pages[@]}"; do
	name=man/$(basename "$p")
	if ! command -v man >/dev/null; then
		tap_skip "$name renders without warnings" "no man(1) on this host"
		continue
	fi
	warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
	if [ -z "$warn" ]; then
		tap_ok "$name renders without warnings"
	else
		echo "$warn" | sed 's/^/# /'
		tap_fail "$name renders without warnings"
	fi
done

for t in "${tools[@]}"; do
	page=$root/man/$t.1
	missing=
	# The options are the lines "  -x, --name ..." of --help.
	for opt in $("$bin/$t" --help 2>&1 | sed -n 's/^ *-[a-zA-Z], \(--[a-z][a-z-]*\).*/\1/p'); do
		# The page spells each dash as \-.
		grep -qF -- "${opt//-/\\-}" "$page" 2>/dev/null || missing="$missing $opt"
	done
	if [ -z "$missing" ]; then
		tap_ok "man/$t.1 documents every option of $t --help"
	else
		tap_fail "man/$t.1 documents every option of $t --help (missing:$missing)"
	fi
done
tap_done
