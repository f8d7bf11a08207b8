#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run zcopy's selftests inside the VM through kselftest's runner
# (run_kselftest.sh beside this script): the whole collection, or the tests
# named as arguments, with kselftest's TAP. Each test sets up what it needs
# (setup_net.sh; the C tests' copy_below). ZCOPY_TEST_TIMEOUT overrides the
# per-test timeout of zcopy/settings (for the long soak runs).

dir=$(dirname "$0")
set -- $(for t in "$@"; do echo "-t zcopy:$t"; done)
[ $# -gt 0 ] || set -- -c zcopy
[ -z "$ZCOPY_TEST_TIMEOUT" ] || set -- "$@" -o "$ZCOPY_TEST_TIMEOUT"
"$dir/run_kselftest.sh" "$@"
rc=$?

# A kernel with kmemleak (the debug kernel): scan once everything is closed
# and report as one more test; any unreferenced object fails it.
kmemleak=/sys/kernel/debug/kmemleak
grep -q " /sys/kernel/debug " /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
if [ -w $kmemleak ]; then
	echo "# zcopy-suite: start kmemleak"
	echo "TAP version 13"
	echo "1..1"
	# Objects freed by RCU or by the workqueue go first; kmemleak reports
	# an object only once it has stayed unreferenced across two scans.
	sleep 5
	echo scan >$kmemleak
	sleep 5
	echo scan >$kmemleak
	leaks=$(grep -c '^unreferenced object' $kmemleak)
	if [ "$leaks" -eq 0 ]; then
		echo "ok 1 kmemleak_scan"
	else
		sed 's/^/# /' $kmemleak
		echo "not ok 1 kmemleak_scan: $leaks unreferenced objects"
		rc=1
	fi
	echo "# zcopy-suite: kmemleak exit 0"
fi
exit $rc
