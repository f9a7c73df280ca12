#!/usr/bin/env bash
# Cost curve (issue 11, item 4): how phoneboot's DHCP, TFTP and SCCP registration rates change
# with the number of provisioned devices. For each size N in SIZES:
#   * a database of N phones (BAT CSV import) plus a DHCP reservation per phone;
#   * DHCP: bench/dhcp/bench.sh, phoneboot side only, as the whole `phoneboot serve`
#     (SERVERS=phoneboot-serve) on a copy of that database per step; perfdhcp's clients are
#     provisioned MACs (-b mac=00:1b:00:00:00:00 -R DHCP_CLIENTS), so every exchange hits a
#     reservation. DHCP_CLIENTS is the same at every size (default: the smallest size): the
#     workload stays the same and only the database grows (with -R N, a larger size also
#     meant more distinct clients, i.e. more new leases and fewer renewals per run);
#   * TFTP: the same load client as bench/tftp (tftp-load, a new socket per fetch, CONC clients)
#     fetching SEP<MAC>.cnf.xml of a provisioned phone from `phoneboot serve`, which builds it
#     from the database (bench/tftp/run.sh serves a static file with pb-fileserver: no devices);
#   * SCCP: full registrations of provisioned phones (examples/sccp_hold rate: Register ...
#     ConfigStat, then close) against `phoneboot serve` (bench/sccp/run.sh's server is an
#     in-memory directory, not the database).
# Prints a table with each rate's ratio to the smallest size's; target: none falls > 20 %.
#
# usage (root): bench/scale/curve.sh   env: SIZES="1000 10000 100000" REPS=3 DURATION=5
#   CONC=8 (<= serve's per-client transfer limit, 8: the load client has one address) SCCP_PHONES=5000 SCCP_CONC=64 DHCP_RATES="1000 2000 3000 4000 6000" PERIOD=5
#   SAT=20000 AREAS="dhcp tftp sccp" SKIP_BUILD=0 RESULT_JSON=path MAX_SECONDS=3000 SMOKE=1
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
if [ "${SMOKE:-0}" = 1 ]; then
  # DHCP (SMOKE_DHCP=1) needs perfdhcp (package kea-admin, from install-deps --bench) and root,
  # and takes ~20 s of namespaces and server starts: left out of the test suite's smoke run.
  if [ "${SMOKE_DHCP:-0}" = 1 ]; then : "${AREAS:=dhcp tftp sccp}"; else : "${AREAS:=tftp sccp}"; fi
  : "${SIZES:=100 300}" "${REPS:=1}" "${DURATION:=1}" "${SCCP_PHONES:=100}" "${DHCP_RATES:=200}" "${PERIOD:=1}" "${SAT:=400}" "${MAX_SECONDS:=60}"
fi
SIZES=${SIZES:-"1000 10000 100000"}; REPS=${REPS:-3}; DURATION=${DURATION:-5}; CONC=${CONC:-8}
SCCP_PHONES=${SCCP_PHONES:-5000}; SCCP_CONC=${SCCP_CONC:-64}; AREAS=${AREAS:-"dhcp tftp sccp"}
DHCP_RATES=${DHCP_RATES:-"1000 2000 3000 4000 6000"}; PERIOD=${PERIOD:-5}; SAT=${SAT:-20000}
MAX_SECONDS=${MAX_SECONDS:-3000}
DHCP_CLIENTS=${DHCP_CLIENTS:-$(for s in $SIZES; do echo "$s"; done | sort -n | head -1)}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PB=${PHONEBOOT_BIN:-$TARGET/release/phoneboot}; HOLD_BIN=${SCCP_HOLD_BIN:-$TARGET/release/examples/sccp_hold}
LOAD=${TFTP_LOAD_BIN:-$TARGET/release/tftp-load}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  (cd "$REPO" && cargo build --release --locked -q -p phoneboot -p fileserver --bins \
    && cargo build --release --locked -q -p phoneboot --example sccp_hold) || exit 1
fi
for b in "$PB" "$HOLD_BIN" "$LOAD"; do [ -x "$b" ] || { echo "missing $b"; exit 1; }; done

WORK=$(mktemp -d /tmp/bench-curve.XXXXXX); SRV=""
RESULT_JSON_GIVEN=${RESULT_JSON:-}; RESULT_JSON=${RESULT_JSON:-$WORK/curve.json}
cleanup() {
  set +e; stop_pid "$SRV"; [ -n "${WD:-}" ] && kill "$WD" 2>/dev/null
  # Without RESULT_JSON the result file and logs stay in $WORK (printed); else all goes.
  if [ "${KEEP_WORK:-0}" = 1 ] || [ -z "${RESULT_JSON_GIVEN:-}" ]; then rm -rf "$WORK"/*.db* "$WORK"/*/*.db* "$WORK"/*.csv; else rm -rf "$WORK"; fi
  [ -n "${DHCP_WORK:-}" ] && [ -z "${KEEP_WORK:-}" ] && rm -rf $DHCP_WORK
}
trap 'rc=$?; trap - EXIT INT TERM; cleanup; exit $rc' EXIT INT TERM
# The watchdog's sleep dies with it (a stray sleep would hold a caller's pipe open).
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep "$MAX_SECONDS" & s=$!; wait $s; echo "[watchdog] time limit, stopping $$" >&2; kill -TERM $$ ) & WD=$!
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print("%.0f" % statistics.median(v) if v else 0)' "$@"; }

echo "host: $(nproc) CPU, kernel $(uname -r); loadavg at start $(loadavg)"
echo "sizes [$SIZES] reps $REPS; dhcp rates [$DHCP_RATES] ${PERIOD}s + overload $SAT/s; tftp $CONC clients ${DURATION}s; sccp $SCCP_PHONES registrations x $SCCP_CONC"
declare -A DK DKC DO DOC TF TFC SC SCC LD
for n in $SIZES; do
  d=$WORK/n$n; mkdir -p "$d"; db=$WORK/seed-$n.db
  make_csv "$n" "$WORK/phones-$n.csv"
  t0=$(now_s); "$PB" --db "$db" import "$WORK/phones-$n.csv" >/dev/null || { echo "import failed"; exit 1; }
  imp=$(elapsed "$t0"); reserve_all "$n" "$db"
  echo "== $n devices: imported in ${imp}s, $n reservations (load $(loadavg))"
  LD[$n]=$(loadavg)

  if [[ " $AREAS " == *" dhcp "* ]]; then
    # 1,000 clients at several thousand exchanges/s each send far more than a phone: the
    # per-MAC flood guard (2 packets/s) would be what is measured, so it is lifted here.
    out=$(DHCP_RATE_BURST=1000000 DHCP_RATE_PER_SEC=1000000 \
      REPS=$REPS PERIOD=$PERIOD RATES="$DHCP_RATES" SAT=$SAT SERVERS=phoneboot-serve PHONEBOOT_SERVE=$PB \
      PHONEBOOT_SEED_DB=$db PERFDHCP_CLIENTS=$DHCP_CLIENTS PERFDHCP_ARGS="-b mac=00:1b:00:00:00:00" \
      MAX_SECONDS=$((MAX_SECONDS / 2)) "$REPO/bench/dhcp/bench.sh" 2>"$d/dhcp.err")
    echo "$out" > "$d/dhcp.log"; DHCP_WORK="${DHCP_WORK:-} $(echo "$out" | sed -n 's/^raw perfdhcp output and server logs: \(\/tmp\/bench-dhcp\.[A-Za-z0-9]*\)$/\1/p')"; echo "$out" | grep -E '^  phoneboot-serve|^RESULT' | sed 's/^/  dhcp: /'
    DK[$n]=$(echo "$out" | sed -n 's/^RESULT phoneboot-serve .*DORA knee 4-way\/s median=\([0-9]*\).*/\1/p')
    DO[$n]=$(echo "$out" | sed -n 's/^RESULT phoneboot-serve .*overload 4-way\/s median=\([0-9]*\).*/\1/p')
    # Server CPU per exchange does not depend on how busy the machine is: the fairer curve.
    DKC[$n]=$(echo "$out" | sed -n 's/^RESULT phoneboot-serve .*| per server CPU-s median=\([0-9]*\).*/\1/p')
    DOC[$n]=$(echo "$out" | sed -n 's/^RESULT phoneboot-serve .*overload .* per CPU-s=\([0-9]*\).*/\1/p')
    [ -n "${DK[$n]}" ] || { echo "dhcp bench failed:"; tail -5 "$d/dhcp.err"; DK[$n]=0; DO[$n]=0; }
  fi

  if [[ " $AREAS " == *" tftp "* || " $AREAS " == *" sccp "* ]]; then
    cp "$db" "$d/serve.db"
    mid=$(printf 'SEP001B%08X.cnf.xml' $((n / 2)))
    serve_loopback "$d/serve.db" "$d" 30 "$mid" || exit 1
    size=$(stat -c %s "$d/last.xml")
    echo "  server ready ${STARTUP_S}s after exec, RSS $(rss_kib "$SRV") KiB; $mid is $size bytes"
    rates=(); percpu=()
    if [[ " $AREAS " == *" tftp "* ]]; then
      for rep in $(seq "$REPS"); do
        c0=$(server_cpu "$SRV")
        j=$(timeout $((DURATION + 30)) "$LOAD" --server "127.0.0.1:$P_TFTP" --file "$mid" --proto tftp \
            --concurrency "$CONC" --count 10000000 --duration "$DURATION" --expect-size "$size" --json 2>/dev/null | grep '^{')
        c1=$(server_cpu "$SRV")
        read -r r done_n failed < <(echo "$j" | python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.0f %d %d" % (j["rate_per_s"], j["completed"], j["failed"]))' 2>/dev/null || echo "0 0 0")
        pc=$(awk -v d="$done_n" -v a="$c0" -v b="$c1" 'BEGIN{ if (b>a) printf "%.0f", d/(b-a); else print 0 }')
        echo "  tftp rep $rep: $r/s ($done_n fetched, $failed failed), $pc per server CPU-s"
        rates+=("$r"); percpu+=("$pc")
      done
      TF[$n]=$(median "${rates[@]}"); TFC[$n]=$(median "${percpu[@]}")
    fi
    rates=(); percpu=()
    if [[ " $AREAS " == *" sccp "* ]]; then
      m=$SCCP_PHONES; [ "$m" -gt "$n" ] && m=$n
      for rep in $(seq "$REPS"); do
        c0=$(server_cpu "$SRV")
        out=$("$HOLD_BIN" rate --server "127.0.0.1:$P_SCCP" --from 0 --to "$m" --concurrency "$SCCP_CONC" --max-secs 120 2>/dev/null)
        c1=$(server_cpu "$SRV")
        r=$(echo "$out" | sed -n 's/.*per_s=\([0-9]*\).*/\1/p'); ok=$(echo "$out" | sed -n 's/.*registered=\([0-9]*\).*/\1/p')
        pc=$(awk -v d="${ok:-0}" -v a="$c0" -v b="$c1" 'BEGIN{ if (b>a) printf "%.0f", d/(b-a); else print 0 }')
        echo "  sccp rep $rep: ${out:-no output}; $pc per server CPU-s"
        rates+=("${r:-0}"); percpu+=("$pc")
      done
      SC[$n]=$(median "${rates[@]}"); SCC[$n]=$(median "${percpu[@]}")
    fi
    stop_pid "$SRV"; SRV=""
    rm -f "$d"/serve.db*
  fi
done

first=${SIZES%% *}
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }'; }
echo
echo "== cost curve: medians of $REPS (ratio to $first devices) =="
printf "| %-9s | %-20s | %-20s | %-20s | %-20s | %-20s | %-20s | %-20s | %-16s |\n" devices "DHCP knee 4-way/s" "DHCP per CPU-s" "DHCP overload 4-way/s" "TFTP fetches/s" "TFTP per CPU-s" "SCCP regs/s" "SCCP per CPU-s" "load at start"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $SIZES; do
  f() { local v=${1:-}; [ -n "$v" ] && echo "$v ($(ratio "$v" "$2")x)" || echo "-"; }
  printf "| %-9s | %-20s | %-20s | %-20s | %-20s | %-20s | %-20s | %-20s | %-16s |\n" "$n" \
    "$(f "${DK[$n]:-}" "${DK[$first]:-}")" "$(f "${DKC[$n]:-}" "${DKC[$first]:-}")" "$(f "${DO[$n]:-}" "${DO[$first]:-}")" \
    "$(f "${TF[$n]:-}" "${TF[$first]:-}")" "$(f "${TFC[$n]:-}" "${TFC[$first]:-}")" \
    "$(f "${SC[$n]:-}" "${SC[$first]:-}")" "$(f "${SCC[$n]:-}" "${SCC[$first]:-}")" "${LD[$n]}"
done
python3 - "$RESULT_JSON" "$first" <<PY
import json, sys
rows = {}
for line in """$(for n in $SIZES; do echo "$n ${DK[$n]:-0} ${DKC[$n]:-0} ${DO[$n]:-0} ${DOC[$n]:-0} ${TF[$n]:-0} ${TFC[$n]:-0} ${SC[$n]:-0} ${SCC[$n]:-0}"; done)""".strip().splitlines():
    n, dk, dkc, do, doc, tf, tfc, sc, scc = line.split()
    rows[n] = {"dhcp_knee_per_s": float(dk), "dhcp_knee_per_cpu_s": float(dkc),
               "dhcp_overload_per_s": float(do), "dhcp_overload_per_cpu_s": float(doc), "tftp_per_s": float(tf),
               "tftp_per_cpu_s": float(tfc), "sccp_registrations_per_s": float(sc), "sccp_per_cpu_s": float(scc)}
first = rows[sys.argv[2]]
for r in rows.values():
    r["ratio_to_first"] = {k: (round(v / first[k], 3) if first[k] else None) for k, v in list(r.items())}
json.dump({"sizes": rows, "reps": $REPS, "dhcp_clients": $DHCP_CLIENTS}, open(sys.argv[1], "w"), indent=2)
PY
echo "RESULT curve $(for n in $SIZES; do printf '%s:dhcp=%s,tftp=%s,sccp=%s ' "$n" "${DK[$n]:-0}" "${TF[$n]:-0}" "${SC[$n]:-0}"; done)"
echo "result file: $RESULT_JSON; load at end $(loadavg)"
