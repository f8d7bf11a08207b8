#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The VM's test network, set up by the first test that needs it (idempotent). Each
# e1000e pair joins the init netns to another one through a QEMU hub:
#
#   eth0 198.18.0.1 fd00:5a::1  MTU 1500  <->  eth1 198.18.0.2 fd00:5a::2 (netns "peer")
#   eth2 198.18.2.1 fd00:5c::1  MTU 4148  <->  eth3 198.18.2.2 fd00:5c::2 (netns "peer")
#   eth4 198.18.3.1 fd00:5d::1  MTU 4168  <->  eth5 198.18.3.2 fd00:5d::2 (netns "far")
#   eth6 198.18.4.1 fd00:5e::1  MTU 9000  <->  eth7 198.18.4.2 fd00:5e::2 (netns "peer")
#   veth0 198.18.1.1 fd00:5b::1 (init)    <->  veth1 198.18.1.2 fd00:5b::2 (netns "vpeer")
#
# A proxy here relays between "peer" and "far" across two NICs: client,
# proxy and server each in a namespace of their own.
#
# Over 1500 bytes e1000e splits headers from payload: the headers land in a
# small buffer, the payload in whole pages from offset 0. 4148 and 4168 are
# the MTUs whose TCP segments (timestamps on) carry one page of payload over
# IPv4 and IPv6: 4096 + 20 + 32 and 4096 + 40 + 32. At 9000 a segment is two
# pages and 756 bytes.
#
# 198.18.0.0/15 is the range set aside for benchmarking; nothing leaves the VM.

set -e
# Written last: a network made whole.
ready=/run/zcopy-net-ready
[ -e $ready ] && exit 0
if [ -e /run/netns/peer ]; then
	echo "setup_net: an earlier setup stopped half-way (netns peer, no $ready)"
	exit 1
fi
# Only in zcopy's VM, whose NICs scripts/vm-run made: never move a real
# machine's interfaces into namespaces.
if [ "$(cat /sys/class/net/eth0/address 2>/dev/null)" != 52:54:00:00:00:10 ]; then
	echo "# setup_net: not zcopy's VM (no eth0 52:54:00:00:00:10): no test network"
	exit 0
fi

# busybox's shell runs its own applets before anything on PATH: call
# iproute2 and ethtool, copied into the VM, by their paths.
ip() { /usr/bin/ip "$@"; }
ethtool() { /usr/bin/ethtool "$@"; }

for ns in peer far vpeer; do
	ip netns add $ns
	ip -n $ns link set lo up
done

# nic_pair N SUBNET4 SUBNET6 MTU NETNS: eth(2N) here, eth(2N + 1) in NETNS.
nic_pair() {
	here=eth$(($1 * 2)) there=eth$(($1 * 2 + 1)) ns=$5
	ip link set "$there" netns "$ns"
	ip link set "$here" mtu "$4"
	ip -n "$ns" link set "$there" mtu "$4"
	ip addr add "$2.1/24" dev "$here"
	ip -6 addr add "$3::1/64" dev "$here" nodad
	ip -n "$ns" addr add "$2.2/24" dev "$there"
	ip -n "$ns" -6 addr add "$3::2/64" dev "$there" nodad
	ip link set "$here" up
	ip -n "$ns" link set "$there" up
	# QEMU 7.2's e1000e does not segment TCP: it sends a TSO packet as IP
	# fragments of MSS bytes each (IPv4; over IPv6, thousands of
	# retransmissions at 0.3 MB/s), which the receiver reassembles, the
	# first with the TCP header in its payload page. TSO off: the stack
	# segments in software, each segment's frags still the sender's
	# pages; scatter-gather and checksum offload (what zero-copy needs)
	# stay on.
	ethtool -K "$here" tso off
	ip netns exec "$ns" /usr/bin/ethtool -K "$there" tso off
}

nic_pair 0 198.18.0 fd00:5a 1500 peer
nic_pair 1 198.18.2 fd00:5c 4148 peer
nic_pair 2 198.18.3 fd00:5d 4168 far
nic_pair 3 198.18.4 fd00:5e 9000 peer

ip link add veth0 type veth peer name veth1 netns vpeer
ip addr add 198.18.1.1/24 dev veth0
ip -6 addr add fd00:5b::1/64 dev veth0 nodad
ip link set veth0 up
ip -n vpeer addr add 198.18.1.2/24 dev veth1
ip -n vpeer -6 addr add fd00:5b::2/64 dev veth1 nodad
ip -n vpeer link set veth1 up
# A big datagram is reassembled from IP fragments, and by default a queue
# is dropped once 64 fragments from the same source came in between two of
# its own (ipfrag_max_dist). The stress test's streams interleave more than
# that on 6.1-rt, where softirqs run in threads: datagrams were lost in
# reassembly (ReasmFails), never by zcopy. No such limit here.
for ns in "" peer far vpeer; do
	if [ -n "$ns" ]; then
		ip netns exec "$ns" sh -c "echo 0 >/proc/sys/net/ipv4/ipfrag_max_dist"
	else
		echo 0 >/proc/sys/net/ipv4/ipfrag_max_dist
	fi
done

# e1000e negotiates its link for a moment after going up.
for peer in 198.18.0.2 198.18.2.2 198.18.3.2 198.18.4.2; do
	i=0
	until ping -c1 -W1 $peer >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 20 ] || { echo "setup_net: $peer unreachable"; exit 1; }
	done
done
for peer in fd00:5a::2 fd00:5c::2 fd00:5d::2 fd00:5e::2 198.18.1.2; do
	ping -c1 -W2 $peer >/dev/null
done
echo "# setup_net: eth0 offloads: $(ethtool -k eth0 | grep -E '^(scatter-gather|tx-checksumming|tcp-segmentation-offload):' | tr '\n' ' ')"
: >$ready
