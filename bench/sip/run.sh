#!/usr/bin/env bash
# SIP REGISTER with digest auth: phoneboot's registrar vs Kamailio, same SIPp load, same run.
#
# Topology: two network namespaces joined by a veth pair (server 198.18.0.1, SIPp 198.18.0.2),
# nothing routed out. Server CPU is read from a cgroup v2 made for the run (every server
# process and thread counted from its first instruction). SIPp and the server share the
# machine's CPUs: absolute rates are a floor, the per-CPU-second figures carry over better.
#
# Load (as bench/peers/kamailio.sh in shared/): NUSERS distinct AoRs u100000.., each
# registered PASSES times (new binding, then refreshes), REGISTER -> 401 -> REGISTER+digest
# -> 200, at most LIMIT calls in flight. SIPp 3.6.1 cannot take digest credentials per call
# from the CSV, so every REGISTER authenticates as u100000/pw100000 while binding its own
# AoR: both servers look the same key up (phoneboot: the in-memory directory gives every
# line that identity; Kamailio: htable key or db_text row).
#
# SIPp's socket buffer is raised (-buff_size, default 64 KiB in SIPp) for both servers: with
# 200 transactions in flight on a loaded 2-CPU machine, SIPp's own receive queue overflowed
# and the resulting 500 ms retransmission stalls, not the servers, set the rate.
#
# Cases (CASES): phoneboot (the default service: UDP received by async tasks on the tokio
# reactor), phoneboot-blocking (opt-in receive threads blocking in recvfrom), kamailio-authht (password from an in-memory htable +
# pv_auth_check, challenge without qop as shared/bench/peers/kamailio.sh), kamailio-authhtq
# (the same with qop=auth and the nonce-count replay check: the digest work phoneboot does,
# and the same cnonce/nc work and message sizes for SIPp), kamailio-authdb (auth_db over db_text, NUSERS rows). usrloc in memory.
#
# usage: bench/sip/run.sh      env: REPS=3 NUSERS=10000 PASSES=10 LIMIT=200 KAM_CHILDREN=2
#        PB_WORKERS=2 PB_WRAP="" (e.g. "perf record -g -o F --") SIPP_BUF=4194304 CASES="phoneboot kamailio-authht kamailio-authdb" MAX_SECONDS=1500
set -euo pipefail
REPS=${REPS:-3}; NUSERS=${NUSERS:-10000}; PASSES=${PASSES:-10}; LIMIT=${LIMIT:-200}
KAM_CHILDREN=${KAM_CHILDREN:-2}; PB_WORKERS=${PB_WORKERS:-2}; SIPP_BUF=${SIPP_BUF:-4194304}
CASES=${CASES:-"phoneboot kamailio-authht kamailio-authhtq kamailio-authdb"}; MAX_SECONDS=${MAX_SECONDS:-1500}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
TAG=pbs$$; NS_SRV=$TAG-srv; NS_CLI=$TAG-cli; VS=${TAG}s; VC=${TAG}c
SRV_IP=198.18.0.1; CLI_IP=198.18.0.2
WORK=$(mktemp -d /tmp/bench-sip.XXXXXX)
SERVER_PID=""; WATCHDOG=""; CG=""
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for t in sipp kamailio python3 ip; do command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { log "missing $t (packages: sip-tester kamailio python3 iproute2)"; exit 1; }; done

cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null || true
  # the watchdog's sleep too: it holds our stdout open (a pipe reader would wait for it)
  if [ -n "$WATCHDOG" ]; then
    local sp; sp=$(pgrep -P "$WATCHDOG" sleep || true)
    kill "$WATCHDOG" 2>/dev/null || true; [ -n "$sp" ] && kill $sp 2>/dev/null || true
  fi
  ip netns del "$NS_SRV" 2>/dev/null || true; ip netns del "$NS_CLI" 2>/dev/null || true
  ip link del "$VS" 2>/dev/null || true
  [ -n "$CG" ] && { sleep 0.3; rmdir "$CG" "$CG_SIPP" 2>/dev/null || true; }
}
trap cleanup EXIT
( sleep "$MAX_SECONDS"; log "watchdog: $MAX_SECONDS s passed, stopping"; kill -TERM $$ ) & WATCHDOG=$!

# --- build phoneboot's bench server (release) ---
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ " $CASES " == *" phoneboot"* ]]; then
  log "building sip_bench_server (release)"
  (cd "$ROOT" && cargo build --release -q -p sip-server --example sip_bench_server)
fi
PB_BIN=$TARGET/release/examples/sip_bench_server

# --- namespaces ---
ip netns add "$NS_SRV"; ip netns add "$NS_CLI"
ip link add "$VS" type veth peer name "$VC"
ip link set "$VS" netns "$NS_SRV"; ip link set "$VC" netns "$NS_CLI"
ip -n "$NS_SRV" addr add $SRV_IP/24 dev "$VS"; ip -n "$NS_CLI" addr add $CLI_IP/24 dev "$VC"
for ns in "$NS_SRV" "$NS_CLI"; do
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -q -w net.core.rmem_max=33554432 net.core.wmem_max=33554432 \
    net.core.rmem_default=4194304 net.core.wmem_default=4194304 2>/dev/null || true
done
ip -n "$NS_SRV" link set "$VS" up; ip -n "$NS_CLI" link set "$VC" up
for _ in $(seq 30); do ip -n "$NS_CLI" -o link show "$VC" | grep -q "state UP" && break; sleep 0.1; done

# --- CPU accounting: a cgroup v2 for the server ---
CGROOT=""
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CGROOT=/sys/fs/cgroup
elif [ -f /sys/fs/cgroup/unified/cgroup.procs ]; then CGROOT=/sys/fs/cgroup/unified; fi
if [ -n "$CGROOT" ] && mkdir "$CGROOT/$TAG" 2>/dev/null && [ -f "$CGROOT/$TAG/cpu.stat" ]; then CG=$CGROOT/$TAG
else log "no cgroup v2 with cpu.stat: cannot account server CPU"; exit 1; fi
server_cpu() { awk '/^usage_usec/{printf "%.3f\n", $2/1e6}' "$CG/cpu.stat"; }
# seconds in which some task of cgroup $1 was runnable but waiting for a CPU (PSI "some")
cg_wait() { awk '/^some/{split($5, t, "="); printf "%.3f\n", t[2]/1e6}' "$1/cpu.pressure" 2>/dev/null || echo 0; }
# SIPp gets a cgroup too, for its CPU-wait
CG_SIPP=$CGROOT/$TAG-sipp; mkdir "$CG_SIPP"
cg_exec() { exec bash -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }

# --- users, Kamailio tables and configs ---
python3 - "$WORK" "$NUSERS" <<'PY'
import hashlib, os, sys
md5 = lambda t: hashlib.md5(t.encode()).hexdigest()
work, n = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{work}/dbtext", exist_ok=True)
with open(f"{work}/users.csv", "w") as f:
    f.write("SEQUENTIAL\n")
    for i in range(n):
        f.write(f"u{100000 + i};pw{100000 + i}\n")
with open(f"{work}/dbtext/subscriber", "w") as f:
    f.write("id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) \n")
    for i in range(n):
        u, p = f"u{100000 + i}", f"pw{100000 + i}"
        f.write(f"{i + 1}:{u}:bench.test:{p}:{md5(f'{u}:bench.test:{p}')}:{md5(f'{u}@bench.test:bench.test:{p}')}\n")
with open(f"{work}/dbtext/version", "w") as f:
    f.write("id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n")
PY
MODDIR=$(dirname "$(dpkg -L kamailio | grep '/modules/registrar.so$' | head -1)")
kam_cfg() { # kam_cfg authdb|authht
  local c=$1
  {
    echo '#!KAMAILIO'
    [ "$c" = authdb ] && echo '#!define WITH_AUTHDB'
    [ "$c" = authht ] && echo '#!define WITH_AUTHHT'
    # authhtq: the htable case with the same digest work phoneboot does (qop=auth, nonce-count
    # replay check), so SIPp computes and sends the same cnonce/nc fields for both servers.
    [ "$c" = authhtq ] && printf '#!define WITH_AUTHHT\n#!define WITH_QOP\n'
    cat <<CFG
debug=0
log_stderror=yes
children=$KAM_CHILDREN
listen=udp:$SRV_IP:5060
auto_aliases=no
dns=no
rev_dns=no
dns_cache_init=off
# the htable fill loop below runs NUSERS times (default limit: 100 iterations)
max_while_loops=$((NUSERS + 10))
mpath="$MODDIR/"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
#!ifdef WITH_QOP
#!define CHALLENGE_FLAGS "1"
modparam("auth", "nonce_count", 1)
#!else
#!define CHALLENGE_FLAGS "0"
#!endif
#!ifdef WITH_AUTHDB
loadmodule "db_text.so"
loadmodule "auth_db.so"
modparam("auth_db", "db_url", "text://$WORK/dbtext")
modparam("auth_db", "calculate_ha1", no)
modparam("auth_db", "password_column", "ha1")
modparam("auth_db", "load_credentials", "")
#!endif
#!ifdef WITH_AUTHHT
loadmodule "htable.so"
modparam("htable", "htable", "subs=>size=14;")
#!endif
request_route {
  if (\$rm != "REGISTER") { sl_send_reply("405", "Method Not Allowed"); exit; }
#!ifdef WITH_AUTHDB
  if (!auth_check("\$fd", "subscriber", "0")) { auth_challenge("\$fd", CHALLENGE_FLAGS); exit; }
#!endif
#!ifdef WITH_AUTHHT
  if (\$au == \$null) { auth_challenge("\$fd", CHALLENGE_FLAGS); exit; }
  \$var(pw) = \$sht(subs=>\$au);
  if (\$var(pw) == \$null || !pv_auth_check("\$fd", "\$var(pw)", "0", "0")) { auth_challenge("\$fd", CHALLENGE_FLAGS); exit; }
#!endif
  consume_credentials();
  if (!save("location")) { sl_reply_error(); }
  exit;
}
#!ifdef WITH_AUTHHT
event_route[htable:mod-init] {
  \$var(i) = 0;
  while (\$var(i) < $NUSERS) {
    \$var(n) = 100000 + \$var(i);
    \$sht(subs=>u\$var(n)) = "pw" + \$var(n);
    \$var(i) = \$var(i) + 1;
  }
}
#!endif
CFG
  } > "$WORK/kamailio-$c.cfg"
}

wait_udp() {
  for _ in $(seq 100); do
    ip netns exec "$NS_SRV" ss -H -uln "sport = :5060" 2>/dev/null | grep -q . && { sleep 0.5; return 0; }
    sleep 0.1
  done
  return 1
}
start_server() { # start_server CASE
  case $1 in
    phoneboot|phoneboot-blocking)
      local mode=async; [ "$1" = phoneboot-blocking ] && mode=blocking
      # shellcheck disable=SC2086
      cg_exec ip netns exec "$NS_SRV" ${PB_WRAP:-} "$PB_BIN" $SRV_IP:5060 "$NUSERS" 100000 u100000 pw100000 bench.test "$PB_WORKERS" "$mode" \
        >>"$WORK/server-$1.log" 2>&1 & SERVER_PID=$! ;;
    kamailio-*)
      local k=${1#kamailio-}; kam_cfg "$k"
      cg_exec ip netns exec "$NS_SRV" /usr/sbin/kamailio -f "$WORK/kamailio-$k.cfg" -DD -E -m 256 -M 16 \
        -P "$WORK/kamailio.pid" -Y "$WORK" >>"$WORK/server-$1.log" 2>&1 & SERVER_PID=$! ;;
  esac
  wait_udp || { tail -20 "$WORK/server-$1.log" >&2; exit 1; }
  kill -0 "$SERVER_PID" || { tail -20 "$WORK/server-$1.log" >&2; exit 1; }
}
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  # Kamailio's children are in the cgroup too: wait until it is empty.
  for _ in $(seq 50); do [ -z "$(cat "$CG/cgroup.procs")" ] && break; sleep 0.1; done
  SERVER_PID=""
}
rcvbuf_errors() { ip netns exec "$1" awk '/^Udp:/{if(h){print $6; exit}else h=1}' /proc/net/snmp; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.0f} (min {min(v):.0f}, max {max(v):.0f}, n={len(v)})")' "$@"; }
med() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; kamailio: $(/usr/sbin/kamailio -v | head -1); sipp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*')"
echo "users=$NUSERS passes=$PASSES limit=$LIMIT reps=$REPS kamailio children=$KAM_CHILDREN phoneboot workers=$PB_WORKERS"
TOTAL=$((NUSERS * PASSES))
declare -A RATES PERCPU
for rep in $(seq "$REPS"); do
  for CASE in $CASES; do   # interleaved, so drift on this shared machine hits every case alike
    start_server "$CASE"
    c0=$(server_cpu); s0=$(rcvbuf_errors "$NS_SRV"); k0=$(rcvbuf_errors "$NS_CLI")
    sw0=$(cg_wait "$CG"); kw0=$(cg_wait "$CG_SIPP")
    TIMEFORMAT="%R %U %S"
    t=$( { time bash -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG_SIPP" ip netns exec "$NS_CLI" timeout 120 sipp $SRV_IP:5060 -sf "$HERE/register_auth.xml" \
             -inf "$WORK/users.csv" -au u100000 -ap pw100000 -nd -i $CLI_IP -p 5070 -t u1 \
             -r 100000 -rp 1000 -l "$LIMIT" -m "$TOTAL" -timeout 90s -nostdin -buff_size "$SIPP_BUF" \
             -trace_stat -stf "$WORK/stat-$CASE-$rep.csv" -fd 1 \
             -trace_err -error_file "$WORK/err-$CASE-$rep.log" \
             >"$WORK/sipp-$CASE-$rep.out" 2>&1 || echo "sipp rc=$?" >&2; } 2>&1 )
    c1=$(server_cpu); sw1=$(cg_wait "$CG"); kw1=$(cg_wait "$CG_SIPP")
    s1=$(rcvbuf_errors "$NS_SRV"); k1=$(rcvbuf_errors "$NS_CLI")
    stop_server
    read -r wall su ss <<<"$(echo "$t" | tail -1)"
    sipp_cpu=$(awk -v u="$su" -v s="$ss" 'BEGIN{printf "%.2f", u+s}')
    read -r ok failed retr <<<"$(python3 - "$WORK/stat-$CASE-$rep.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
h, last = rows[0], rows[-1]
g = lambda k: last[h.index(k)]
print(g("SuccessfulCall(C)"), g("FailedCall(C)"), g("Retransmissions(C)"))
PY
)"
    cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')
    rate=$(awk -v o="$ok" -v w="$wall" 'BEGIN{printf "%.0f", o/w}')
    pc=$(awk -v o="$ok" -v c="$cpu" 'BEGIN{ if (c>0) printf "%.0f", o/c; else print 0 }')
    echo "case=$CASE rep=$rep ok=$ok failed=$failed retrans=$retr wall=${wall}s rate=${rate}/s server_cpu=${cpu}s per_server_cpu_s=$pc sipp_cpu=${sipp_cpu}s cpu_wait(server/sipp)=$(awk -v a="$sw0" -v b="$sw1" 'BEGIN{printf "%.2f", b-a}')/$(awk -v a="$kw0" -v b="$kw1" 'BEGIN{printf "%.2f", b-a}')s load=$(cut -d' ' -f1 /proc/loadavg) udp_rcvbuf_drops(server/sipp)=$((s1 - s0))/$((k1 - k0))"
    RATES[$CASE]="${RATES[$CASE]:-} $rate"; PERCPU[$CASE]="${PERCPU[$CASE]:-} $pc"
  done
done
for CASE in $CASES; do
  # shellcheck disable=SC2086
  echo "RESULT $CASE registrations/s: $(median ${RATES[$CASE]}) | per server CPU-second: $(median ${PERCPU[$CASE]})"
done
if [[ " $CASES " == *" phoneboot "* ]]; then
  for CASE in $CASES; do
    [ "$CASE" = phoneboot ] && continue
    # shellcheck disable=SC2086
    r=$(python3 -c "print(f'{$(med ${RATES[phoneboot]})/$(med ${RATES[$CASE]}):.2f}')")
    # shellcheck disable=SC2086
    p=$(python3 -c "print(f'{$(med ${PERCPU[phoneboot]})/$(med ${PERCPU[$CASE]}):.2f}')")
    echo "RATIO phoneboot/$CASE: rate x$r, per CPU-second x$p"
  done
fi
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg); raw outputs: $WORK"
