#!/usr/bin/env python3
"""Minimal DNS client for the benchmark scripts (loopback only, bounded in time).
Queries go without RD, or with RD when DNSQ_RD=1 (asking a resolver).

  dnsq.py ask SERVER PORT NAME [TYPE]
      One query; prints the rcode and the A/AAAA addresses of the answer; exit 0 on an
      answer with NOERROR, 1 otherwise.

  dnsq.py wait SERVER PORT NAME SECONDS
      Asks until a NOERROR answer with at least one address arrives or SECONDS pass.

  dnsq.py watch SERVER PORT NAME SECONDS INTERVAL_MS OUT
      Asks every INTERVAL_MS for SECONDS, appending "unix_time_ns addr,addr|-" lines to
      OUT (one per answer; "timeout" when none came back within 200 ms).

  dnsq.py summarize OUT FAULT_NS ADDR
      Prints the seconds from FAULT_NS to the last answer in OUT that contains ADDR (0
      when no answer after the fault contained it); prints "never" and exits 2 when the
      last answer of the file still contained ADDR.
"""

import ipaddress
import os
import random
import socket
import struct
import sys
import time

TYPES = {"A": 1, "AAAA": 28}


def loopback(server):
    if not ipaddress.ip_address(server).is_loopback:
        sys.exit(f"dnsq.py: {server} is not a loopback address")


def build(name, qtype):
    qid = random.randrange(65536)
    # RD when DNSQ_RD=1: a recursive resolver (Unbound, BIND) is being asked.
    flags = 0x0100 if os.environ.get("DNSQ_RD") == "1" else 0
    hdr = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0)
    wire = b"".join(
        bytes([len(label)]) + label.encode("ascii")
        for label in name.rstrip(".").split(".")
    )
    return qid, hdr + wire + b"\x00" + struct.pack(">HH", qtype, 1)


def skip_name(p, i):
    while True:
        n = p[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def parse(p, qid):
    """Returns (rcode, [addresses]) or None when the packet is not our answer."""
    if len(p) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", p[:12])
    if rid != qid or not flags & 0x8000:
        return None
    i = 12
    for _ in range(qd):
        i = skip_name(p, i) + 4
    addrs = []
    for _ in range(an):
        i = skip_name(p, i)
        t, _, _, rdlen = struct.unpack(">HHIH", p[i : i + 10])
        i += 10
        rd = p[i : i + rdlen]
        i += rdlen
        if t == 1 and rdlen == 4:
            addrs.append(socket.inet_ntop(socket.AF_INET, rd))
        elif t == 28 and rdlen == 16:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rd))
    return flags & 0xF, addrs


def ask(sock, server, port, name, qtype, timeout):
    qid, pkt = build(name, qtype)
    sock.settimeout(timeout)
    sock.sendto(pkt, (server, port))
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(4096)
        except (socket.timeout, ConnectionRefusedError):
            return None
        r = parse(data, qid)
        if r is not None:
            return r


def main():
    cmd = sys.argv[1]
    if cmd == "summarize":
        summarize(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    server, port, name = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    loopback(server)
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    if cmd == "ask":
        qtype = TYPES[sys.argv[5]] if len(sys.argv) > 5 else 1
        r = ask(sock, server, port, name, qtype, 1.0)
        if r is None:
            print("timeout")
            sys.exit(1)
        print(r[0], " ".join(r[1]))
        sys.exit(0 if r[0] == 0 else 1)
    if cmd == "wait":
        end = time.monotonic() + float(sys.argv[5])
        while time.monotonic() < end:
            r = ask(sock, server, port, name, 1, 0.3)
            if r is not None and r[0] == 0 and r[1]:
                sys.exit(0)
            time.sleep(0.1)
        sys.exit(1)
    if cmd == "watch":
        seconds, interval = float(sys.argv[5]), float(sys.argv[6]) / 1000.0
        out = sys.argv[7]
        end = time.monotonic() + seconds
        with open(out, "a", encoding="ascii") as f:
            nxt = time.monotonic()
            while time.monotonic() < end:
                r = ask(sock, server, port, name, 1, 0.2)
                now = time.time_ns()
                f.write(f"{now} {','.join(r[1]) if r and r[1] else ('-' if r else 'timeout')}\n")
                nxt += interval
                pause = nxt - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    nxt = time.monotonic()
            f.flush()
            os.fsync(f.fileno())
        return
    sys.exit(f"dnsq.py: unknown command {cmd}")


def summarize(path, fault_ns, addr):
    last_with = None
    last_line_has = False
    seen_after = 0
    with open(path, encoding="ascii") as f:
        for line in f:
            ts, answer = line.split()
            ts = int(ts)
            has = addr in answer.split(",")
            if ts >= fault_ns:
                seen_after += 1
                if has:
                    last_with = ts
            last_line_has = has
    if seen_after == 0:
        print("no-answers")
        sys.exit(1)
    if last_line_has:
        print("never")
        sys.exit(2)
    if last_with is None:
        # Already gone from every answer after the fault.
        print("0.000")
        return
    print(f"{(last_with - fault_ns) / 1e9:.3f}")


if __name__ == "__main__":
    main()
