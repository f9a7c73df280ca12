# Shared by bench/scale/run.sh and bench/scale/curve.sh (sourced, not run).
# Device i (0-based) is SEP001B<i as 8 hex digits>, SCCP "Cisco 7965", line 1000000+i, in the
# Default device pool: the same MACs the load client (crates/phoneboot/examples/sccp_hold.rs) registers and
# perfdhcp's base MAC 00:1b:00:00:00:00 walks.

# now_s: wall clock in seconds with ms
now_s() { date +%s.%N | cut -c1-14; }
# elapsed T0: seconds since T0
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN{printf "%.3f", b-a}'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# make_csv N FILE: a CUCM BAT-style CSV of N phones
make_csv() {
  python3 - "$1" "$2" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("MAC ADDRESS,DESCRIPTION,DEVICE TYPE,DEVICE PROTOCOL,DEVICE POOL,DIRECTORY NUMBER  1,DISPLAY  1,LINE TEXT LABEL  1\n")
    for i in range(n):
        dn = 1000000 + i
        f.write(f"SEP001B{i:08X},Scale {i},Cisco 7965,SCCP,Default,{dn},User {i},{dn}\n")
PY
}

# reserve_all N DB: a DHCP reservation per provisioned phone (198.18.1.0 + i), written in one
# transaction straight into the table `phoneboot phone reserve` fills (one CLI call per phone
# would take minutes for 100,000), then the configuration generation bumped as a write does.
reserve_all() {
  python3 - "$1" "$2" <<'PY'
import sys, sqlite3, ipaddress
n, db = int(sys.argv[1]), sys.argv[2]
base = int(ipaddress.IPv4Address("198.18.1.0"))
c = sqlite3.connect(db)
rows = []
for i in range(n):
    b = i.to_bytes(4, "big")
    mac = "00:1b:%02x:%02x:%02x:%02x" % tuple(b)
    rows.append((mac, str(ipaddress.IPv4Address(base + i))))
with c:
    c.executemany("INSERT OR REPLACE INTO dhcp_reservations (mac, ip) VALUES (?, ?)", rows)
    c.execute("UPDATE config_generation SET value = value + 1 WHERE id = 1")
c.close()
PY
}

# server_cpu PID: CPU seconds (user+system) of a process
server_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); split($0, f, " "); printf "%.2f\n", (f[12]+f[13])/hz }' "/proc/$1/stat"
}
# wait_idle PID [MAX_S]: waits until PID used < 2 % of a CPU over 0.5 s (bounded by MAX_S,
# default 60), so a memory figure is not taken in the middle of a rebuild. Prints the wait.
wait_idle() {
  local t0 c0 c1 i; t0=$(now_s)
  for i in $(seq $(( ${2:-60} * 2 ))); do
    c0=$(server_cpu "$1"); sleep 0.5; c1=$(server_cpu "$1")
    awk -v a="$c0" -v b="$c1" 'BEGIN{exit !(b-a < 0.011)}' && break
  done
  elapsed "$t0"
}
# rss_kib PID [field]: VmRSS (or VmHWM) in KiB
rss_kib() { awk -v k="${2:-VmRSS}:" '$1==k{print $2}' "/proc/$1/status"; }

# serve_loopback DB DIR KEEPALIVE LASTFILE: starts `phoneboot serve` ($PB) on loopback ports
# with the database DB (DHCP and discovery off), waits until LASTFILE is served over HTTP 6970.
# Sets SRV (pid), P_SCCP P_SIP P_TFTP P_HTTP P_ADMIN and STARTUP_S.
serve_loopback() {
  # Ports are picked free, then bound by the server: another process may take one in between.
  local try
  for try in 1 2 3; do serve_loopback_once "$@" && return 0; stop_pid "$SRV"; SRV=""; done
  return 1
}
serve_loopback_once() {
  local db=$1 dir=$2 ka=$3 last=$4 t0
  read -r P_SCCP P_SIP P_TFTP P_HTTP P_ADMIN < <(python3 -c '
import socket
ps=[]; ss=[]
for k in range(5):
    s=socket.socket(); s.bind(("127.0.0.1",0)); ps.append(s.getsockname()[1]); ss.append(s)
print(*ps)')
  mkdir -p "$dir/tftp"
  cat > "$dir/serve.toml" <<TOML
[node]
name = "scale-cm1"
address = "127.0.0.1"
database = "$db"
tftp_root = "$dir/tftp"
[admin]
listen = "127.0.0.1:$P_ADMIN"
initial_password = "scale-bench"
[discovery]
run = false
[dhcp]
enabled = false
[files]
tftp_listen = "127.0.0.1:$P_TFTP"
http_listen = "127.0.0.1:$P_HTTP"
max_transfers = 100000
[sccp]
listen = "127.0.0.1:$P_SCCP"
keepalive_secs = $ka
[sip]
listen = "127.0.0.1:$P_SIP"
[[callmanager]]
host = "127.0.0.1"
sccp_port = $P_SCCP
sip_port = $P_SIP
TOML
  t0=$(now_s)
  PHONEBOOT_LOG=${PHONEBOOT_LOG:-warn} "$PB" serve --config "$dir/serve.toml" > "$dir/serve.log" 2>&1 &
  SRV=$!
  rm -f "$dir/last.xml"
  for _ in $(seq 1200); do
    curl -sf --max-time 2 -o "$dir/last.xml" "http://127.0.0.1:$P_HTTP/$last" && break
    kill -0 "$SRV" 2>/dev/null || { echo "server died:"; tail -20 "$dir/serve.log"; return 1; }
    sleep 0.1
  done
  STARTUP_S=$(elapsed "$t0")
  [ -s "$dir/last.xml" ] || { echo "server not ready"; tail "$dir/serve.log"; return 1; }
}

# stop_pid PID: TERM, wait up to 10 s, KILL
stop_pid() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; true
}
