#!/usr/bin/env bash
# signpost vs gdnsd vs Knot on one machine, one core each (issue 6).
#
# Starts three local HTTP ingresses (127.0.0.11-13), then signpost (weighted profile with
# an http monitor), gdnsd (weighted plugin + http_status, same probe settings) and Knot
# (static records) on their own loopback ports with the same zone. Every server is pinned
# to CPU $SERVER_CPU, the load clients and the ingresses to CPU $CLIENT_CPU. For two
# names, the weighted "app.bench.example" and the static "static.bench.example", it
# measures:
#   (a) maximum QPS over $DURATION s, by default with dnsblast (bench/dnsblast.rs: one
#       thread, sendmmsg/recvmmsg over 8 sockets, 128 queries in flight), which sends more
#       than one dnsperf process can from one core; MAXQPS_CLIENT=dnsperf uses
#       dnsperf -c 8 -q 500 instead. Shown with it: the server's CPU use over the steady
#       part of the run (utime+stime of every thread / wall time, % of one core; near
#       100 % the server is the limit, well below it waited for the client), the
#       client's CPU use, and for dnsblast the share of time it was not polling empty
#       sockets,
#   (b) server CPU µs per answered query at a fixed $RATE qps (utime+stime of every
#       thread from /proc/PID/stat, before and after),
#   (c) average and p99 latency at that fixed rate (dnsperf -v, one line per query).
# $RUNS alternating rounds (signpost, gdnsd, knot, ...); the table shows medians and the
# ratios signpost/gdnsd and signpost/Knot.
#
# Usage: bench/compare.sh              # DURATION=10 RUNS=3 RATE=30000
#        QUICK=1 bench/compare.sh      # smoke test: DURATION=2 RUNS=1 RATE=10000
# Env:   DURATION RUNS RATE SERVER_CPU CLIENT_CPU SIGNPOST_BIN (skip the build)
#        MAXQPS_CLIENT=dnsblast|dnsperf DNSBLAST_BIN (skip its build)
#        BLAST_OUTSTANDING=128 BLAST_SOCKETS=8 BLAST_BATCH=32 (dnsblast's settings)
#        SERVERS="signpost gdnsd knot" NAMES="app static" KEEP=1 (keep $WORK)
#        OUT=file.tsv (raw per-run figures)
# Needs root for the first run (apt-get install dnsperf gdnsd knot).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

quick_defaults DURATION=2 RUNS=1 RATE=10000
defaults DURATION=10 RUNS=3 RATE=30000 SERVERS="signpost gdnsd knot" NAMES="app static" \
  MAXQPS_CLIENT=dnsblast BLAST_OUTSTANDING=128 BLAST_SOCKETS=8 BLAST_BATCH=32

case $MAXQPS_CLIENT in
  dnsblast | dnsperf) ;;
  *) echo "MAXQPS_CLIENT must be dnsblast or dnsperf" >&2; exit 2 ;;
esac

bench_start compare dnsperf:dnsperf gdnsd:gdnsd knotd:knot taskset:util-linux python3:python3
[ "$MAXQPS_CLIENT" = dnsblast ] && build_dnsblast

INGRESS_PORT=$(free_port "${INGRESS_ADDRS[@]}")
start_ingresses "$CLIENT_CPU"
log "ingresses on ${INGRESS_ADDRS[*]} port $INGRESS_PORT"

declare -A PORT PID
for s in $SERVERS; do
  PORT[$s]=$(free_port 127.0.0.1)
done

for s in $SERVERS; do
  case $s in
    signpost)
      write_signpost_config "$WORK/signpost" "${PORT[$s]}" 2s 1s 1
      spawn pid "$WORK/signpost.log" taskset -c "$SERVER_CPU" \
        "$SIGNPOST_BIN" --log-level warn serve --config "$WORK/signpost/signpost.toml"
      ;;
    gdnsd)
      write_gdnsd_config "$WORK/gdnsd" "${PORT[$s]}" 2 1
      spawn pid "$WORK/gdnsd.log" taskset -c "$SERVER_CPU" gdnsd -c "$WORK/gdnsd" start
      ;;
    knot)
      write_knot_config "$WORK/knot" "${PORT[$s]}"
      spawn pid "$WORK/knot.log" taskset -c "$SERVER_CPU" knotd -c "$WORK/knot/knot.conf"
      ;;
    *) die "unknown server $s (signpost, gdnsd, knot)" ;;
  esac
  PID[$s]=$pid
done
for s in $SERVERS; do
  if ! wait_dns 127.0.0.1 "${PORT[$s]}" app.bench.example 20; then
    tail -20 "$WORK/$s.log" >&2
    die "$s did not answer on 127.0.0.1:${PORT[$s]}"
  fi
  log "$s (pid ${PID[$s]}) answers on 127.0.0.1:${PORT[$s]}"
done
# gdnsd and signpost probe every 2 s; let a few rounds pass so both run in steady state.
sleep 3

for n in $NAMES; do
  echo "$n.bench.example A" >"$WORK/q-$n"
done

RAW=${OUT:-$WORK/raw.tsv}
printf 'run\tserver\tname\tmetric\tvalue\n' >"$RAW"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }

# dnsperf's summary line value: $1 = file, $2 = label.
stat_of() {
  awk -v label="$2" 'index($0, label) { sub(/^.*: */, ""); split($0, a, " "); print a[1]; exit }' "$1"
}

# The rcode summary of a run, to catch a server answering SERVFAIL / REFUSED fast.
check_rcodes() {
  local f=$1 who=$2
  if ! grep -q 'Response codes: *NOERROR [0-9]* (100.00%)' "$f"; then
    log "warning: $who: $(grep 'Response codes' "$f" || echo 'no response codes')"
  fi
}

# A value from dnsblast's "sent=... answered=... qps=..." line: $1 = file, $2 = key.
blast_of() {
  grep '^sent=' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2; exit }'
}

TICK=$(getconf CLK_TCK)
TIMEFORMAT='%R %U %S'
# Runs "$@" (the load client), its stdout and stderr to $1. Sets RUN_WALL (seconds) and
# RUN_CLIENT_CPU (the client's user+system seconds, from the shell's `time`).
timed_client() {
  local f=$1 t rc=0 u sy
  shift
  t=$( { time "$@" >"$f" 2>&1; } 2>&1) || rc=$?
  read -r RUN_WALL u sy <<<"$t"
  RUN_CLIENT_CPU=$(awk -v u="$u" -v s="$sy" 'BEGIN { print u + s }')
  return $rc
}

# Samples process $1's CPU ticks and the time 0.5 s after the start and 0.5 s before the
# end of a $DURATION s load run, into file $2: the steady part of the run, without the
# client's start-up or its wait for the last answers.
sample_cpu() {
  local pid=$1 out=$2
  sleep 0.5
  echo "$(cpu_ticks "$pid") $(date +%s.%N)" >"$out"
  sleep "$(awk -v d="$DURATION" 'BEGIN { print (d > 1.5 ? d - 1 : 0.5) }')"
  echo "$(cpu_ticks "$pid") $(date +%s.%N)" >>"$out"
}

measure() {
  local run=$1 s=$2 n=$3 port=${PORT[$2]} pid=${PID[$2]} f before after sampler
  # (a) maximum QPS, with the server's CPU over the run.
  f="$WORK/max-$run-$s-$n.txt"
  sample_cpu "$pid" "$f.cpu" &
  sampler=$!
  if [ "$MAXQPS_CLIENT" = dnsblast ]; then
    timed_client "$f" timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" \
      "$DNSBLAST_BIN" --server "127.0.0.1:$port" --name "$n.bench.example" --type A \
      --duration "$DURATION" --outstanding "$BLAST_OUTSTANDING" --sockets "$BLAST_SOCKETS" \
      --batch "$BLAST_BATCH" --timeout 2 ||
      die "dnsblast failed against $s: $(tail -3 "$f")"
    local answered noerror bad
    answered=$(blast_of "$f" answered)
    noerror=$(blast_of "$f" rcode_noerror)
    bad=$(($(blast_of "$f" mismatched) + $(blast_of "$f" unexpected)))
    [ "$answered" = "$noerror" ] && [ "$bad" = 0 ] && [ "$answered" -gt 0 ] ||
      log "warning: $s $n max: answered $answered, NOERROR $noerror, mismatched/unexpected $bad"
    record "$run" "$s" "$n" max_qps "$(blast_of "$f" qps)"
    record "$run" "$s" "$n" max_lost "$(blast_of "$f" lost)"
    record "$run" "$s" "$n" max_client_busy_pct \
      "$(awk -v b="$(blast_of "$f" client_busy)" 'BEGIN { printf "%.1f", b * 100 }')"
  else
    timed_client "$f" timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" \
      dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/q-$n" -c 8 -q 500 -t 2 -l "$DURATION" ||
      die "dnsperf failed against $s: $(tail -3 "$f")"
    check_rcodes "$f" "$s $n max"
    record "$run" "$s" "$n" max_qps "$(stat_of "$f" 'Queries per second')"
    record "$run" "$s" "$n" max_lost "$(stat_of "$f" 'Queries lost')"
  fi
  wait "$sampler" || die "CPU sampling of $s failed"
  # The server's CPU as % of one core over the steady part of the run; the client's over
  # its whole run.
  record "$run" "$s" "$n" max_server_cpu_pct "$(tr '\n' ' ' <"$f.cpu" |
    awk -v t="$TICK" '{ printf "%.1f", ($4 + $5 - $1 - $2) / t / ($6 - $3) * 100 }')"
  record "$run" "$s" "$n" max_client_cpu_pct \
    "$(awk -v c="$RUN_CLIENT_CPU" -v w="$RUN_WALL" 'BEGIN { printf "%.1f", c / w * 100 }')"

  # (b) CPU per query and (c) latency, at a fixed rate.
  f="$WORK/fixed-$run-$s-$n.txt"
  before=$(cpu_ticks "$pid")
  timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" \
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/q-$n" -c 8 -q 500 -t 2 -l "$DURATION" \
    -Q "$RATE" -v >"$f" 2>&1 || die "dnsperf failed against $s: $(tail -3 "$f")"
  after=$(cpu_ticks "$pid")
  check_rcodes "$f" "$s $n fixed"
  local completed
  completed=$(stat_of "$f" 'Queries completed')
  record "$run" "$s" "$n" fixed_qps "$(stat_of "$f" 'Queries per second')"
  local per_query='function f(d) { return q ? d / t * 1e6 / q : 0 }
    { u = $3 - $1; s = $4 - $2; printf "%.3f %.3f %.3f\n", f(u + s), f(u), f(s) }'
  local cpu user sys
  read -r cpu user sys < <(echo "$before $after" | awk -v t="$TICK" -v q="$completed" "$per_query")
  record "$run" "$s" "$n" cpu_us_per_query "$cpu"
  record "$run" "$s" "$n" user_us_per_query "$user"
  record "$run" "$s" "$n" sys_us_per_query "$sys"
  # One "> NOERROR name A 0.000084" line per answered query: average and p99 in µs.
  grep '^> ' "$f" | awk '{ print $NF * 1e6 }' | sort -n >"$f.lat"
  record "$run" "$s" "$n" avg_latency_us \
    "$(awk '{ s += $1 } END { printf "%.1f", NR ? s / NR : 0 }' "$f.lat")"
  record "$run" "$s" "$n" p99_latency_us \
    "$(awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.1f", NR ? a[i] : 0 }' "$f.lat")"
  rm -f "$f.lat"
}

log "measuring: DURATION=${DURATION}s RUNS=$RUNS RATE=${RATE}qps servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU, max QPS with $MAXQPS_CLIENT"
for run in $(seq 1 "$RUNS"); do
  for s in $SERVERS; do
    for n in $NAMES; do
      kill -0 "${PID[$s]}" 2>/dev/null || die "$s exited; see its log"
      log "run $run/$RUNS: $s $n"
      measure "$run" "$s" "$n"
    done
  done
done

echo
echo "signpost vs gdnsd vs Knot — $(date -u +%Y-%m-%dT%H:%MZ) — $(machine_line)"
echo "DURATION=${DURATION}s RUNS=$RUNS RATE=$RATE; medians of $RUNS run(s); servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU"
if [ "$MAXQPS_CLIENT" = dnsblast ]; then
  echo "max QPS: dnsblast --outstanding $BLAST_OUTSTANDING --sockets $BLAST_SOCKETS --batch $BLAST_BATCH; fixed rate: dnsperf -Q $RATE"
else
  echo "max QPS: dnsperf -c 8 -q 500; fixed rate: dnsperf -Q $RATE"
fi
echo "server CPU % = its CPU time / wall time in the max-QPS run (100 = its core full: the server is the limit)"
[ "$MAXQPS_CLIENT" = dnsblast ] &&
  echo "client busy % = dnsblast's time not spent polling empty sockets (it busy-polls, so its CPU % is ~100)"
echo "app = weighted profile (signpost), weighted+http_status (gdnsd), static A (Knot); static = a static A record everywhere"
python3 - "$RAW" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
vals = {}
for r in rows:
    vals.setdefault((r["server"], r["name"], r["metric"]), []).append(float(r["value"]))
servers = [s for s in ("signpost", "gdnsd", "knot") if any(k[0] == s for k in vals)]
names = [n for n in ("app", "static") if any(k[1] == n for k in vals)]
metrics = [
    ("max_qps", "max QPS", "{:.0f}"),
    ("max_server_cpu_pct", "  server CPU % (max run)", "{:.0f}"),
    ("max_client_cpu_pct", "  client CPU % (max run)", "{:.0f}"),
    ("max_client_busy_pct", "  client busy % (max run)", "{:.0f}"),
    ("cpu_us_per_query", "CPU µs/query @fixed", "{:.2f}"),
    ("user_us_per_query", "  of which user", "{:.2f}"),
    ("sys_us_per_query", "  of which system", "{:.2f}"),
    ("avg_latency_us", "avg latency µs", "{:.1f}"),
    ("p99_latency_us", "p99 latency µs", "{:.1f}"),
    ("max_lost", "lost (max run)", "{:.0f}"),
]
def med(s, n, m):
    v = vals.get((s, n, m))
    return statistics.median(v) if v else None
hdr = ["name", "metric"] + servers
if "signpost" in servers:
    hdr += ["sp/" + s for s in servers if s != "signpost"]
table = [hdr]
for n in names:
    for key, label, fmt in metrics:
        if all(med(s, n, key) is None for s in servers):
            continue
        row = [n, label]
        for s in servers:
            v = med(s, n, key)
            row.append("-" if v is None else fmt.format(v))
        if "signpost" in servers:
            a = med("signpost", n, key)
            for s in servers:
                if s == "signpost":
                    continue
                b = med(s, n, key)
                no_ratio = key == "max_lost" or key.endswith("_pct")
                row.append("-" if no_ratio or not a or not b else f"{a / b:.2f}")
        table.append(row)
widths = [max(len(r[i]) for r in table) for i in range(len(hdr))]
for r in table:
    print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
print()
print("targets: app CPU/query sp/gdnsd <= 1.00, app max QPS sp/gdnsd >= 1.00, static CPU/query sp/knot <= 1.10")
EOF
[ -n "${OUT:-}" ] && echo "raw figures: $OUT"
exit 0
