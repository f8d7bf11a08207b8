#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make run` shows, inside the VM: zcopy loaded, then real transfers
# from this namespace to another one over a veth pair, each checked end to
# end by checksum, with zcopy's ledger before and after, against a plain
# write()/read() copy of the same bytes.

set -e
BYTES=${DEMO_BYTES:-64M}
DEST=198.18.1.2
ip() { /usr/bin/ip "$@"; }

echo "== kernel $(uname -r)"
echo "== module"
lsmod | grep -E '^(Module|zcopy)'
ls -l /dev/zcopy
/selftests/setup_net.sh >/dev/null
echo "== network: veth0 $(ip -br addr show veth0 | awk '{print $3}') -> netns vpeer, veth1 $DEST"

echo "== ledger before"
zcstat

# transfer LABEL TX_METHOD RX_METHOD [ZCSEND ARGS...]: one stream of $BYTES,
# checksummed on both sides; prints both reports, keeps the JSON.
port=7000
transfer() {
	label=$1 txm=$2 rxm=$3
	shift 3
	port=$((port + 1))
	echo
	echo "== $label: zcsend --method $txm  ->  zcrecv --method $rxm"
	ip netns exec vpeer zcrecv --listen "$DEST:$port" --method "$rxm" --checksum \
		>/tmp/rx.txt &
	zcsend --connect "$DEST:$port" --method "$txm" --bytes "$BYTES" --checksum "$@" \
		>/tmp/tx.txt
	wait $!
	sed 's/^/  sender:   /' /tmp/tx.txt | grep -v '^  sender:   *$'
	sed 's/^/  receiver: /' /tmp/rx.txt
	tx=$(sed -n 's/^checksum (FNV-1a 64): //p' /tmp/tx.txt)
	rx=$(sed -n 's/^checksum (FNV-1a 64): //p' /tmp/rx.txt)
	if [ -n "$tx" ] && [ "$tx" = "$rx" ]; then
		echo "  checksums match: $tx"
	else
		echo "  CHECKSUMS DIFFER: sent $tx, received $rx"
		exit 1
	fi
	# The figures for the comparison, from the text reports.
	mbs=$(sed -n 's/.* s, \([0-9.]*\) MB\/s$/\1/p' /tmp/tx.txt)
	txcpu=$(sed -n 's/^CPU: .* \([0-9.]*\) s per GiB$/\1/p' /tmp/tx.txt)
	rxcpu=$(sed -n 's/^CPU: .* \([0-9.]*\) s per GiB$/\1/p' /tmp/rx.txt)
	printf '%-34s %10s %16s %18s\n' "$label" "$mbs" "$txcpu" "$rxcpu" >>/tmp/summary
}

: >/tmp/summary
transfer "plain copy" write read
transfer "zcopy pinned send" zcopy read
transfer "zcopy pool send" zcopy-pool read
transfer "zcopy pool send, with records" zcopy-pool read --notify
transfer "zcopy pool send + receive mapping" zcopy-pool zcopy-recv

echo
echo "== ledger after (module-wide)"
zcstat

echo
echo "== side by side ($BYTES per transfer; emulated CPU: compare rows, not absolutes)"
printf '%-34s %10s %16s %18s\n' "transfer" "MB/s" "sender s/GiB" "receiver s/GiB"
cat /tmp/summary
