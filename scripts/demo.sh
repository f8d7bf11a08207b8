#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make run` shows, inside the VM: zcopy loaded, then real transfers,
# each checked end to end by checksum, against a plain write()/read() copy
# of the same bytes. First across a NIC: a pool sender in this namespace,
# e1000e at MTU 4148 with header split, a zcopy receiver in netns peer,
# and no CPU copy of payload on either side. Then over a veth pair.

set -e
BYTES=${DEMO_BYTES:-64M}
ip() { /usr/bin/ip "$@"; }

echo "== kernel $(uname -r)"
echo "== module"
lsmod | grep -E '^(Module|zcopy)'
ls -l /dev/zcopy
/selftests/zcopy/setup_net.sh >/dev/null

echo "== ledger before"
zcstat

# transfer NETNS DEST LABEL TX_METHOD RX_METHOD [ZCSEND ARGS...]: one stream
# of $BYTES to a receiver at DEST in NETNS, checksummed on both sides;
# prints both reports.
port=7000
transfer() {
	ns=$1 dest=$2 label=$3 txm=$4 rxm=$5
	shift 5
	port=$((port + 1))
	echo
	echo "== $label: zcsend --method $txm $*  ->  zcrecv --method $rxm"
	ip netns exec "$ns" zcrecv --listen "$dest:$port" --method "$rxm" --checksum \
		>/tmp/rx.txt &
	zcsend --connect "$dest:$port" --method "$txm" --bytes "$BYTES" --checksum "$@" \
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
	printf '%-44s %8s %14s %16s\n' "$label" "$mbs" "$txcpu" "$rxcpu" >>/tmp/summary
}

# The receiver's report holds the module-wide ledger over the transfer,
# both ends included: the CPU copies of payload it counts.
copies() {
	awk '
	/^ *copied +[0-9]+ bytes:/ { tx += $2 }
	/ bytes sent from a copy$/ { tx += $(NF - 5) }
	/^ *COW copies/ { cow = $3 + 0 }
	/^ *received / { map = $2; rx = $5 }
	END {
		printf "  CPU copies of payload: sending %d bytes, copy-on-write %d pages; ", tx, cow
		printf "receiving %d bytes copied, %d mapped\n", rx, map
	}' /tmp/rx.txt
}

: >/tmp/summary
echo
echo "== across a NIC: eth2 (MTU 4148) -> e1000e header split -> netns peer, eth3 198.18.2.2"
transfer peer 198.18.2.2 "e1000e 4148: plain copy" write read
transfer peer 198.18.2.2 "e1000e 4148: pool send + receive mapping" zcopy-pool zcopy-recv \
	--notify
copies

echo
echo "== over veth: veth0 -> netns vpeer, veth1 198.18.1.2"
transfer vpeer 198.18.1.2 "veth: plain copy" write read
transfer vpeer 198.18.1.2 "veth: zcopy pinned send" zcopy read
transfer vpeer 198.18.1.2 "veth: zcopy pool send" zcopy-pool read
transfer vpeer 198.18.1.2 "veth: zcopy pool send, with records" zcopy-pool read --notify
transfer vpeer 198.18.1.2 "veth: zcopy pool send + receive mapping" zcopy-pool zcopy-recv

echo
echo "== ledger after (module-wide)"
zcstat

echo
echo "== side by side ($BYTES per transfer; emulated CPU: compare rows, not absolutes)"
printf '%-44s %8s %14s %16s\n' "transfer" "MB/s" "sender s/GiB" "receiver s/GiB"
cat /tmp/summary
