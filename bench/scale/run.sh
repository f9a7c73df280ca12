#!/usr/bin/env bash
# Scale of one node (issue 11, item 3), against ONE `phoneboot serve` process on loopback:
#   (a) DEVICES phones imported from a BAT CSV into a fresh database (`phoneboot import`, timed),
#       the server's start-up (load + build every file), then a device-pool edit
#       (`phoneboot pool edit Default --monitor-secs ...`: every phone of the pool rebuilt) timed
#       from the CLI call until the server hands out the new SEP file of the LAST phone;
#   (b) PHONES SCCP phones registered and held, each sending a KeepAlive every KEEPALIVE s, over
#       client processes of at most PER_PROC phones (this sandbox caps open files at 20,000 per
#       process); the server's resident memory, and over WINDOW seconds of steady holding the
#       keepalives it acknowledged per second and its CPU.
#
# The server needs one descriptor per held phone. It raises its soft RLIMIT_NOFILE to the hard
# limit at start; when that hard limit is below PHONES (here: 20,000, no CAP_SYS_RESOURCE) the
# hold is capped at (limit - NOFILE_RESERVE) and the result says so (ALLOW_OVER=1 tries anyway).
#
# usage: bench/scale/run.sh         env: DEVICES=100000 PHONES=100000 PER_PROC=16000
#   KEEPALIVE=30 WINDOW=30 CONCURRENCY=64 MAX_SECONDS=1500 SKIP_BUILD=0 RESULT_JSON=path
#   WARMUP=KEEPALIVE (s of holding before the window)
#   SMOKE=1 (tiny counts: 300 devices, 200 phones, KEEPALIVE=5 (the minimum), WARMUP=1, WINDOW=2)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
if [ "${SMOKE:-0}" = 1 ]; then
  : "${EDITS:=2}" "${DEVICES:=300}" "${PHONES:=200}" "${KEEPALIVE:=5}" "${WARMUP:=1}" "${WINDOW:=2}" "${PER_PROC:=100}" "${MAX_SECONDS:=60}"
fi
DEVICES=${DEVICES:-100000}; PHONES=${PHONES:-100000}; PER_PROC=${PER_PROC:-16000}
KEEPALIVE=${KEEPALIVE:-30}; WINDOW=${WINDOW:-30}; CONCURRENCY=${CONCURRENCY:-64}
NOFILE_RESERVE=${NOFILE_RESERVE:-300}; MAX_SECONDS=${MAX_SECONDS:-1500}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PB=${PHONEBOOT_BIN:-$TARGET/release/phoneboot}; HOLD_BIN=${SCCP_HOLD_BIN:-$TARGET/release/examples/sccp_hold}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  (cd "$REPO" && cargo build --release --locked -q -p phoneboot --bin phoneboot --example sccp_hold) || exit 1
fi
[ -x "$PB" ] && [ -x "$HOLD_BIN" ] || { echo "missing $PB or $HOLD_BIN"; exit 1; }

WORK=$(mktemp -d /tmp/bench-scale.XXXXXX); SRV=""; CLIENTS=()
RESULT_JSON_GIVEN=${RESULT_JSON:-}; RESULT_JSON=${RESULT_JSON:-$WORK/scale.json}
cleanup() {
  set +e
  for p in "${CLIENTS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${CLIENTS[@]}"; do wait "$p" 2>/dev/null; done
  stop_pid "$SRV"
  [ -n "${WD:-}" ] && kill "$WD" 2>/dev/null
  # Without RESULT_JSON the result file and logs stay in $WORK (printed); else all goes.
  if [ "${KEEP_WORK:-0}" = 1 ] || [ -z "${RESULT_JSON_GIVEN:-}" ]; then rm -rf "$WORK"/scale.db* "$WORK"/phones.csv; else rm -rf "$WORK"; fi
}
trap 'rc=$?; trap - EXIT INT TERM; cleanup; exit $rc' EXIT INT TERM
# The watchdog's sleep dies with it (a stray sleep would hold a caller's pipe open).
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep "$MAX_SECONDS" & s=$!; wait $s; echo "[watchdog] time limit, stopping $$" >&2; kill -TERM $$ ) & WD=$!

DB=$WORK/scale.db

echo "host: $(nproc) CPU, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r); loadavg at start $(loadavg)"
echo "shell RLIMIT_NOFILE soft $(ulimit -Sn) hard $(ulimit -Hn)"

# ---- (a) database: import, start-up, device-pool change -------------------------------------
make_csv "$DEVICES" "$WORK/phones.csv"
t0=$(now_s)
"$PB" --db "$DB" import "$WORK/phones.csv" > "$WORK/import.out" 2>&1 || { cat "$WORK/import.out"; exit 1; }
IMPORT_S=$(elapsed "$t0")
echo "import: $(tr -d '\n' < "$WORK/import.out") in ${IMPORT_S}s (whole CLI process, $DEVICES rows; load $(loadavg)); database $(du -m "$DB" | cut -f1) MB"

LAST=$(printf 'SEP001B%08X' $((DEVICES - 1)))
serve_loopback "$DB" "$WORK" "$KEEPALIVE" "$LAST.cnf.xml" || exit 1
SOFT=$(awk '/Max open files/{print $4}' /proc/$SRV/limits); HARD=$(awk '/Max open files/{print $5}' /proc/$SRV/limits)
RSS_IDLE=$(rss_kib "$SRV"); HWM_IDLE=$(rss_kib "$SRV" VmHWM)
echo "server pid $SRV: ready (last phone's file served) ${STARTUP_S}s after exec; RSS $RSS_IDLE KiB (peak $HWM_IDLE KiB, $(awk -v r="$RSS_IDLE" -v n="$DEVICES" 'BEGIN{printf "%.0f", r*1024/n}') B per device) with $DEVICES devices; RLIMIT_NOFILE soft $SOFT hard $HARD (load $(loadavg))"

REBUILDS=(); RSS_EDITS=(); HWM_EDITS=()
for secs in $(seq 77 $((76 + ${EDITS:-3}))); do
  t0=$(now_s); c0=$(server_cpu "$SRV")
  "$PB" --db "$DB" pool edit Default --monitor-secs $secs >/dev/null || { echo "pool edit failed"; exit 1; }
  cli=$(elapsed "$t0"); ok=0
  for _ in $(seq 1200); do
    if curl -sf --max-time 2 "http://127.0.0.1:$P_HTTP/$LAST.cnf.xml" | grep -q "<connectionMonitorDuration>$secs<"; then ok=1; break; fi
    sleep 0.05
  done
  r=$(elapsed "$t0")
  [ $ok = 1 ] || { echo "rebuild not seen within 60 s"; exit 1; }
  # Files are replaced in slices, the last phone's may come early: memory is read once the
  # server is idle again (the whole rebuild done).
  wait_idle "$SRV" >/dev/null; IDLE_S=$(elapsed "$t0"); c1=$(server_cpu "$SRV")
  REBUILDS+=("$r"); RSS_EDITS+=("$(rss_kib "$SRV")"); HWM_EDITS+=("$(rss_kib "$SRV" VmHWM)")
  echo "pool edit (connectionMonitorDuration=$secs, $DEVICES phones in the pool): CLI ${cli}s; last phone's new file served ${r}s after the edit began (server polls the database every 0.5 s), server idle again after ${IDLE_S}s; server CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')s; RSS then ${RSS_EDITS[-1]} KiB (peak so far ${HWM_EDITS[-1]} KiB) (load $(loadavg))"
done
grep -m3 "files rebuilt" "$WORK/serve.log" || true

# ---- (b) phones registered and held with keepalives -----------------------------------------
HOLD=$PHONES; CAPPED=0
if [ "${ALLOW_OVER:-0}" != 1 ] && [ "$HARD" != unlimited ] && [ $((HARD - NOFILE_RESERVE)) -lt "$PHONES" ]; then
  HOLD=$((HARD - NOFILE_RESERVE)); CAPPED=1
  echo "CAPPED: the server process may hold $HARD descriptors (hard RLIMIT_NOFILE, cannot be raised without CAP_SYS_RESOURCE); holding $HOLD phones instead of $PHONES"
fi
[ "$HOLD" -le "$DEVICES" ] || { echo "PHONES > DEVICES"; exit 1; }
NPROC=$(( (HOLD + PER_PROC - 1) / PER_PROC ))
echo "holding $HOLD SCCP phones over $NPROC client processes (<= $PER_PROC each), keepalive ${KEEPALIVE}s, concurrency $CONCURRENCY per process"
RSS_PRE=$(rss_kib "$SRV")
c0=$(server_cpu "$SRV"); t0=$(now_s)
for k in $(seq 0 $((NPROC - 1))); do
  from=$((k * PER_PROC)); to=$(( (k + 1) * PER_PROC )); [ $to -gt "$HOLD" ] && to=$HOLD
  "$HOLD_BIN" hold --server "127.0.0.1:$P_SCCP" --from $from --to $to --concurrency "$CONCURRENCY" \
    --keepalive "$KEEPALIVE" --hold-secs $((2 * KEEPALIVE + WINDOW + 60)) --src-net $((k + 1)) \
    --counts "$WORK/counts.$k" > "$WORK/client.$k.log" 2>&1 &
  CLIENTS+=($!)
done
# Wait for every client's REGISTERED line (bounded by MAX_SECONDS via the watchdog).
while :; do
  n=$(cat "$WORK"/client.*.log 2>/dev/null | grep -c '^REGISTERED')
  [ "$n" -ge "$NPROC" ] && break
  for p in "${CLIENTS[@]}"; do kill -0 "$p" 2>/dev/null || { echo "a client ended early:"; cat "$WORK"/client.*.log; exit 1; }; done
  sleep 0.5
done
REG_S=$(elapsed "$t0"); c1=$(server_cpu "$SRV")
REGISTERED=$(cat "$WORK"/client.*.log | awk '/^REGISTERED/{s+=$2} END{print s+0}')
FAILED=$(cat "$WORK"/client.*.log | awk '/^REGISTERED/{s+=$4} END{print s+0}')
echo "registered $REGISTERED phones ($FAILED failed) in ${REG_S}s: $(awk -v n="$REGISTERED" -v s="$REG_S" 'BEGIN{printf "%.0f", n/s}')/s; server CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.1f", b-a}')s (load $(loadavg))"

# Steady state: let every phone send at least one keepalive, then measure over WINDOW.
sleep "${WARMUP:-$KEEPALIVE}"
sum_counts() { cat "$WORK"/counts.* | awk '{s+=$1; a+=$2; c+=$3} END{print s+0, a+0, c+0}'; }
read -r s0 a0 cl0 < <(sum_counts); c0=$(server_cpu "$SRV"); t0=$(now_s)
sleep "$WINDOW"
read -r s1 a1 cl1 < <(sum_counts); c1=$(server_cpu "$SRV"); dt=$(elapsed "$t0")
RSS=$(rss_kib "$SRV"); HWM=$(rss_kib "$SRV" VmHWM); FDS=$(ls /proc/$SRV/fd | wc -l)
KA_S=$(awk -v a="$a0" -v b="$a1" -v t="$dt" 'BEGIN{printf "%.0f", (b-a)/t}')
SENT_S=$(awk -v a="$s0" -v b="$s1" -v t="$dt" 'BEGIN{printf "%.0f", (b-a)/t}')
CPU_PCT=$(awk -v a="$c0" -v b="$c1" -v t="$dt" 'BEGIN{printf "%.1f", (b-a)*100/t}')
PER_PHONE=$(awk -v r="$RSS" -v i="$RSS_PRE" -v n="$REGISTERED" 'BEGIN{ if (n>0) printf "%.0f", (r-i)*1024/n; else print 0 }')
EXTRA=$(awk -v i="$RSS_PRE" -v p="$PER_PHONE" -v n="$PHONES" 'BEGIN{printf "%.0f", (i*1024 + p*n)/1048576}')
LOAD=$(loadavg)
echo "holding $REGISTERED phones: server RSS $RSS KiB (peak $HWM KiB, $FDS descriptors open), $PER_PHONE bytes per held phone over the $RSS_PRE KiB before the hold"
echo "keepalives over ${dt}s: $SENT_S/s sent, $KA_S/s acknowledged; server CPU $CPU_PCT % of one core; sessions closed by the server so far: $cl1 (load $LOAD)"
[ "$CAPPED" = 1 ] && echo "extrapolated to $PHONES held phones at the measured per-phone cost: ${EXTRA} MiB resident (not measured: descriptor cap)"

for p in "${CLIENTS[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${CLIENTS[@]}"; do wait "$p" 2>/dev/null; done
CLIENTS=()

python3 - "$RESULT_JSON" <<PY
import json, sys
r = {
  "devices": $DEVICES, "import_s": $IMPORT_S, "startup_s": $STARTUP_S, "rss_idle_kib": $RSS_IDLE, "hwm_idle_kib": $HWM_IDLE,
  "pool_change_rebuild_s": [${REBUILDS[*]/%/,}],
  "phones_target": $PHONES, "phones_held": $REGISTERED, "register_failed": $FAILED,
  "capped_by_nofile": bool($CAPPED), "server_nofile_soft": "$SOFT", "server_nofile_hard": "$HARD",
  "register_s": $REG_S, "rss_after_pool_edits_kib": [${RSS_EDITS[*]/%/,}], "hwm_after_pool_edits_kib": [${HWM_EDITS[*]/%/,}], "rss_before_hold_kib": $RSS_PRE, "rss_kib": $RSS, "rss_peak_kib": $HWM, "bytes_per_held_phone": $PER_PHONE,
  "rss_extrapolated_mib_at_target": $EXTRA if $CAPPED else None,
  "keepalive_secs": $KEEPALIVE, "keepalives_acked_per_s": $KA_S, "keepalives_sent_per_s": $SENT_S,
  "server_cpu_pct": $CPU_PCT, "closed_by_server": $cl1, "loadavg": "$LOAD",
}
json.dump(r, open(sys.argv[1], "w"), indent=2)
PY
echo "RESULT scale devices=$DEVICES import_s=$IMPORT_S startup_s=$STARTUP_S pool_rebuild_s=${REBUILDS[*]} held=$REGISTERED/$PHONES rss_mib=$((RSS / 1024)) per_phone_b=$PER_PHONE rss_idle_mib=$((RSS_IDLE / 1024)) rss_edits_mib=$(for k in "${RSS_EDITS[@]}"; do printf '%s,' $((k / 1024)); done) hwm_mib=$((HWM / 1024)) keepalives_per_s=$KA_S server_cpu_pct=$CPU_PCT load=$LOAD"
echo "result file: $RESULT_JSON"
