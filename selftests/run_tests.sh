#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run zcopy's selftests inside the VM: each binary in the order of the TESTS
# file beside this script (or those named as arguments), its TAP output as it
# comes, then a line "# zcopy-suite: NAME exit STATUS (SECONDS s)" per binary,
# which the host uses to count a binary that died without reporting every test.

dir=$(dirname "$0")

# now: seconds since boot, to the hundredth (busybox has no date +%N).
now() {
	read -r up _ </proc/uptime
	echo "$up"
}

tests=${*:-$(cat "$dir/TESTS")}
rc=0
if ! "$dir/setup_net.sh"; then
	echo "# zcopy-suite: setup_net failed; network tests will fail or skip"
	rc=1
fi
# The C tests exercise pinning and the pool at every size, so the module
# copies no send for being short (copy_below 0) unless a test sets it; the
# shell tests run the tools as users do, with the module's default.
copy_below=/sys/module/zcopy/parameters/copy_below
default_copy_below=$(cat $copy_below 2>/dev/null)
for t in $tests; do
	echo "# zcopy-suite: start $t"
	if [ -w $copy_below ]; then
		case $t in
		*.sh) echo "$default_copy_below" >$copy_below ;;
		*) echo 0 >$copy_below ;;
		esac
	fi
	start=$(now)
	"$dir/$t"
	status=$?
	echo "# zcopy-suite: $t exit $status ($(awk "BEGIN { print $(now) - $start }") s)"
	[ $status -eq 0 ] || [ $status -eq 4 ] || rc=1
done

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
