#!/usr/bin/env bash
# Frames per boot by protocol, from captures of a storm's phone-side ports (every frame a
# phone sends or receives crosses Open vSwitch once, whose user-space cost is per packet).
#
#   bench/sim/frames.sh PHONES phone0.pcap voice0.pcap...
set -euo pipefail
PHONES=$1; shift
for f in "$@"; do
  tshark -r "$f" -T fields -E separator=' ' -e eth.dst -e frame.protocols -e tcp.len \
    -e tcp.flags.syn -e tcp.flags.fin -e tcp.flags.reset -e tcp.srcport -e tcp.dstport \
    -e tftp.opcode 2>/dev/null
done | python3 -c '
import sys, collections
n = int(sys.argv[1]); c = collections.Counter()
for line in sys.stdin:
    f = line.split()
    if len(f) < 2: continue
    dst, protos = f[0], f[1].split(":")
    rest = f[2:]
    if "cdp" in protos: k = "cdp"
    elif "lldp" in protos: k = "lldp"
    elif "arp" in protos: k = "arp"
    elif "dhcp" in protos or "bootp" in protos: k = "dhcp"
    elif "tftp" in protos or ("udp" in protos and "tcp" not in protos):
        op = rest[-1] if rest else ""
        k = {"1": "tftp rrq", "3": "tftp data", "4": "tftp ack", "5": "tftp error", "6": "tftp oack"}.get(op, "udp other")
    elif "tcp" in protos:
        ln, syn, fin, rst, sp, dp = (rest + [""] * 6)[:6]
        ports = {sp, dp}
        app = "sccp" if "2000" in ports else "sip" if "5060" in ports else "http" if "6970" in ports else "tcp " + dp
        if syn in ("1", "True"): k = app + " syn"
        elif fin in ("1", "True"): k = app + " fin"
        elif rst in ("1", "True"): k = app + " rst"
        elif ln == "0": k = app + " pure ack"
        else: k = app + " data"
    else: k = "other " + protos[-1]
    c[k] += 1
tot = sum(c.values())
print(f"frames at the phones: {tot} for {n} phones = {tot/n:.1f} per boot")
for k, v in sorted(c.items(), key=lambda kv: -kv[1]):
    print(f"  {k:16} {v:8} {v/n:6.2f}")
' "$PHONES"
