#!/usr/bin/env bash
# A boot storm through the whole chain in a lab, against `phoneboot serve`, measured:
# the sim's summary (phones/s, per-step percentiles), peak RSS of serve and of the sim,
# CPU seconds of both, load average before and after, kernel drops (UDP, softnet, raw port).
#
#   bench/sim/lab-storm.sh PHONES [RATE] [CONCURRENCY] [EXTRA SIM ARGS...]
#   PB=path/to/phoneboot LAB=storm OUT=dir PERF=1 bench/sim/lab-storm.sh 10000 1000 2000
#
# Needs root. Raises host-wide kernel limits a 10,000-phone storm needs for its duration
# (see below). PERF=1 records `perf record -g` of serve; CAPTURE=1 captures DHCP on the
# phone port and the server port; CAPTURE=all captures every frame on the phones' ports and
# counts frames per boot by protocol; PERF_OVS=1 and PERF_SIM=1 record
# ovs-vswitchd and the sim (bench/sim/frames.sh; costs CPU: small storms only);
# KEEP=1 leaves the lab up.
set -uo pipefail
PHONES=${1:-2000}; RATE=${2:-1000}; CONC=${3:-2000}; shift $(( $# < 3 ? $# : 3 ))
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PB=${PB:-${CARGO_TARGET_DIR:-$ROOT/target}/release/phoneboot}
LAB=${LAB:-storm}
OUT=${OUT:-/tmp/pb-lab-storm-$LAB}
mkdir -p "$OUT"
export PHONEBOOT_LAB_DIR=${PHONEBOOT_LAB_DIR:-$OUT/lab}

# Default socket queues (208 KiB) make Open vSwitch's per-port packet sockets and the UDP
# servers drop a storm's bursts by the thousand, and the ARP table (global, not per
# namespace) holds 1,024 entries by default while the server talks to every phone. These
# are host-wide, so they are restored on exit.
KEYS="net.core.rmem_default net.core.wmem_default net.core.rmem_max net.core.wmem_max
  net.core.netdev_max_backlog net.ipv4.neigh.default.gc_thresh1
  net.ipv4.neigh.default.gc_thresh2 net.ipv4.neigh.default.gc_thresh3"
saved=$(for k in $KEYS; do echo "$k=$(sysctl -n "$k")"; done)
trap 'sysctl -q -w $saved >/dev/null' EXIT
sysctl -q -w net.core.rmem_max=67108864 net.core.wmem_max=67108864 \
  net.core.rmem_default=${RMEM_DEFAULT:-8388608} net.core.wmem_default=4194304 \
  net.core.netdev_max_backlog=16384 net.ipv4.neigh.default.gc_thresh1=16384 \
  net.ipv4.neigh.default.gc_thresh2=65536 net.ipv4.neigh.default.gc_thresh3=131072 >/dev/null

"$PB" lab down --name "$LAB" >/dev/null 2>&1 || true
"$PB" lab up --name "$LAB" >/dev/null || exit 1
if [ -n "${MAX_TRANSFERS:-}" ]; then  # the file service's concurrent transfer limit (lab default 20,000)
  sed -i "s/^max_transfers = .*/max_transfers = $MAX_TRANSFERS/" "$PHONEBOOT_LAB_DIR/$LAB/server.toml"
fi
vsctl() { ip netns exec "pb-$LAB-sw" ovs-vsctl --db="unix:$PHONEBOOT_LAB_DIR/$LAB/ovs/db.sock" "$@"; }
# OVS_SET="..." : extra `ovs-vsctl` commands (separated by ';') for experiments with the switch.
IFS=';' read -ra sets <<< "${OVS_SET:-}"
for c in "${sets[@]}"; do [ -n "$c" ] && { read -ra a <<< "$c"; vsctl "${a[@]}" || exit 1; }; done
"$PB" lab serve --name "$LAB" >/dev/null || exit 1
pid=$("$PB" lab status --name "$LAB" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["server_pid"] or "")')
srvns=$("$PB" lab status --name "$LAB" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([i["netns"] for i in d["interfaces"] if i["role"]=="server_voice"][0])')
stat_cpu() { awk '{print ($14+$15)/100}' /proc/"$1"/stat 2>/dev/null; }
ovspid=$(cat "$PHONEBOOT_LAB_DIR/$LAB/ovs/ovs-vswitchd.pid" 2>/dev/null || echo 0)
cpu0=$(stat_cpu "$pid"); ovs0=$(stat_cpu "$ovspid")
appctl() { ip netns exec "pb-$LAB-sw" ovs-appctl --target="$PHONEBOOT_LAB_DIR/$LAB/ovs/ovs-vswitchd.ctl" "$@"; }
appctl dpif-netdev/pmd-stats-clear >/dev/null 2>&1
# Kernel protocol counters of both ends (segments, retransmissions, ACKs, datagrams).
for ns in "pb-$LAB-ph" "$srvns"; do "$ROOT/bench/sim/netstat-diff.py" snap "$ns" "$OUT/$ns.snmp"; done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${CAPTURE:-0}" = all ]; then  # every frame on the phones' two ports and the server's port
  for i in phone0 voice0; do
    ip netns exec "pb-$LAB-ph" tcpdump -B 65536 -s 128 -U -i $i -w "$OUT/$i.pcap" 2>/dev/null & caps="${caps:-} $!"
  done
  ip netns exec "$srvns" tcpdump -B 65536 -s 128 -U -i srv0 -w "$OUT/srv0.pcap" 2>/dev/null & caps="$caps $!"
  sleep 1
elif [ "${CAPTURE:-0}" = 1 ]; then  # DHCP on the phone port and on the server's port
  ip netns exec "pb-$LAB-ph" tcpdump -B 65536 -s 400 -U -i phone0 -w "$OUT/phone0.pcap" 'udp port 67 or udp port 68 or (vlan and (udp port 67 or udp port 68))' 2>/dev/null & cap1=$!
  ip netns exec "$srvns" tcpdump -B 65536 -s 400 -U -i srv0 -w "$OUT/srv0.pcap" 'udp port 67 or udp port 68' 2>/dev/null & cap2=$!
  sleep 1
fi
if [ "${PERF:-0}" = 1 ]; then
  perf record -F 499 -g -p "$pid" -o "$OUT/serve.perf.data" >/dev/null 2>&1 &
  perfpid=$!
fi
if [ "${PERF_OVS:-0}" = 1 ]; then  # the switch's user-space datapath
  perf record -F 999 -g -p "$ovspid" -o "$OUT/ovs.perf.data" >/dev/null 2>&1 &
  perfovs=$!
fi
# The lab's DHCP range (198.18.101.1-198.18.255.254) as AnyIP prefixes of the phones' IP
# interface: no interface address per phone (the kernel's per-address work grows with the
# number of addresses). ANYIP= (empty) adds one address per phone instead.
ANYIP=${ANYIP-198.18.101.0/24,198.18.102.0/23,198.18.104.0/21,198.18.112.0/20,198.18.128.0/17}
anyip=(); [ -n "$ANYIP" ] && anyip=(--anyip "$ANYIP")
simperf=()
[ "${PERF_SIM:-0}" = 1 ] && simperf=(perf record -F 999 -g -o "$OUT/sim.perf.data" --)
/usr/bin/time -v -o "$OUT/sim.time" "$PB" lab exec --name "$LAB" phones -- \
  "${simperf[@]}" "$PB" sim storm --phones "$PHONES" --rate "$RATE" --concurrency "$CONC" --no-progress \
  --csv "$OUT/phones.csv" "${anyip[@]}" "$@" > "$OUT/sim.out" 2>&1
rc=$?
[ "${PERF:-0}" = 1 ] && { kill -INT "$perfpid"; wait "$perfpid"; }
[ "${PERF_OVS:-0}" = 1 ] && { kill -INT "$perfovs"; wait "$perfovs"; }
cpu1=$(stat_cpu "$pid"); ovs1=$(stat_cpu "$ovspid")
# The switch's own counters: packets, batches, cache hits, upcalls (see $OUT/ovs-stats.txt).
{ appctl dpif-netdev/pmd-stats-show; appctl dpctl/show -s; appctl coverage/show; } > "$OUT/ovs-stats.txt" 2>&1
[ "${CAPTURE:-0}" = 1 ] && { sleep 1; kill "$cap1" "$cap2"; wait "$cap1" "$cap2" 2>/dev/null; }
# shellcheck disable=SC2086
[ "${CAPTURE:-0}" = all ] && { sleep 1; kill $caps; wait $caps 2>/dev/null
  "$ROOT/bench/sim/frames.sh" "$PHONES" "$OUT"/phone0.pcap "$OUT"/voice0.pcap; }
cat "$OUT/sim.out"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "serve: $(grep VmHWM /proc/"$pid"/status | tr -s ' ') , CPU $(echo "$cpu1 - $cpu0" | bc) s during the storm"
echo "switch (ovs-vswitchd): CPU $(echo "$ovs1 - $ovs0" | bc) s during the storm"
echo "sim:   peak RSS $(awk -F': ' '/Maximum resident/{print $2}' "$OUT/sim.time") kB, CPU $(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{print u+s}' "$OUT/sim.time") s, wall $(awk -F': ' '/Elapsed/{print $2}' "$OUT/sim.time")"
for ns in "pb-$LAB-ph" "$srvns"; do "$ROOT/bench/sim/netstat-diff.py" diff "$ns" "$OUT/$ns.snmp" "$PHONES"; done
echo "switch: $(awk '/packets received/{r=$3} /emc hits/{e=$3} /megaflow hits/{m=$3} /success upcall/{u=$5} END{print "packets " r ", EMC hits " e ", megaflow hits " m ", upcalls " u}' "$OUT/ovs-stats.txt") ($(awk -v n="$PHONES" '/packets received/{printf "%.1f", $3/n}' "$OUT/ovs-stats.txt") per phone)"
echo "server UDP drops (ns $srvns):"; ip netns exec "$srvns" awk 'NR>1 && $NF>0 {print "  " $2, "drops", $NF}' /proc/net/udp
echo "softnet drops: $(python3 -c "import sys; print(sum(int(l.split()[1],16) for l in open('/proc/net/softnet_stat')))")"
grep -E "dhcp|DHCP" "$PHONEBOOT_LAB_DIR"/*/server.log 2>/dev/null | grep -iE "warn|error" | tail -5
[ "${KEEP:-0}" = 1 ] || "$PB" lab down --name "$LAB" >/dev/null
exit $rc
