#!/usr/bin/env bash
# Memory at scale (issue 6): signpost with $PROFILES profiles × 3 endpoints (weighted, no
# monitor: the endpoints' addresses are documentation prefixes that are answered, never
# contacted). Reports VmRSS/VmHWM from /proc after the config is loaded, and again after
# dnsperf has asked for every profile for $DURATION s (so every answer path is touched).
#
# Usage: bench/scale.sh                  # PROFILES=10000 DURATION=5
#        QUICK=1 bench/scale.sh          # PROFILES=1000 DURATION=2
# Env:   PROFILES DURATION SIGNPOST_BIN (skip the build) KEEP=1 (keep $WORK)
# Target: RSS <= 64 MiB with 10,000 profiles × 3 endpoints.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

quick_defaults PROFILES=1000 DURATION=2
defaults PROFILES=10000 DURATION=5

bench_start scale dnsperf:dnsperf taskset:util-linux python3:python3

PORT=$(free_port 127.0.0.1)
ADMIN_PORT=$(free_port 127.0.0.1)
mkdir -p "$WORK/zones" "$WORK/state"
write_zone "$WORK/zones/scale.example.zone" none
sed -i 's/bench\.example\./scale.example./g' "$WORK/zones/scale.example.zone"
python3 - "$WORK" "$PORT" "$ADMIN_PORT" "$PROFILES" <<'EOF'
import sys
work, port, admin, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
prefixes = ["192.0.2", "198.51.100", "203.0.113"]
weights = [50, 30, 20]
with open(f"{work}/signpost.toml", "w") as f:
    f.write(f'[dns]\nlisten = ["127.0.0.1:{port}"]\nudp_sockets = 1\n\n')
    f.write(f'[admin]\nlisten = "127.0.0.1:{admin}"\n\n')
    f.write(f'[zones]\ndir = "{work}/zones"\n\n[state]\ndir = "{work}/state"\n\n')
    for s in ("site-a", "site-b", "site-c"):
        f.write(f'[[sites]]\nname = "{s}"\n')
    for p in range(n):
        name = f"p{p:05d}.scale.example"
        f.write(f'\n[profiles."{name}"]\nmethod = "weighted"\nttl = 30\n')
        for e in range(3):
            f.write(
                f'[[profiles."{name}".endpoints]]\nname = "e{e}"\nsite = "site-{"abc"[e]}"\n'
                f'address = "{prefixes[e]}.{p % 250 + 1}"\nweight = {weights[e]}\n'
            )
with open(f"{work}/queries", "w") as f:
    for p in range(n):
        f.write(f"p{p:05d}.scale.example A\n")
EOF
log "config: $PROFILES profiles × 3 endpoints ($(du -h "$WORK/signpost.toml" | cut -f1))"

START=$(date +%s.%N)
spawn SP "$WORK/signpost.log" taskset -c "$SERVER_CPU" \
  "$SIGNPOST_BIN" --log-level warn serve --config "$WORK/signpost.toml"
wait_dns 127.0.0.1 "$PORT" "p$(printf %05d $((PROFILES - 1))).scale.example" 120 ||
  { tail -20 "$WORK/signpost.log" >&2; die "signpost did not answer"; }
READY=$(date +%s.%N)
sleep 1
RSS_LOADED=$(rss_kib "$SP")
HWM_LOADED=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SP/status")

timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" \
  dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries" -c 8 -q 200 -t 2 -l "$DURATION" \
  >"$WORK/dnsperf.txt" 2>&1 || die "dnsperf failed: $(tail -3 "$WORK/dnsperf.txt")"
RSS_QUERIED=$(rss_kib "$SP")
HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SP/status")
QPS=$(awk -F': *' '/Queries per second/ { print $2 }' "$WORK/dnsperf.txt")
CODES=$(awk -F': *' '/Response codes/ { print $2 }' "$WORK/dnsperf.txt")

mib() { awk -v k="$1" 'BEGIN { print k / 1024 }'; }

echo
echo "signpost memory at scale — $(date -u +%Y-%m-%dT%H:%MZ) — $(machine_line)"
printf '%-40s %s\n' "profiles × endpoints" "$PROFILES × 3"
printf '%-40s %.2f s\n' "start to first answer" "$(awk -v a="$START" -v b="$READY" 'BEGIN { print b - a }')"
printf '%-40s %.1f MiB\n' "VmRSS after load" "$(mib $RSS_LOADED)"
printf '%-40s %.1f MiB\n' "VmHWM after load" "$(mib $HWM_LOADED)"
printf '%-40s %.1f MiB\n' "VmRSS after ${DURATION}s of queries" "$(mib $RSS_QUERIED)"
printf '%-40s %.1f MiB\n' "VmHWM (peak) overall" "$(mib $HWM)"
printf '%-40s %s (%s)\n' "queries/s over all profiles" "$QPS" "$CODES"
echo "target: VmRSS <= 64 MiB at 10000 × 3"
