# SPDX-License-Identifier: GPL-2.0
#
# TAP for zcopy's shell tests, sourced: POSIX sh, so that busybox runs it in
# the VM as bash does on the host.
#
#   tap_plan N         the version line and the plan
#   tap_ok NAME        a test passed
#   tap_fail NAME      a test failed: tap_done will exit 1
#   tap_skip NAME WHY  a test that could not run here
#   tap_done           exit 1 if any test failed, else 0

tap_n=0
tap_failed=0

tap_plan() {
	echo "TAP version 13"
	echo "1..$1"
}

tap_ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n $*"
}

tap_fail() {
	tap_n=$((tap_n + 1))
	tap_failed=1
	echo "not ok $tap_n $*"
}

tap_skip() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n $1 # SKIP $2"
}

tap_done() {
	exit $tap_failed
}
