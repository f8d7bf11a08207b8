#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Test scripts/check-splat, the VM runner's splat detector: a clean console
# passes, and a console holding any one kind of splat fails with that splat
# printed. Output: TAP.

set -u
here=$(cd "$(dirname "$0")" && pwd)
check=$here/../../scripts/check-splat
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A clean boot, with the lines that look alarming but are not splats.
cat >"$tmp/clean" <<'LOG'
[    0.000000] Linux version 6.12.117+deb12-amd64 (debian-kernel@lists.debian.org)
[    0.000000] Command line: console=ttyS0 panic=-1 mitigations=off
[    0.512000] RAS: Correctable Errors collector initialized.
[    1.100000] clocksource: Switched to clocksource tsc-early
[    2.300000] zcopy: loading out-of-tree module taints kernel.
[    2.300100] zcopy: module verification failed: signature and/or required key missing - tainting kernel
[    2.310000] zcopy: ABI 1 ready on /dev/zcopy
[    3.000000] e1000e 0000:00:02.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx
[    3.100000] reboot: Power down
LOG

# name|line: one per kind of splat the runner must catch.
splats=(
	"BUG|BUG: kernel NULL pointer dereference, address: 0000000000000008"
	"BUG sleeping|BUG: sleeping function called from invalid context at mm/gup.c:1234"
	"WARNING|WARNING: CPU: 1 PID: 77 at kmod/main.c:91 zcopy_init+0x11/0x30 [zcopy]"
	"lockdep|WARNING: possible circular locking dependency detected"
	"Oops|Oops: 0002 [#1] PREEMPT SMP NOPTI"
	"general protection|general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP"
	"refcount_t|refcount_t: underflow; use-after-free."
	"list_del|list_del corruption, ffff888003a1b2c0->next is LIST_POISON1 (dead000000000100)"
	"Bad page|BUG: Bad page state in process zcsend  pfn:0a3f1"
	"Bad page map|Bad page map in process zcsend  pte:8000000003a3f067 pmd:0a3f2067"
	"KFENCE|BUG: KFENCE: use-after-free read in zcopy_release+0x2c/0x60 [zcopy]"
	"UBSAN|UBSAN: shift-out-of-bounds in kmod/main.c:40:12"
	"KASAN|BUG: KASAN: slab-use-after-free in zcopy_complete+0x1c/0x80 [zcopy]"
	"kernel BUG|kernel BUG at mm/memory.c:1800!"
	"hung task|INFO: task zcsend:120 blocked for more than 120 seconds."
	"soft lockup|watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [zcsend:120]"
	"RCU stall|rcu: INFO: rcu_preempt self-detected stall on CPU"
	"panic|Kernel panic - not syncing: Fatal exception in interrupt"
	"kmemleak|unreferenced object 0xffff888004b1c000 (size 64):"
)

. "$here/../tap.sh"
tap_plan $((${#splats[@]} + 2))

if "$check" "$tmp/clean" >"$tmp/out" 2>&1; then
	tap_ok "clean console passes"
else
	sed 's/^/# /' "$tmp/out"
	tap_fail "clean console passes"
fi

for s in "${splats[@]}"; do
	name=${s%%|*}
	line=${s#*|}
	{ head -n 5 "$tmp/clean"; echo "[    4.000000] $line";
	  echo "[    4.000001] Call Trace:"; tail -n 4 "$tmp/clean"; } >"$tmp/log"
	if "$check" "$tmp/log" >"$tmp/out" 2>&1; then
		tap_fail "$name makes the run fail"
	elif ! grep -qF -- "$line" "$tmp/out"; then
		sed 's/^/# /' "$tmp/out"
		tap_fail "$name makes the run fail and is printed"
	else
		tap_ok "$name makes the run fail and is printed"
	fi
done

# The splat may sit in dmesg only, not on the console.
printf '[    5.0] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1\n' >"$tmp/dmesg"
if "$check" "$tmp/clean" "$tmp/dmesg" >/dev/null 2>&1; then
	tap_fail "a splat in the second log fails the run"
else
	tap_ok "a splat in the second log fails the run"
fi
tap_done
