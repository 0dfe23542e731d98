#!/usr/bin/env bash
# CPU per query of two signpost builds against each other (A_BIN before, B_BIN after a
# change): both up at once with the same config (the weighted name of paired.sh, one UDP
# thread each on CPU $SERVER_CPU), alternating $DURATION s segments of dnsperf at $RATE
# qps, CPU from schedstat as in paired.sh. Prints each pair (A ns/q, B ns/q) and the
# median of the B/A ratios, after the idle CPU of both over 10 s.
#
# Usage: A_BIN=old/signpost B_BIN=new/signpost bench/ab.sh   # PAIRS=9 DURATION=4
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
defaults PAIRS=9 DURATION=4 RATE=30000 NAME=app
[ -x "${A_BIN:-}" ] && [ -x "${B_BIN:-}" ] || die "set A_BIN and B_BIN to two signpost binaries"
SIGNPOST_BIN=$A_BIN
bench_start ab dnsperf:dnsperf taskset:util-linux python3:python3
INGRESS_PORT=$(free_port "${INGRESS_ADDRS[@]}")
start_ingresses "$CLIENT_CPU"
A_PORT=$(free_port 127.0.0.1); B_PORT=$(free_port 127.0.0.1)
write_signpost_config "$WORK/a" "$A_PORT" 2s 1s 1
write_signpost_config "$WORK/b" "$B_PORT" 2s 1s 1
spawn AP "$WORK/a.log" taskset -c "$SERVER_CPU" "$A_BIN" --log-level warn serve --config "$WORK/a/signpost.toml"
spawn BP "$WORK/b.log" taskset -c "$SERVER_CPU" "$B_BIN" --log-level warn serve --config "$WORK/b/signpost.toml"
wait_dns 127.0.0.1 "$A_PORT" app.bench.example 20 || die "A did not answer"
wait_dns 127.0.0.1 "$B_PORT" app.bench.example 20 || die "B did not answer"
sleep 3
run_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
a0=$(run_ns $AP); b0=$(run_ns $BP); sleep 10; a1=$(run_ns $AP); b1=$(run_ns $BP)
log "idle CPU over 10 s: A $(( (a1-a0)/1000000 )) ms, B $(( (b1-b0)/1000000 )) ms"
echo "$NAME.bench.example A" >"$WORK/q"
segment() {
  local pid=$2 port=$3 before after f="$WORK/seg.txt" q
  before=$(run_ns "$pid")
  timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/q" -c 8 -q 500 -t 2 -l "$DURATION" -Q "$RATE" >"$f" 2>&1 || die "dnsperf failed"
  after=$(run_ns "$pid")
  q=$(awk '/Queries completed/ { print $3 }' "$f")
  awk -v a="$after" -v b="$before" -v q="$q" 'BEGIN { printf "%.0f %d\n", (a - b) / q, q }'
}
for p in $(seq 1 "$PAIRS"); do
  read -r a _ <<<"$(segment A $AP $A_PORT)"
  read -r b _ <<<"$(segment B $BP $B_PORT)"
  echo "$p $a $b" | tee -a "$WORK/pairs"
done
python3 -c "
import statistics,sys
r=[l.split() for l in open('$WORK/pairs')]
x=[float(b)/float(a) for _,a,b in r]
print('median B/A', round(statistics.median(x),3), 'A med', statistics.median(float(a) for _,a,_ in r), 'B med', statistics.median(float(b) for *_,b in r))"
