#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make run` shows, inside the VM: zcopy loaded and answering.

set -e
echo "== kernel $(uname -r)"
echo "== module"
lsmod | grep -E '^(Module|zcopy)'
ls -l /dev/zcopy
echo "== zcstat"
zcstat
zcstat --json
