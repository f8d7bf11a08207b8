#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run zcopy's selftests inside the VM: each binary in the order of the TESTS
# file beside this script (or those named as arguments), its TAP output as it
# comes, then a line "# zcopy-suite: NAME exit STATUS" per binary, which the
# host uses to count a binary that died without reporting every test.

dir=$(dirname "$0")
tests=${*:-$(cat "$dir/TESTS")}
rc=0
if ! "$dir/setup_net.sh"; then
	echo "# zcopy-suite: setup_net failed; network tests will fail or skip"
	rc=1
fi
for t in $tests; do
	echo "# zcopy-suite: start $t"
	"$dir/$t"
	status=$?
	echo "# zcopy-suite: $t exit $status"
	[ $status -eq 0 ] || [ $status -eq 4 ] || rc=1
done
exit $rc
