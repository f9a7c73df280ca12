#!/usr/bin/env python3
"""Kernel protocol counters of a network namespace: `snap NS FILE` saves them, `diff NS FILE
PHONES` prints what moved since, per phone (segments, retransmissions, datagrams, ACKs)."""
import json, subprocess, sys

def read(ns):
    out = {}
    for f in ("/proc/net/snmp", "/proc/net/netstat"):
        text = subprocess.run(["ip", "netns", "exec", ns, "cat", f], capture_output=True, text=True).stdout
        lines = text.splitlines()
        for a, b in zip(lines[::2], lines[1::2]):
            ka, kb = a.split(), b.split()
            for k, v in zip(ka[1:], kb[1:]):
                try:
                    out[ka[0] + k] = int(v)
                except ValueError:
                    pass
    return out

KEYS = ["Tcp:OutSegs", "Tcp:InSegs", "Tcp:RetransSegs", "Tcp:ActiveOpens", "Tcp:PassiveOpens",
        "TcpExt:DelayedACKs", "TcpExt:TCPPureAcks", "TcpExt:TCPHPAcks", "TcpExt:TCPLossProbes",
        "TcpExt:TCPTimeouts", "TcpExt:TCPSynRetrans", "TcpExt:ListenDrops",
        "Udp:InDatagrams", "Udp:OutDatagrams", "Udp:NoPorts", "Udp:RcvbufErrors",
        "Ip:InReceives", "Ip:OutRequests"]

cmd, ns, path = sys.argv[1:4]
if cmd == "snap":
    json.dump(read(ns), open(path, "w"))
else:
    phones = int(sys.argv[4])
    a, b = json.load(open(path)), read(ns)
    print(f"  kernel counters in {ns} (per phone):")
    print("   " + "  ".join(f"{k.split(':')[1]} {(b.get(k, 0) - a.get(k, 0)) / phones:.2f}"
                           for k in KEYS if b.get(k, 0) != a.get(k, 0)))
