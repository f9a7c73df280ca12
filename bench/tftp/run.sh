#!/usr/bin/env bash
# phoneboot file service vs tftpd-hpa (TFTP) and nginx (HTTP), one run, same load client.
#
# Topology (as shared/bench/peers/common.sh): two network namespaces joined by a veth pair,
# server 198.18.0.1/24, client 198.18.0.2/24, nothing routed out. All three servers serve
# the same 4096-byte SEP0011AABBCCDD.cnf.xml from one directory, each in its own cgroup v2
# (server CPU = cpu.stat usage_usec delta around each measurement, children included).
# The load client is crates/fileserver's `tftp-load` (native Rust, tftp crate's client state
# machine; a new socket / TCP connection per fetch, like a phone).
#
#   phoneboot  pb-fileserver  tftp 198.18.0.1:69    http 198.18.0.1:6970  (2 runtime threads)
#   tftpd-hpa  in.tftpd --listen (fork per request)  198.18.0.1:1069
#   nginx      nginx-light, worker_processes 2        198.18.0.1:8080
#
# usage: bench/tftp/run.sh      (root)
#   env: REPS=3 DURATION=5 COUNT=200000 CONCS="1 16 64" LOAD_THREADS=4 PB_THREADS=2 MAX_SECONDS=900
#        SKIP_BUILD=1 (use existing release binaries in $CARGO_TARGET_DIR or target/)
set -euo pipefail
REPS=${REPS:-3}; DURATION=${DURATION:-5}; COUNT=${COUNT:-200000}; CONCS=${CONCS:-"1 16 64"}
LOAD_THREADS=${LOAD_THREADS:-4}; MAX_SECONDS=${MAX_SECONDS:-900}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
TAG=pbf$$
NS_SRV=$TAG-s; NS_CLI=$TAG-c; VETH_SRV=${TAG}s0; VETH_CLI=${TAG}c0
SRV_IP=198.18.0.1; CLI_IP=198.18.0.2
FILE=SEP0011AABBCCDD.cnf.xml; FILE_SIZE=4096
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for bin in ip in.tftpd nginx python3; do command -v $bin >/dev/null || [ -x /usr/sbin/$bin ] || { echo "need $bin"; exit 1; }; done
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  (cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release -q -p fileserver --bins)
fi
PB=$TARGET/release/pb-fileserver; LOAD=$TARGET/release/tftp-load
[ -x "$PB" ] && [ -x "$LOAD" ] || { echo "missing $PB or $LOAD"; exit 1; }

WORK=$(mktemp -d /tmp/bench-pbfile.XXXXXX); chmod 755 "$WORK"
ROOT=$WORK/root; mkdir -p "$ROOT"; chmod 755 "$ROOT"
python3 - "$ROOT/$FILE" "$FILE_SIZE" <<'PY'
import sys
path, size = sys.argv[1], int(sys.argv[2])
head = '<?xml version="1.0" encoding="UTF-8"?>\n<device><deviceProtocol>SIP</deviceProtocol>\n'
body = '<loadInformation>P0030801SR02</loadInformation><sipProfile><phoneLabel>bench</phoneLabel></sipProfile>\n'
tail = '</device>\n'
s = head
while len(s) + len(body) + len(tail) <= size:
    s += body
s += ' ' * (size - len(s) - len(tail)) + tail
open(path, 'w').write(s)
PY
chmod 644 "$ROOT/$FILE"

# ------------------------------------------------------------------ cgroups ----
# cgroup v2, mounted at /sys/fs/cgroup or (hybrid hierarchy) /sys/fs/cgroup/unified
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CGROOT=/sys/fs/cgroup
elif [ -f /sys/fs/cgroup/unified/cgroup.procs ]; then CGROOT=/sys/fs/cgroup/unified
else echo "cgroup v2 needed"; exit 1; fi
declare -A CG PID
cg_make() { CG[$1]=$CGROOT/$TAG-$1; mkdir "${CG[$1]}"; }
cg_cpu() { awk '/^usage_usec/{printf "%.3f\n", $2/1e6}' "${CG[$1]}/cpu.stat"; }
# seconds in which some task of the cgroup was runnable but waiting for a CPU (PSI)
cg_wait() { awk '/^some/{split($5, t, "="); printf "%.3f\n", t[2]/1e6}' "${CG[$1]}/cpu.pressure" 2>/dev/null || echo 0; }
# start NAME CMD... : runs CMD in the server namespace inside cgroup NAME
start() {
  local name=$1; shift
  cg_make "$name"
  bash -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "${CG[$name]}" ip netns exec "$NS_SRV" "$@" \
    >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
}
kill_pid() {
  local p=$1; [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
  set +e
  for n in "${!PID[@]}"; do kill_pid "${PID[$n]}"; done
  [ -f "$WORK/nginx.pid" ] && kill_pid "$(cat "$WORK/nginx.pid" 2>/dev/null)"
  sleep 0.3
  for n in "${!CG[@]}"; do
    # anything left in the cgroup was started by us (in.tftpd children)
    for p in $(cat "${CG[$n]}/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    sleep 0.1; rmdir "${CG[$n]}" 2>/dev/null
  done
  ip netns del "$NS_SRV" 2>/dev/null; ip netns del "$NS_CLI" 2>/dev/null; ip link del "$VETH_SRV" 2>/dev/null
  # the watchdog's sleep too: it holds our stdout open (a pipe reader would wait for it)
  if [ -n "${WATCHDOG:-}" ]; then
    sp=$(pgrep -P "$WATCHDOG" sleep)
    kill "$WATCHDOG" 2>/dev/null; [ -n "$sp" ] && kill $sp 2>/dev/null
  fi
  true
}
trap 'rc=$?; trap - EXIT INT TERM; cleanup; exit $rc' EXIT INT TERM
( sleep "$MAX_SECONDS"; echo "[watchdog] ${MAX_SECONDS}s reached" >&2; kill -TERM $$ ) & WATCHDOG=$!

# --------------------------------------------------------------- namespaces ----
ip netns add "$NS_SRV"; ip netns add "$NS_CLI"
ip link add "$VETH_SRV" type veth peer name "$VETH_CLI"
ip link set "$VETH_SRV" netns "$NS_SRV"; ip link set "$VETH_CLI" netns "$NS_CLI"
ip -n "$NS_SRV" addr add $SRV_IP/24 dev "$VETH_SRV"; ip -n "$NS_CLI" addr add $CLI_IP/24 dev "$VETH_CLI"
for ns in "$NS_SRV" "$NS_CLI"; do
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -q -w net.core.rmem_max=33554432 net.core.wmem_max=33554432 \
    net.core.rmem_default=4194304 net.core.wmem_default=4194304 \
    net.ipv4.ip_local_port_range="10000 65000" >/dev/null 2>&1 || true
done
ip -n "$NS_SRV" link set "$VETH_SRV" up; ip -n "$NS_CLI" link set "$VETH_CLI" up
sleep 0.5

# ------------------------------------------------------------------ servers ----
cat > "$WORK/nginx.conf" <<NGX
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  default_type application/octet-stream;
  server { listen $SRV_IP:8080 reuseport backlog=4096; root $ROOT; }
}
NGX
start phoneboot "$PB" --root "$ROOT" --tftp $SRV_IP:69 --http $SRV_IP:6970 \
  --max-transfers 100000 --per-client 100000 --threads "${PB_THREADS:-2}"
start tftpd /usr/sbin/in.tftpd --foreground --listen --address $SRV_IP:1069 --secure --user nobody "$ROOT"
start nginx /usr/sbin/nginx -c "$WORK/nginx.conf" -g "daemon off;"
sleep 1
for n in phoneboot tftpd nginx; do kill -0 "${PID[$n]}" 2>/dev/null || { echo "$n did not start:"; cat "$WORK/$n.log"; exit 1; }; done

# Correctness probes: every server hands out the same bytes.
ip netns exec "$NS_CLI" curl -sS --max-time 5 -o "$WORK/p1" "tftp://$SRV_IP/$FILE"
ip netns exec "$NS_CLI" curl -sS --max-time 5 -o "$WORK/p2" "tftp://$SRV_IP:1069/$FILE"
ip netns exec "$NS_CLI" curl -sS --max-time 5 -o "$WORK/p3" "http://$SRV_IP:6970/$FILE"
ip netns exec "$NS_CLI" curl -sS --max-time 5 -o "$WORK/p4" "http://$SRV_IP:8080/$FILE"
for p in p1 p2 p3 p4; do cmp -s "$WORK/$p" "$ROOT/$FILE" || { echo "probe $p differs"; exit 1; }; done
echo "probes: curl fetched identical bytes from all four endpoints"

echo "host: $(nproc) CPU, loadavg $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
echo "file $FILE ${FILE_SIZE} B; duration ${DURATION}s per measurement; reps $REPS; load threads $LOAD_THREADS"

# The load client runs in a cgroup of its own too: its CPU and CPU-wait are printed beside
# the server's, so a run shows which side waited for the (shared) CPUs.
cg_make client
# measure NAME PROTO PORT CONC -> "rate completed failed cpu srv_wait cli_cpu cli_wait"
measure() {
  local name=$1 proto=$2 port=$3 conc=$4 c0 c1 w0 w1 k0 k1 kw0 kw1 out
  c0=$(cg_cpu "$name"); w0=$(cg_wait "$name"); k0=$(cg_cpu client); kw0=$(cg_wait client)
  out=$(bash -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "${CG[client]}" \
        ip netns exec "$NS_CLI" timeout $((DURATION + 30)) "$LOAD" --server $SRV_IP:$port --file "$FILE" \
        --proto "$proto" --concurrency "$conc" --count "$COUNT" --duration "$DURATION" \
        --expect-size $FILE_SIZE --threads "$LOAD_THREADS" --json 2>&1) || true
  c1=$(cg_cpu "$name"); w1=$(cg_wait "$name"); k1=$(cg_cpu client); kw1=$(cg_wait client)
  echo "$out" | grep '^tftp_load:' | sed "s/^/  $name: /" >&2
  echo "$out" | grep '^{' | python3 -c '
import json,sys
c0,c1,w0,w1,k0,k1,kw0,kw1=map(float,sys.argv[1:9])
try: j=json.load(sys.stdin)
except Exception: j={}
print("%.1f %d %d %.3f %.3f %.3f %.3f" % (j.get("rate_per_s",0), j.get("completed",0), j.get("failed",0), c1-c0, w1-w0, k1-k0, kw1-kw0))' "$c0" "$c1" "$w0" "$w1" "$k0" "$k1" "$kw0" "$kw1"
}

declare -A RATE PERCPU FAILS
for rep in $(seq "$REPS"); do
  for conc in $CONCS; do
    for pair in "phoneboot tftp 69" "tftpd tftp 1069" "phoneboot http 6970" "nginx http 8080"; do
      read -r name proto port <<<"$pair"
      read -r rate done_n failed cpu swait ccpu cwait < <(measure "$name" "$proto" "$port" "$conc")
      pc=$(awk -v d="$done_n" -v c="$cpu" 'BEGIN{ if (c>0) printf "%.0f", d/c; else print 0 }')
      k="$name/$proto/$conc"
      RATE[$k]="${RATE[$k]:-} $rate"; PERCPU[$k]="${PERCPU[$k]:-} $pc"; FAILS[$k]=$(( ${FAILS[$k]:-0} + failed ))
      echo "rep=$rep conc=$conc $name/$proto rate=${rate}/s completed=$done_n failed=$failed server_cpu=${cpu}s per_cpu_s=$pc server_cpu_wait=${swait}s client_cpu=${ccpu}s client_cpu_wait=${cwait}s load=$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print("%.0f" % statistics.median(v) if v else 0)' "$@"; }
echo
echo "== medians of $REPS runs (transfers/s, transfers per server CPU-second) =="
printf "%-6s %-5s %12s %12s %12s %12s %9s %9s\n" proto conc ours/s peer/s ours/cpu-s peer/cpu-s ratio/s ratio/cpu
for proto in tftp http; do
  peer=tftpd; [ $proto = http ] && peer=nginx
  for conc in $CONCS; do
    o=$(median ${RATE[phoneboot/$proto/$conc]}); p=$(median ${RATE[$peer/$proto/$conc]})
    oc=$(median ${PERCPU[phoneboot/$proto/$conc]}); pcs=$(median ${PERCPU[$peer/$proto/$conc]})
    r=$(awk -v a="$o" -v b="$p" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }')
    rc=$(awk -v a="$oc" -v b="$pcs" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }')
    printf "%-6s %-5s %12s %12s %12s %12s %9s %9s\n" $proto $conc "$o" "$p" "$oc" "$pcs" "$r" "$rc"
    echo "RESULT $proto conc=$conc phoneboot=${o}/s $peer=${p}/s ratio=$r per_cpu_s phoneboot=$oc $peer=$pcs ratio=$rc failures phoneboot=${FAILS[phoneboot/$proto/$conc]} $peer=${FAILS[$peer/$proto/$conc]}"
  done
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg); logs in $WORK"
