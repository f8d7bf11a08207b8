#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The VM's test network, set up once before the suite (idempotent):
#
#   init netns: eth0 198.18.0.1/24 fd00:5a::1/64  <- QEMU hub ->  netns "peer": eth1 198.18.0.2/24 fd00:5a::2/64
#   init netns: veth0 198.18.1.1/24 fd00:5b::1/64 <- veth pair ->  netns "vpeer": veth1 198.18.1.2/24 fd00:5b::2/64
#
# 198.18.0.0/15 is the range set aside for benchmarking; nothing leaves the VM.

set -e
[ -e /run/netns/peer ] && exit 0

# busybox's shell runs its own applets before anything on PATH: call
# iproute2 and ethtool, copied into the VM, by their paths.
ip() { /usr/bin/ip "$@"; }
ethtool() { /usr/bin/ethtool "$@"; }

ip netns add peer
ip netns add vpeer
ip -n peer link set lo up
ip -n vpeer link set lo up

ip link set eth1 netns peer
ip addr add 198.18.0.1/24 dev eth0
ip -6 addr add fd00:5a::1/64 dev eth0 nodad
ip link set eth0 up
ip -n peer addr add 198.18.0.2/24 dev eth1
ip -n peer -6 addr add fd00:5a::2/64 dev eth1 nodad
ip -n peer link set eth1 up

ip link add veth0 type veth peer name veth1 netns vpeer
ip addr add 198.18.1.1/24 dev veth0
ip -6 addr add fd00:5b::1/64 dev veth0 nodad
ip link set veth0 up
ip -n vpeer addr add 198.18.1.2/24 dev veth1
ip -n vpeer -6 addr add fd00:5b::2/64 dev veth1 nodad
ip -n vpeer link set veth1 up

# QEMU's e1000e segments TCP over IPv6 badly (thousands of retransmissions,
# 0.3 MB/s): IPv6 TSO off, scatter-gather and checksum offload (what
# zero-copy needs) stay on.
ethtool -K eth0 tx-tcp6-segmentation off
ip netns exec peer /usr/bin/ethtool -K eth1 tx-tcp6-segmentation off

# e1000e negotiates its link for a moment after going up.
i=0
until ping -c1 -W1 198.18.0.2 >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 20 ] || { echo "setup_net: 198.18.0.2 unreachable"; exit 1; }
done
ping -c1 -W2 fd00:5a::2 >/dev/null
ping -c1 -W2 198.18.1.2 >/dev/null
echo "# setup_net: eth0 offloads: $(ethtool -k eth0 | grep -E '^(scatter-gather|tx-checksumming|tcp-segmentation-offload):' | tr '\n' ' ')"
