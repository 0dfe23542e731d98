#!/usr/bin/env bash
# Per-thread view of compare.sh's fixed-rate measurement (issue 6): signpost and gdnsd
# (same configs as compare.sh, one UDP thread each, CPU $SERVER_CPU) answer $RATE qps of
# the weighted name for $DURATION s, back to back, $RUNS times. For every thread it
# prints the CPU ticks (user, system) and context switches (voluntary, involuntary) spent
# during the run, so the UDP thread can be compared alone and wake-ups per query seen.
#
# Usage: bench/threads.sh               # DURATION=5 RUNS=2 RATE=30000
# Env:   SERVER_CPU CLIENT_CPU SIGNPOST_BIN KEEP=1
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

defaults DURATION=5 RUNS=2 RATE=30000

bench_start threads dnsperf:dnsperf gdnsd:gdnsd taskset:util-linux python3:python3

start_signpost_and_gdnsd
echo "app.bench.example A" >"$WORK/q"

# One line per thread: name utime stime voluntary involuntary.
threads() {
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' _ <"$t/comm")" "$(awk '{ print $14, $15 }' "$t/stat")" \
      "$(awk '/^voluntary_ctxt/ { v = $2 } /^nonvoluntary_ctxt/ { n = $2 } END { print v, n }' "$t/status")"
  done
}

echo "per-thread CPU at $RATE qps for ${DURATION}s — $(date -u +%Y-%m-%dT%H:%MZ) — $(machine_line)"
for run in $(seq 1 "$RUNS"); do
  for s in signpost gdnsd; do
    if [ "$s" = signpost ]; then pid=$SP port=$SP_PORT; else pid=$GD port=$GD_PORT; fi
    threads "$pid" >"$WORK/before"
    timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" \
      dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/q" -c 8 -q 500 -t 2 -l "$DURATION" -Q "$RATE" \
      >"$WORK/dnsperf.txt" 2>&1 || die "dnsperf failed against $s"
    threads "$pid" >"$WORK/after"
    q=$(awk -F': *' '/Queries completed/ { split($2, a, " "); print a[1] }' "$WORK/dnsperf.txt")
    echo "run $run $s: $q queries"
    # Threads are matched by name and position (none start or end during a run).
    paste -d' ' "$WORK/before" "$WORK/after" | awk -v q="$q" -v hz="$(getconf CLK_TCK)" '
      { u = $7 - $2; s = $8 - $3; v = $9 - $4; n = $10 - $5
        if (u + s + v + n == 0) next
        printf "  %-20s user %4d sys %4d ticks  %6.2f µs/query  wake-ups/query %.2f (involuntary %d)\n",
          $1, u, s, (u + s) / hz * 1e6 / q, v / q, n }'
  done
done
