# The client view of bench/failover.sh (VIEW=client; sourced by it, not run alone).
#
# What a client feels: the time from an ingress fault to the last answer that still holds
# the dead address, asked through a corporate resolver (Unbound, BIND) that caches by TTL,
# and straight from signpost (server-side detection). At the default monitor (interval
# 10 s, timeout 5 s, tolerated_failures 3, rise 2) and TTL (30 s), two signposts watch the
# same ingresses:
#   on   fast confirmation and health-aware TTL (retry_interval 1 s, ttl_unstable 5)
#   off  both turned off (retry_interval = interval = 10 s, ttl_unstable = ttl = 30)
# Each has its own Unbound and its own BIND on loopback (stub / forward zone to it).
# Three profiles, multivalue (every answer holds every healthy address, so a cached
# answer always holds the address about to die), each with one faulty ingress and one
# healthy one shared by all:
#   refused  the ingress process is ended          (127.0.0.11)
#   hung     the ingress process is stopped (STOP) (127.0.0.12)
#   503      the ingress answers HTTP 503          (127.0.0.13)
# One trial injects the three faults at the same instant, at a random phase (1 to 31 s
# after the resolvers were restarted with empty caches and the watchers began; PHASES,
# below, spreads the trials' phases evenly over that range): random
# against the 10 s probe schedules and the 30 s TTL of the answers resolvers cached.
# Watchers ask every $WATCH_MS ms for $WINDOW s after the fault.
#
# Before each trial both signposts are stable (every profile answers with its full ttl:
# none recovered or started less than one ttl ago), so the answer a resolver holds at
# the fault carries ttl 30, as with a long-healthy site; SETTLE=0 skips that wait (the
# method of the first runs in bench/RESULTS.md, which favours "on").
# Env: RUNS (5) WINDOW (85) WATCH_MS (100) SETTLE (1) PHASES (stratified) SIGNPOST_BIN KEEP=1
# Output: medians per fault × view, on / off and the ratio; raw trials.

# Resolvers are asked with RD set (signpost ignores it).
export DNSQ_RD=1
defaults RUNS=5 WINDOW=85 WATCH_MS=100
FAULTS="refused hung 503"
MODES="on off"
VIEWS="direct unbound bind"
INGRESS_ADDRS=(127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14)
GOOD_ADDR=127.0.0.14

bench_start failover-client python3:python3 unbound:unbound named:bind9
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
NAMED=$(command -v named || echo /usr/sbin/named)
# The ingresses may use every CPU: nothing here measures CPU.
INGRESS_CPUS=0-$(($(nproc) - 1))

INGRESS_PORT=$(free_port "${INGRESS_ADDRS[@]}")
start_ingresses "$INGRESS_CPUS"
log "ingresses on ${INGRESS_ADDRS[*]} port $INGRESS_PORT"

fault_index() {
  case $1 in refused) echo 0 ;; hung) echo 1 ;; 503) echo 2 ;; esac
}

# $1 = dir, $2 = DNS port, $3 = retry_interval, $4 = ttl_unstable, $5 = admin port.
write_client_config() {
  local dir=$1 port=$2 retry=$3 short=$4 admin=$5 f i
  # The default monitor, with fast confirmation at $retry.
  start_signpost_config "$dir" "$port" 1 "$admin"
  cat >>"$dir/signpost.toml" <<EOF
interval = "10s"
timeout = "5s"
tolerated_failures = 3
rise = 2
retry_interval = "$retry"
EOF
  for f in $FAULTS; do
    i=$(fault_index "$f")
    cat >>"$dir/signpost.toml" <<EOF

[profiles."$f.bench.example"]
method = "multivalue"
ttl = 30
ttl_unstable = $short
monitor = "ingress"

[[profiles."$f.bench.example".endpoints]]
name = "faulty"
address = "${INGRESS_ADDRS[$i]}"

[[profiles."$f.bench.example".endpoints]]
name = "healthy"
address = "$GOOD_ADDR"
EOF
  done
}

declare -A SP_PORT SP_PID RES_PORT RES_PID ADMIN_PORT
for m in $MODES; do
  SP_PORT[$m]=$(free_port 127.0.0.1)
  ADMIN_PORT[$m]=$(free_port 127.0.0.1)
  case $m in
    on) write_client_config "$WORK/sp-$m" "${SP_PORT[$m]}" 1s 5 "${ADMIN_PORT[$m]}" ;;
    off) write_client_config "$WORK/sp-$m" "${SP_PORT[$m]}" 10s 30 "${ADMIN_PORT[$m]}" ;;
  esac
  spawn pid "$WORK/sp-$m.log" "$SIGNPOST_BIN" --log-level info serve --config "$WORK/sp-$m/signpost.toml"
  SP_PID[$m]=$pid
done

# $1 = mode: (re)starts that mode's Unbound and BIND with empty caches.
start_resolvers() {
  local m=$1 d port
  for v in unbound bind; do
    if [ -n "${RES_PID[$m-$v]:-}" ]; then
      kill -TERM "${RES_PID[$m-$v]}" 2>/dev/null || true
      wait "${RES_PID[$m-$v]}" 2>/dev/null || true
    fi
    d="$WORK/$v-$m"
    mkdir -p "$d"
    port=${RES_PORT[$m-$v]:-$(free_port 127.0.0.1)}
    RES_PORT[$m-$v]=$port
    case $v in
      unbound)
        sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$d|g" -e "s|@ZONE@|bench.example|g" \
          -e "s|@STUB@|127.0.0.1@${SP_PORT[$m]}|g" "$LIB/unbound-stub.conf.in" >"$d/unbound.conf"
        spawn pid "$d/stderr.log" "$UNBOUND" -d -c "$d/unbound.conf"
        ;;
      bind)
        cat >"$d/named.conf" <<EOF
options {
    directory "$d";
    pid-file "$d/named.pid";
    session-keyfile "$d/session.key";
    managed-keys-directory "$d";
    listen-on port $port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion yes;
    allow-recursion { 127.0.0.0/8; };
    dnssec-validation no;
    stale-answer-enable no;
    stale-cache-enable no;
    notify no;
};
controls { };
zone "bench.example" { type forward; forward only; forwarders { 127.0.0.1 port ${SP_PORT[$m]}; }; };
EOF
        spawn pid "$d/stderr.log" "$NAMED" -g -4 -n 1 -c "$d/named.conf"
        ;;
    esac
    RES_PID[$m-$v]=$pid
  done
  for v in unbound bind; do
    wait_dns 127.0.0.1 "${RES_PORT[$m-$v]}" refused.bench.example 20 ||
      { tail -n 20 "$WORK/$v-$m/"*.log >&2; die "$v ($m) did not answer"; }
  done
}

# The address each view of each mode answers from: "ip port".
endpoint_of() {
  local m=$1 v=$2
  case $v in
    direct) echo "127.0.0.1 ${SP_PORT[$m]}" ;;
    *) echo "127.0.0.1 ${RES_PORT[$m-$v]}" ;;
  esac
}

# Whether signpost $1 answers every profile with its full ttl (none unstable), from its
# status document.
stable() {
  python3 - "${ADMIN_PORT[$1]}" <<'PY'
import json, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/api/v1/status"
doc = json.load(urllib.request.urlopen(url, timeout=2))
sys.exit(0 if all(p["ttl_now"] == p["ttl"] for p in doc["profiles"]) else 1)
PY
}

# Waits until both signposts answer every profile with both addresses again and, unless
# SETTLE=0, with their full ttl: a profile that recovered (or started) less than one ttl
# ago answers with ttl_unstable, and a resolver that cached such an answer before the
# fault would make "on" look better than a long-stable profile does (bounded).
wait_recovered() {
  local m f deadline=$((SECONDS + 150)) addr
  for m in $MODES; do
    for f in $FAULTS; do
      addr=${INGRESS_ADDRS[$(fault_index "$f")]}
      until python3 "$LIB/dnsq.py" ask 127.0.0.1 "${SP_PORT[$m]}" "$f.bench.example" | grep -qw "$addr"; do
        [ $SECONDS -lt $deadline ] || die "signpost ($m) did not answer $f with $addr again within 150 s"
        sleep 0.5
      done
    done
    if [ "${SETTLE:-1}" = 1 ]; then
      until stable "$m"; do
        [ $SECONDS -lt $deadline ] || die "signpost ($m) not stable within 150 s"
        sleep 0.5
      done
    fi
  done
}

inject() { inject_fault "$1" "$(fault_index "$1")"; }
repair() { repair_fault "$1" "$(fault_index "$1")"; }

for m in $MODES; do
  wait_dns 127.0.0.1 "${SP_PORT[$m]}" refused.bench.example 20 || die "signpost ($m) did not answer"
done

RAW="$WORK/client.tsv"
: >"$RAW"
# Fault phases, 1 to 31 s after the resolvers start: PHASES=stratified (default) gives
# trial k of RUNS a random point of the k-th equal slice of that range, in shuffled
# order, so the trials cover the 30 s TTL evenly and medians of a few trials do not hang
# on where the draws fell; PHASES=random draws each uniformly (the first runs' method).
mapfile -t PHASE_LIST < <(awk -v n="$RUNS" -v mode="${PHASES:-stratified}" -v seed="$RANDOM" 'BEGIN {
  srand(seed)
  for (k = 0; k < n; k++) printf "%.2f\n", 1 + 30 * (mode == "random" ? rand() : (k + rand()) / n)
}' | shuf)
for run in $(seq 1 "$RUNS"); do
  wait_recovered
  for m in $MODES; do
    start_resolvers "$m"
  done
  phase=${PHASE_LIST[$((run - 1))]}
  declare -A WATCHER=()
  for m in $MODES; do
    for v in $VIEWS; do
      for f in $FAULTS; do
        rm -f "$WORK/watch-$m-$v-$f"
        # shellcheck disable=SC2046
        spawn w "$WORK/watch-$m-$v-$f.log" python3 "$LIB/dnsq.py" watch $(endpoint_of "$m" "$v") \
          "$f.bench.example" "$(awk -v p="$phase" -v w="$WINDOW" 'BEGIN { print p + w }')" \
          "$WATCH_MS" "$WORK/watch-$m-$v-$f"
        WATCHER[$m-$v-$f]=$w
      done
    done
  done
  sleep "$phase"
  T0=$(date +%s%N)
  for f in $FAULTS; do
    inject "$f"
  done
  log "run $run/$RUNS: faults injected ${phase}s after the resolvers started"
  for m in $MODES; do
    for v in $VIEWS; do
      for f in $FAULTS; do
        wait "${WATCHER[$m-$v-$f]}" || true
        addr=${INGRESS_ADDRS[$(fault_index "$f")]}
        r=$(python3 "$LIB/dnsq.py" summarize "$WORK/watch-$m-$v-$f" "$T0" "$addr" || true)
        printf '%s\t%s\t%s\t%s\t%s\n' "$run" "$f" "$m" "$v" "$r" >>"$RAW"
        log "  $f $m $v: $r"
      done
    done
  done
  for f in $FAULTS; do
    repair "$f"
  done
done

echo
echo "failover, client view — $(date -u +%Y-%m-%dT%H:%MZ) — $(machine_line)"
echo "seconds from the fault to the last answer holding the dead address; median of $RUNS;"
echo "window ${WINDOW}s, asked every ${WATCH_MS}ms; default monitor and ttl 30;"
echo "on = retry_interval 1s + ttl_unstable 5, off = retry_interval 10s + ttl_unstable 30"
python3 - "$RAW" "$FAULTS" "$VIEWS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
faults, views = sys.argv[2].split(), sys.argv[3].split()
def med(f, m, v):
    vals = [r[4] for r in rows if r[1] == f and r[2] == m and r[3] == v]
    nums = [float(x) for x in vals if x.replace(".", "", 1).isdigit()]
    if not vals or len(nums) < len(vals):
        return None, ",".join(vals)
    return statistics.median(nums), ",".join(vals)
hdr = ["fault", "view", "on", "off", "on/off"]
table = [hdr]
for f in faults:
    for v in views:
        on, von = med(f, "on", v)
        off, voff = med(f, "off", v)
        table.append([
            f, v,
            f"{on:.1f}" if on is not None else f"never ({von})",
            f"{off:.1f}" if off is not None else f"never ({voff})",
            f"{on / off:.2f}" if on is not None and off else "-",
        ])
w = [max(len(r[i]) for r in table) for i in range(len(hdr))]
for r in table:
    print("  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(r)))
print()
print("goal: client failover (unbound, bind) at default settings at most half of off (on/off <= 0.50)")
print("trials:", "; ".join(f"{r[1]}/{r[2]}/{r[3]}#{r[0]}={r[4]}" for r in rows))
EOF
