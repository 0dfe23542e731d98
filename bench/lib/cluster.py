#!/usr/bin/env python3
"""The measuring side of bench/cluster.sh (loopback only, every wait bounded).

Node i (1-based) of a bench cluster listens on 127.0.0.i: DNS 5300+i, admin 8100+i,
gossip 7900+i. Its admin token is in WORK/admin.token.

  cluster.py configs WORK N TARGETS INGRESS_PORT INTERVAL CLUSTER
      Writes WORK/nI/signpost.toml for nodes 1..N (zones from WORK/bench.example.zone).
      TARGETS = 0: one profile over three static endpoints (no probes). Otherwise
      TARGETS/5 profiles of 5 endpoints each, endpoint k at cluster_ingress's address for
      target k, probed over HTTP every INTERVAL. CLUSTER = 0 leaves [cluster] out.

  cluster.py wait-live WORK N SECONDS
      Waits until every node lists N live nodes in GET /api/v1/cluster.

  cluster.py propagate WORK N COUNT
      COUNT times, alternately: drain (then undrain) site s1 at node 1; measures from the
      POST's answer until every node's GET /api/v1/status shows it. Prints the times.

  cluster.py partition WORK N SECONDS RUNS
      RUNS times: node N's gossip is dropped both ways (nft, chain inet spbench cut) for
      SECONDS; meanwhile site s1 is drained at node 1 and site s2 at node N; then the link
      heals and the time until every node shows both drains, and until every node lists
      N live nodes again, is measured. Undrains both after each run.

  cluster.py sample PID... -- PORT...
      Prints utime+stime ticks of each PID (node 1, 2, …), the nft byte counters (sent,
      received) of each gossip PORT, and each node's probe results and status transitions
      so far (sums over /metrics) as JSON.
"""

import ipaddress
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request


def addr(i):
    return f"127.0.0.{i}"


def admin(i):
    return f"http://{addr(i)}:{8100 + i}"


def gossip_port(i):
    return 7900 + i


def target_addr(k):
    return f"127.1.{k // 250}.{k % 250 + 1}"


def token(work):
    with open(f"{work}/admin.token", encoding="ascii") as f:
        return f.read().strip()


def request(method, url, tok=None, body=None, timeout=5):
    host = url.split("/")[2].split(":")[0]
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"cluster.py: {host} is not a loopback address")
    data = body.encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if tok:
        req.add_header("Authorization", f"Bearer {tok}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def configs(work, n, targets, ingress_port, interval, cluster):
    n, targets, cluster = int(n), int(targets), cluster == "1"
    with open(f"{work}/bench.example.zone", encoding="ascii") as f:
        zone = f.read()
    for i in range(1, n + 1):
        d = f"{work}/n{i}"
        os.makedirs(f"{d}/zones", exist_ok=True)
        os.makedirs(f"{d}/state", exist_ok=True)
        with open(f"{d}/zones/bench.example.zone", "w", encoding="ascii") as f:
            f.write(zone)
        c = [
            f'[dns]\nlisten = ["{addr(i)}:{5300 + i}"]\nudp_sockets = 1\n',
            f'[admin]\nlisten = "{addr(i)}:{8100 + i}"\ntoken_file = "{work}/admin.token"\n',
            f'[zones]\ndir = "{d}/zones"\n\n[state]\ndir = "{d}/state"\n',
        ]
        if cluster:
            peers = ", ".join(f'"{addr(j)}:{gossip_port(j)}"' for j in range(1, n + 1) if j != i)
            c.append(
                f'[cluster]\nnode = "n{i}"\nsite = "s{i}"\n'
                f'listen = "{addr(i)}:{gossip_port(i)}"\npeers = [{peers}]\n'
                f'key_file = "{work}/cluster.key"\n'
            )
        sites = max(n, 5)
        c.append("".join(f'[[sites]]\nname = "s{s}"\n' for s in range(1, sites + 1)))
        if targets == 0:
            c.append('[profiles."app.bench.example"]\nmethod = "multivalue"\nttl = 30\n')
            for e in range(1, 4):
                c.append(
                    f'[[profiles."app.bench.example".endpoints]]\nname = "e{e}"\n'
                    f'site = "s{e}"\naddress = "192.0.2.{e}"\n'
                )
        else:
            c.append(
                f'[monitors.ingress]\nprotocol = "http"\nport = {ingress_port}\npath = "/"\n'
                f'interval = "{interval}"\ntimeout = "2s"\ntolerated_failures = 0\nrise = 1\n'
            )
            for p in range(targets // 5):
                name = f"p{p:05d}.bench.example"
                c.append(
                    f'[profiles."{name}"]\nmethod = "weighted"\nttl = 30\nmonitor = "ingress"\n'
                )
                for e in range(5):
                    c.append(
                        f'[[profiles."{name}".endpoints]]\nname = "e{e}"\nsite = "s{e + 1}"\n'
                        f'address = "{target_addr(p * 5 + e)}"\n'
                    )
        with open(f"{d}/signpost.toml", "w", encoding="ascii") as f:
            f.write("\n".join(c))


def live_counts(n):
    """Per node, the number of live nodes it lists (None when it does not answer)."""
    out = []
    for i in range(1, n + 1):
        try:
            v = request("GET", f"{admin(i)}/api/v1/cluster")
            out.append(sum(1 for x in v.get("nodes", []) if x.get("live")))
        except (OSError, ValueError, urllib.error.URLError):
            out.append(None)
    return out


def wait_live(work, n, seconds):
    n = int(n)
    end = time.monotonic() + float(seconds)
    last = None
    while time.monotonic() < end:
        last = live_counts(n)
        if all(c == n for c in last):
            return
        time.sleep(0.2)
    sys.exit(f"cluster.py: not every node lists {n} live nodes within {seconds} s: {last}")


def drained(i, site):
    v = request("GET", f"{admin(i)}/api/v1/status")
    for s in v.get("sites", []):
        if s.get("name") == site:
            return s.get("drain") is not None
    raise ValueError(f"no site {site} at node {i}")


def wait_drain_state(n, want, limit):
    """Polls every node until each shows want[site] for every site; seconds taken."""
    t0 = time.monotonic()
    pending = set(range(1, n + 1))
    while pending:
        for i in sorted(pending):
            try:
                if all(drained(i, s) == w for s, w in want.items()):
                    pending.discard(i)
            except (OSError, ValueError, urllib.error.URLError):
                pass
        if not pending:
            break
        if time.monotonic() - t0 > limit:
            sys.exit(f"cluster.py: nodes {sorted(pending)} do not show {want} after {limit} s")
        time.sleep(0.005)
    return time.monotonic() - t0


def propagate(work, n, count):
    n, count, tok = int(n), int(count), token(work)
    times = []
    for k in range(count):
        action = "drain" if k % 2 == 0 else "undrain"
        body = json.dumps({"reason": f"bench {k}"}) if action == "drain" else "{}"
        request("POST", f"{admin(1)}/api/v1/sites/s1/{action}", tok, body)
        times.append(wait_drain_state(n, {"s1": action == "drain"}, 10))
        time.sleep(random.uniform(0.2, 0.5))
    if count % 2:
        request("POST", f"{admin(1)}/api/v1/sites/s1/undrain", tok, "{}")
    ms = sorted(t * 1000 for t in times)
    print(json.dumps({
        "nodes": n,
        "drains": count,
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 1),
        "max_ms": round(ms[-1], 1),
        "min_ms": round(ms[0], 1),
    }))


def nft(*args):
    subprocess.run(["nft", *args], check=True, timeout=10)


def partition(work, n, seconds, runs):
    n, seconds, runs, tok = int(n), float(seconds), int(runs), token(work)
    iso = n
    results = []
    for r in range(runs):
        nft("flush", "chain", "inet", "spbench", "cut")
        nft("add", "rule", "inet", "spbench", "cut", "udp", "dport", str(gossip_port(iso)), "drop")
        nft("add", "rule", "inet", "spbench", "cut", "udp", "sport", str(gossip_port(iso)), "drop")
        cut = time.monotonic()
        # Both sides notice: the majority side lists n-1 live, the isolated node 1.
        end = cut + seconds
        seen_dead = None
        while time.monotonic() < end:
            c = live_counts(n)
            if all(x == n - 1 for x in c[:-1]) and c[-1] == 1:
                seen_dead = time.monotonic() - cut
                break
            time.sleep(0.1)
        request("POST", f"{admin(1)}/api/v1/sites/s1/drain", tok, '{"reason": "partition, majority side"}')
        request("POST", f"{admin(iso)}/api/v1/sites/s2/drain", tok, '{"reason": "partition, isolated side"}')
        time.sleep(max(0.0, end - time.monotonic()))
        nft("flush", "chain", "inet", "spbench", "cut")
        healed = time.monotonic()
        t_drains = wait_drain_state(n, {"s1": True, "s2": True}, 60)
        t_live = None
        while time.monotonic() - healed < 60:
            if all(c == n for c in live_counts(n)):
                t_live = time.monotonic() - healed
                break
            time.sleep(0.02)
        results.append({"run": r + 1, "dead_seen_s": seen_dead and round(seen_dead, 2),
                        "drains_converged_s": round(t_drains, 2),
                        "all_live_s": t_live and round(t_live, 2)})
        for s in ("s1", "s2"):
            request("POST", f"{admin(1)}/api/v1/sites/{s}/undrain", tok, "{}")
        wait_drain_state(n, {"s1": False, "s2": False}, 30)
        time.sleep(1)
    print(json.dumps({"nodes": n, "partition_s": seconds, "runs": results}))


def metric_sums(i, names):
    """The sum over every label set of each metric family in `names` at node i."""
    sums = dict.fromkeys(names, 0.0)
    url = f"{admin(i)}/metrics"
    with urllib.request.urlopen(url, timeout=30) as r:
        for line in r.read().decode().splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in sums:
                sums[name] += float(line.rsplit(" ", 1)[1])
    return sums


def sample(args):
    sep = args.index("--")
    pids, ports = args[:sep], args[sep + 1:]
    families = ("signpost_probe_results_total", "signpost_status_transitions_total")
    metrics, metrics_t = {}, {}
    for k in range(len(pids)):
        # Each node's counters with the moment they were read: under load a scrape can
        # take seconds, and rates over the sample's single time would be off by as much.
        t0 = time.monotonic()
        metrics[str(7901 + k)] = metric_sums(k + 1, families)
        metrics_t[str(7901 + k)] = (t0 + time.monotonic()) / 2
    ticks = {}
    for p in pids:
        with open(f"/proc/{p}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks[p] = int(fields[11]) + int(fields[12])
    t = time.monotonic()
    out = subprocess.run(["nft", "-j", "list", "chain", "inet", "spbench", "count"],
                         check=True, capture_output=True, text=True, timeout=10).stdout
    counters = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        comment = rule.get("comment", "")
        for e in rule.get("expr", []):
            if "counter" in e:
                counters[comment] = e["counter"]["bytes"]
    print(json.dumps({
        "t": t,
        "ticks": ticks,
        "tx": {p: counters.get(f"tx-{p}", 0) for p in ports},
        "rx": {p: counters.get(f"rx-{p}", 0) for p in ports},
        "metrics": metrics,
        "metrics_t": metrics_t,
    }))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "configs":
        configs(*args)
    elif cmd == "wait-live":
        wait_live(*args)
    elif cmd == "propagate":
        propagate(*args)
    elif cmd == "partition":
        partition(*args)
    elif cmd == "sample":
        sample(args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
