#!/usr/bin/env bash
# Resident memory of ONE `phoneboot serve` with DEVICES provisioned phones (issue 11, item 3):
# VmRSS/VmHWM once the last phone's file is served, then after each of EDITS device-pool edits
# (`pool edit Default --monitor-secs N`: all DEVICES files rebuilt), with the time from the
# CLI call until the last phone's new file is served. Same database and server set-up as
# bench/scale/run.sh (lib.sh). Phones held over SCCP: run.sh.
#
# usage: bench/scale/mem.sh      env: DEVICES=100000 EDITS=3 SKIP_BUILD=0 WORK=dir (kept)
#   WRAP="heaptrack -o DIR/heap"  runs the server under a profiler (figures are then the
#   profiler's process's own, not comparable); MALLOC_ARENA_MAX etc. pass through.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
DEVICES=${DEVICES:-100000}; EDITS=${EDITS:-3}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PB_REAL=${PHONEBOOT_BIN:-$TARGET/release/phoneboot}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building the release binary"
  (cd "$REPO" && cargo build --release --locked -q -p phoneboot --bin phoneboot) || exit 1
fi
KEEP=${WORK:+1}; WORK=${WORK:-$(mktemp -d /tmp/bench-mem.XXXXXX)}; mkdir -p "$WORK"; SRV=""
cleanup() { set +e; [ -n "${PID:-}" ] && [ "$PID" != "$SRV" ] && stop_pid "$PID"; stop_pid "$SRV"; [ -z "$KEEP" ] && rm -rf "$WORK"; }
trap 'rc=$?; trap - EXIT INT TERM; cleanup; exit $rc' EXIT INT TERM

DB=$WORK/scale.db; rm -f "$DB"*
make_csv "$DEVICES" "$WORK/phones.csv"
"$PB_REAL" --db "$DB" import "$WORK/phones.csv" > "$WORK/import.out" 2>&1 || { cat "$WORK/import.out"; exit 1; }
PB=$PB_REAL
if [ -n "${WRAP:-}" ]; then
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$WRAP" "$PB_REAL" > "$WORK/wrap.sh"; chmod +x "$WORK/wrap.sh"; PB=$WORK/wrap.sh
fi
LAST=$(printf 'SEP001B%08X' $((DEVICES - 1)))
PHONEBOOT_LOG=${PHONEBOOT_LOG:-info} serve_loopback "$DB" "$WORK" 30 "$LAST.cnf.xml" || exit 1
# The server's own pid (under WRAP the wrapper's child).
PID=$SRV
for p in $(pgrep -f "serve --config $WORK/serve.toml"); do [ "$(readlink /proc/$p/exe)" = "$PB_REAL" ] && PID=$p; done
wait_idle "$PID" >/dev/null
R0=$(rss_kib "$PID"); H0=$(rss_kib "$PID" VmHWM)
echo "start: last file served ${STARTUP_S}s after exec; VmRSS $R0 KiB VmHWM $H0 KiB; $(awk -v r="$R0" -v n="$DEVICES" 'BEGIN{printf "%.0f", r*1024/n}') B resident per device (load $(loadavg))"
RSS_LIST=(); HWM_LIST=(); REB=()
for secs in $(seq 77 $((76 + EDITS))); do
  t0=$(now_s); c0=$(server_cpu "$PID")
  "$PB_REAL" --db "$DB" pool edit Default --monitor-secs "$secs" >/dev/null || { echo "pool edit failed"; exit 1; }
  ok=0
  for _ in $(seq 2400); do
    if curl -sf --max-time 2 "http://127.0.0.1:$P_HTTP/$LAST.cnf.xml" | grep -q "<connectionMonitorDuration>$secs<"; then ok=1; break; fi
    sleep 0.05
  done
  r=$(elapsed "$t0"); [ $ok = 1 ] || { echo "rebuild not seen within 120 s"; exit 1; }
  # Files are replaced in slices: the last phone's file may come before the others. The
  # rebuild is over when the server logs it (PHONEBOOT_LOG=info) and goes idle.
  for _ in $(seq 2400); do
    [ "$(grep -c 'files rebuilt' "$WORK/serve.log")" -ge $((secs - 76)) ] && break; sleep 0.05
  done
  done_s=$(elapsed "$t0"); idle=$(wait_idle "$PID"); c1=$(server_cpu "$PID")
  REB+=("$done_s"); RSS_LIST+=("$(rss_kib "$PID")"); HWM_LIST+=("$(rss_kib "$PID" VmHWM)")
  echo "pool edit $secs: last phone's new file served ${r}s, all $DEVICES rebuilt ${done_s}s after the edit began (idle ${idle}s later), server CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')s; VmRSS ${RSS_LIST[-1]} KiB VmHWM ${HWM_LIST[-1]} KiB (load $(loadavg))"
  # Experiments: AFTER_EDIT runs with $PID set (e.g. a gdb call into the allocator).
  if [ -n "${AFTER_EDIT:-}" ]; then eval "$AFTER_EDIT"; echo "  after AFTER_EDIT: VmRSS $(rss_kib "$PID") KiB"; fi
done
echo "RESULT mem devices=$DEVICES rss_start_kib=$R0 hwm_start_kib=$H0 rss_after_edits_kib=${RSS_LIST[*]} hwm_after_edits_kib=${HWM_LIST[*]} rebuild_done_s=${REB[*]} MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-default}"
