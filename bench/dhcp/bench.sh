#!/usr/bin/env bash
# DHCPv4 benchmark: phoneboot-dhcpd against ISC Kea (memfile) and dnsmasq, same pool, same
# option 150, same machine, same run. perfdhcp (package kea-admin) acts as a relay from a
# client namespace across a veth pair, so every server sees giaddr 198.18.0.2.
#
# For each repetition and each server (order rotated every repetition):
#   * DORA sweep: offered rates RATES, 5 s steps, each step from a fresh server with an empty
#     lease database (unique clients); the knee is the highest offered rate whose loss
#     (DISCOVERs sent - ACKs received) / DISCOVERs sent stays <= 2.5 %;
#   * one overload step at SAT/s offered.
# Server CPU comes from a cgroup v2 made for the run (usage_usec before/after each step).
# Prints per-step lines, then medians over repetitions and the ratios phoneboot/peer.
#
# usage (root): bench/dhcp/bench.sh     env: REPS=3 PERIOD=5 RATES="..." SAT=30000
#   SERVERS="phoneboot kea dnsmasq" PHONEBOOT_DHCPD=path/to/phoneboot-dhcpd MAX_SECONDS=1500
#   phoneboot-serve: the whole `phoneboot serve` (PHONEBOOT_SERVE=path/to/phoneboot) on a copy of
#     PHONEBOOT_SEED_DB (a provisioned device database, e.g. with reservations) per step;
#   PERFDHCP_CLIENTS=N (perfdhcp -R, default 100000000: every exchange a new client),
#   PERFDHCP_ARGS="-b mac=00:1b:00:00:00:00" (extra perfdhcp arguments, e.g. provisioned MACs)
#   DHCP_RATE_BURST=10 DHCP_RATE_PER_SEC=2 (phoneboot-serve's per-MAC flood guard; raise it when
#     few clients send many exchanges each, as the cost curve's do)
# phoneboot's leases are durable: SQLite WAL, synchronous=FULL, one transaction per burst,
# ACKs sent after the commit. Kea: memfile persist=true (appends, no fsync). dnsmasq: lease
# file rewritten after changes (no fsync).
set -euo pipefail
REPS=${REPS:-3}; PERIOD=${PERIOD:-5}; SAT=${SAT:-30000}
RATES=${RATES:-"1000 2000 3000 4000 6000 8000 10000 12000"}
# phoneboot: lease_sync=full (fsync per group commit); phoneboot-wal: lease_sync=normal (WAL
# written, not fsynced per commit: the crash guarantee Kea memfile and dnsmasq give).
SERVERS=${SERVERS:-"phoneboot phoneboot-wal kea dnsmasq"}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
BIN=${PHONEBOOT_DHCPD:-${CARGO_TARGET_DIR:-$ROOT/target}/release/phoneboot-dhcpd}
TAG=pbdh$(( $$ % 1000000 )); NS_S=$TAG-s; NS_C=$TAG-c; VS=${TAG}s; VC=${TAG}c
SRV_IP=198.18.0.1; CLI_IP=198.18.0.2
WORK=$(mktemp -d /tmp/bench-dhcp.XXXXXX); PID=""; CG=""
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

case " $SERVERS " in *" phoneboot "*|*" phoneboot-wal "*)
  [ -x "$BIN" ] || { echo "build it first: cargo build --release -p dhcp-server --bin phoneboot-dhcpd ($BIN)"; exit 1; } ;; esac
for t in perfdhcp kea-dhcp4 dnsmasq; do
  case $t in kea-dhcp4) [[ " $SERVERS " == *" kea "* ]] || continue ;; dnsmasq) [[ " $SERVERS " == *" dnsmasq "* ]] || continue ;; esac
  command -v $t >/dev/null || [ -x /usr/sbin/$t ] || { echo "missing $t"; exit 1; }
done

stop_server() {
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
}
cleanup() {
  set +e; stop_server; [ -n "${WD:-}" ] && kill "$WD" 2>/dev/null
  ip netns del "$NS_S" 2>/dev/null; ip netns del "$NS_C" 2>/dev/null
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
}
trap 'rc=$?; trap - EXIT INT TERM; cleanup; exit $rc' EXIT INT TERM
# The watchdog's sleep dies with it (a stray sleep would hold a caller's pipe open).
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep "${MAX_SECONDS:-1500}" & s=$!; wait $s; echo "[watchdog] time limit, stopping $$" >&2; kill -TERM $$ ) & WD=$!

ip netns add "$NS_S"; ip netns add "$NS_C"
ip link add "$VS" type veth peer name "$VC"
ip link set "$VS" netns "$NS_S"; ip link set "$VC" netns "$NS_C"
ip -n "$NS_S" addr add $SRV_IP/24 dev "$VS"; ip -n "$NS_C" addr add $CLI_IP/24 dev "$VC"
for ns in "$NS_S" "$NS_C"; do
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -q -w net.core.rmem_max=33554432 net.core.wmem_max=33554432 \
    net.core.rmem_default=4194304 net.core.wmem_default=4194304 2>/dev/null || true
done
ip -n "$NS_S" link set "$VS" up; ip -n "$NS_C" link set "$VC" up; sleep 1
# Server CPU: a cgroup v2 (pure or hybrid "unified" mount) or, failing that, cgroup v1 cpuacct.
CGV=""
for root in /sys/fs/cgroup /sys/fs/cgroup/unified; do
  if [ -f $root/cgroup.procs ] && [ -z "$CGV" ] && mkdir $root/$TAG 2>/dev/null; then
    if [ -f $root/$TAG/cpu.stat ]; then CG=$root/$TAG; CGV=2; else rmdir $root/$TAG; fi
  fi
done
if [ -z "$CGV" ] && [ -d /sys/fs/cgroup/cpuacct ] && mkdir /sys/fs/cgroup/cpuacct/$TAG 2>/dev/null; then
  CG=/sys/fs/cgroup/cpuacct/$TAG; CGV=1
fi
[ -n "$CGV" ] || { echo "need a cgroup for server CPU accounting"; exit 1; }
cpu() {
  if [ "$CGV" = 2 ]; then awk '/^usage_usec/{printf "%.3f\n", $2/1e6}' "$CG/cpu.stat"
  else awk '{printf "%.3f\n", $1/1e9}' "$CG/cpuacct.usage"; fi
}

cat > "$WORK/phoneboot.toml" <<TOML
database = "$WORK/phoneboot.db"
[dhcp]
default_tftp_servers = ["$SRV_IP"]
[[dhcp.pools]]
name = "bench"
interface = "$VS"
subnet = "198.18.0.0/15"
range_start = "198.18.1.0"
range_end = "198.19.255.254"
routers = ["$SRV_IP"]
lease_secs = 86400
TOML
sed 's/^database = .*/&\nlease_sync = "normal"/' "$WORK/phoneboot.toml" > "$WORK/phoneboot-wal.toml"
if [ -n "${PHONEBOOT_SERVE:-}" ]; then
cat > "$WORK/serve.toml" <<TOML
[node]
name = "bench"
address = "$SRV_IP"
database = "$WORK/serve.db"
tftp_root = "$WORK"
[admin]
listen = "127.0.0.1:18080"
initial_password = "bench-only"
[discovery]
run = false
[dhcp]
enabled = true
rate_limit_burst = ${DHCP_RATE_BURST:-10}
rate_limit_per_sec = ${DHCP_RATE_PER_SEC:-2}
[[dhcp.pool]]
name = "bench"
interface = "$VS"
subnet = "198.18.0.0/15"
range = ["198.18.1.0", "198.19.255.254"]
router = "$SRV_IP"
lease_secs = 86400
tftp_servers = ["$SRV_IP"]
[files]
tftp_listen = "$SRV_IP:69"
http_listen = "$SRV_IP:6970"
[sccp]
listen = "$SRV_IP:2000"
[sip]
listen = "$SRV_IP:5060"
[[callmanager]]
host = "$SRV_IP"
TOML
fi
cat > "$WORK/kea.json" <<JSON
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "$VS/$SRV_IP" ] },
  "lease-database": { "type": "memfile", "persist": true, "name": "$WORK/leases4.csv", "lfc-interval": 3600 },
  "valid-lifetime": 86400, "renew-timer": 43200, "rebind-timer": 75600,
  "option-def": [ { "name": "tftp-server-list", "code": 150, "space": "dhcp4", "type": "ipv4-address", "array": true } ],
  "subnet4": [ { "id": 1, "subnet": "198.18.0.0/15", "pools": [ { "pool": "198.18.1.0 - 198.19.255.254" } ],
      "option-data": [ { "name": "routers", "data": "$SRV_IP" }, { "name": "tftp-server-list", "data": "$SRV_IP" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "stderr" } ], "severity": "WARN" } ]
} }
JSON
export KEA_PIDFILE_DIR=$WORK KEA_LOCKFILE_DIR=$WORK KEA_LOGGER_DESTINATION=stderr

# start_server NAME : fresh lease database, server started inside the cgroup from exec on.
start_server() {
  rm -f "$WORK"/phoneboot.db* "$WORK"/leases4.csv* "$WORK"/*.pid "$WORK/dnsmasq.leases" "$WORK"/serve.db*
  if [ "$1" = phoneboot-serve ] && [ -n "${PHONEBOOT_SEED_DB:-}" ]; then cp "$PHONEBOOT_SEED_DB" "$WORK/serve.db"; fi
  local cmd
  case $1 in
    phoneboot) cmd=("$BIN" --config "$WORK/phoneboot.toml") ;;
    phoneboot-wal) cmd=("$BIN" --config "$WORK/phoneboot-wal.toml") ;;
    phoneboot-serve) cmd=(env PHONEBOOT_LOG="${PHONEBOOT_LOG:-warn}" "$PHONEBOOT_SERVE" serve --config "$WORK/serve.toml") ;;
    kea) cmd=(/usr/sbin/kea-dhcp4 -c "$WORK/kea.json") ;;
    dnsmasq) cmd=(/usr/sbin/dnsmasq --conf-file=/dev/null --keep-in-foreground --user=root --port=0
        --interface="$VS" --bind-interfaces --dhcp-range=198.18.1.0,198.19.255.254,255.254.0.0,24h
        --dhcp-option=3,$SRV_IP --dhcp-option=150,$SRV_IP --dhcp-lease-max=400000 --no-ping
        --quiet-dhcp --log-facility="$WORK/dnsmasq.log" --pid-file="$WORK/dnsmasq.pid"
        --dhcp-leasefile="$WORK/dnsmasq.leases") ;;
  esac
  bash -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"' "$CG" "$NS_S" "${cmd[@]}" \
    >>"$WORK/$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 600); do ip netns exec "$NS_S" ss -H -uln "sport = :67" | grep -q . && break; sleep 0.1; done
  sleep 0.3; kill -0 "$PID" || { tail "$WORK/$1.log" >&2; exit 1; }
}

# step NAME RATE -> "sent acks cpu_s"
step() {
  local out c0 c1
  start_server "$1"; c0=$(cpu)
  out=$(ip netns exec "$NS_C" timeout $((PERIOD + 20)) perfdhcp -4 -l $CLI_IP -r "$2" -R "${PERFDHCP_CLIENTS:-100000000}" ${PERFDHCP_ARGS:-} \
        -p "$PERIOD" -W 1000000 $SRV_IP 2>&1 || true)
  c1=$(cpu); stop_server
  { echo "== $1 rate=$2"; echo "$out"; } >> "$WORK/perfdhcp.log"
  echo "$out" | awk -v c0="$c0" -v c1="$c1" '
    /Statistics for: DISCOVER-OFFER/ {s=1} /Statistics for: REQUEST-ACK/ {s=2}
    /^sent packets:/ { if (s==1) sd=$3 } /^received packets:/ { if (s==2) ra=$3 }
    END { printf "%d %d %.3f\n", sd, ra, c1-c0 }'
}

declare -A KNEE CPUEFF SATR SATEFF
run_server() { # run_server NAME : sweep + overload, appends to the result arrays
  local name=$1 best=0 beff=0 rate sent acks c loss done_s eff
  for rate in $RATES; do
    read -r sent acks c < <(step "$name" "$rate")
    loss=$(awk -v s="$sent" -v a="$acks" 'BEGIN{ if (s>0) printf "%.2f", (s-a)*100/s; else print 100 }')
    done_s=$(awk -v a="$acks" -v p="$PERIOD" 'BEGIN{printf "%.0f", a/p}')
    eff=$(awk -v a="$acks" -v c="$c" 'BEGIN{ if (c>0) printf "%.0f", a/c; else print 0 }')
    printf "  %-9s offered=%-6s sent=%-6s acks=%-6s loss=%6s%% 4-way/s=%-6s cpu=%6ss per_cpu_s=%s\n" \
      "$name" "$rate" "$sent" "$acks" "$loss" "$done_s" "$c" "$eff"
    if awk -v l="$loss" 'BEGIN{exit !(l <= 2.5)}'; then best=$done_s; beff=$eff; else break; fi
  done
  read -r sent acks c < <(step "$name" "$SAT")
  done_s=$(awk -v a="$acks" -v p="$PERIOD" 'BEGIN{printf "%.0f", a/p}')
  eff=$(awk -v a="$acks" -v c="$c" 'BEGIN{ if (c>0) printf "%.0f", a/c; else print 0 }')
  printf "  %-9s overload offered=%s: 4-way/s=%s cpu=%ss per_cpu_s=%s\n" "$name" "$SAT" "$done_s" "$c" "$eff"
  KNEE[$name]+="$best "; CPUEFF[$name]+="$beff "; SATR[$name]+="$done_s "; SATEFF[$name]+="$eff "
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{ if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2 }'; }

echo "host: $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "servers: phoneboot $("$BIN" --version 2>/dev/null || echo dev), $(/usr/sbin/kea-dhcp4 -v), $(/usr/sbin/dnsmasq --version | head -1)"
echo "period=${PERIOD}s reps=$REPS rates=[$RATES] overload=$SAT/s"
read -ra order <<<"$SERVERS"
for rep in $(seq "$REPS"); do
  echo "rep $rep"
  for s in "${order[@]}"; do log "rep $rep $s"; run_server "$s"; done
  order=("${order[@]:1}" "${order[0]}")   # rotate
done
echo
for s in $SERVERS; do
  printf "RESULT %-9s DORA knee 4-way/s median=%s (reps: %s) | per server CPU-s median=%s (%s) | overload 4-way/s median=%s (%s) per CPU-s=%s\n" \
    "$s" "$(echo "${KNEE[$s]}" | median)" "${KNEE[$s]% }" "$(echo "${CPUEFF[$s]}" | median)" "${CPUEFF[$s]% }" \
    "$(echo "${SATR[$s]}" | median)" "${SATR[$s]% }" "$(echo "${SATEFF[$s]}" | median)"
done
for p in $SERVERS; do
case $p in phoneboot*) ;; *) continue ;; esac
pk=$(echo "${KNEE[$p]:-0}" | median); pe=$(echo "${CPUEFF[$p]:-0}" | median)
for s in $SERVERS; do
  case $s in phoneboot*) continue ;; esac
  k=$(echo "${KNEE[$s]}" | median); e=$(echo "${CPUEFF[$s]}" | median)
  awk -v a="$pk" -v b="$k" -v c="$pe" -v d="$e" -v s="$s" -v p="$p" 'BEGIN{ printf "RATIO %s/%s knee rate %.2fx, per CPU-s at knee %.2fx\n", p, s, (b>0?a/b:0), (d>0?c/d:0) }'
  # Under overload (the robust figures on a shared, loaded machine).
  awk -v a="$(echo "${SATR[$p]}" | median)" -v b="$(echo "${SATR[$s]}" | median)" \
      -v c="$(echo "${SATEFF[$p]}" | median)" -v d="$(echo "${SATEFF[$s]}" | median)" -v s="$s" -v p="$p" \
      'BEGIN{ printf "RATIO %s/%s overload 4-way/s %.2fx, per CPU-s %.2fx\n", p, s, (b>0?a/b:0), (d>0?c/d:0) }'
done
done
echo "raw perfdhcp output and server logs: $WORK"
