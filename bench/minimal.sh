#!/bin/sh
# The lab's daemons in plain network namespaces, without the harness: the baseline
# `calico-lab bench` compares its bring-up with. It runs inside one container of
# the emulated image (no network, no host namespace touched). $1 is a bundle that
# calico-lab renders from the topology:
#   devices            "<device> <router|node|fabric> <sessions expected>" per line
#   wiring.sh          the veths, bridges, addresses and routes between namespaces
#   frr/<router>.conf  each router's frr.conf
#   bird/<node>/       each node's BIRD files as calico-node writes them
#   pods/<node>.sh     each node's pods, wired as Calico's CNI does
# Prints "started <ms>" once every daemon runs and "established <ms>" once every
# BGP session is Established, both counted from the script's start; exits 1 after
# 120 s without.
set -eu
b=$1
start=$(date +%s%N)

while read -r device role expected; do
  ip netns add "$device"
  ip netns exec "$device" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0 net.ipv4.icmp_ratelimit=0
done <"$b/devices"
sh "$b/wiring.sh"

while read -r device role expected; do
  case $role in
  router)
    mkdir -p "/etc/frr/$device"
    cp "$b/frr/$device.conf" "/etc/frr/$device/frr.conf"
    cp /etc/frr/daemons "/etc/frr/$device/daemons"
    ip netns exec "$device" /usr/lib/frr/frrinit.sh start "$device" >/dev/null
    ;;
  node)
    mkdir -p /run/bird
    (cd "$b/bird/$device" && ip netns exec "$device" bird -c bird.cfg -s "/run/bird/$device.ctl")
    ip netns exec "$device" sh "$b/pods/$device.sh"
    ;;
  esac
done <"$b/devices"

echo "started $((($(date +%s%N) - start) / 1000000))ms"

established() {
  case $2 in
  router) vtysh -N "$1" -c 'show bgp summary json' | grep -c '"state": *"Established"' || true ;;
  node) birdc -s "/run/bird/$1.ctl" show protocols | grep -c 'Established' || true ;;
  *) echo 0 ;;
  esac
}

while :; do
  pending=0
  while read -r device role expected; do
    [ "$expected" -eq 0 ] && continue
    [ "$(established "$device" "$role")" -ge "$expected" ] || { pending=1; break; }
  done <"$b/devices"
  now=$(date +%s%N)
  if [ $pending -eq 0 ]; then
    echo "established $(((now - start) / 1000000))ms"
    exit 0
  fi
  [ $(((now - start) / 1000000000)) -lt 120 ] || { echo "not established after 120 s" >&2; exit 1; }
  sleep 0.05
done
