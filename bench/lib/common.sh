# Shared pieces of the benchmark scripts (sourced, not run). Everything here talks to
# loopback addresses only, and every process started is recorded in STARTED_PIDS so the
# caller's EXIT trap ends it.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
LIB="$BENCH_DIR/lib"
STARTED_PIDS=()

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Ends every process this script started (TERM, then KILL after a grace period), and
# removes the work directory unless KEEP=1.
cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local alive=0
    for pid in "${STARTED_PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pid in "${STARTED_PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
    if [ "${KEEP:-0}" = 1 ]; then
      log "kept $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
}

# Starts "$@" in the background (its output to $LOGFILE), records its PID in STARTED_PIDS
# and in the variable named by $1.
spawn() {
  local var=$1 logfile=$2
  shift 2
  "$@" >"$logfile" 2>&1 &
  local spawned=$!
  STARTED_PIDS+=("$spawned")
  printf -v "$var" '%s' "$spawned"
}

# Installs the Debian packages that provide the named commands, when missing. Package
# maintainer scripts are kept from starting daemons (policy-rc.d answering 101), and any
# gdnsd/knotd that appeared during the install anyway is stopped and disabled, so nothing
# is left answering on port 53.
ensure_packages() {
  local -a need=()
  local cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing packages ${need[*]}; run as root or install them with apt-get"
  log "installing ${need[*]}"
  local before_daemons
  before_daemons=$(pgrep -x 'gdnsd|knotd' || true)
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# signpost bench: no daemon starts during package installs\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
        --no-install-recommends "${need[@]}"
  } >"${WORK:-/tmp}/apt.log" 2>&1 || rc=$?
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ "$rc" != 0 ]; then
    tail -20 "${WORK:-/tmp}/apt.log" >&2
    die "apt-get install ${need[*]} failed"
  fi
  local svc pid
  for svc in gdnsd knot; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      systemctl stop "$svc" >/dev/null 2>&1 || true
      systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
  done
  for pid in $(pgrep -x 'gdnsd|knotd' || true); do
    if ! grep -qx "$pid" <<<"$before_daemons"; then
      log "stopping daemon $pid started by the package install"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
}

# defaults VAR=VALUE...: sets each VAR that is unset or empty (the scripts' settings,
# which the environment overrides).
defaults() {
  local kv var
  for kv in "$@"; do
    var=${kv%%=*}
    [ -n "${!var:-}" ] || printf -v "$var" '%s' "${kv#*=}"
  done
}

# quick_defaults VAR=VALUE...: defaults, for a smoke run (QUICK=1) only.
quick_defaults() {
  [ "${QUICK:-0}" = 1 ] || return 0
  defaults "$@"
}

# The start every bench script shares: CPUs (SERVER_CPU for the servers, default 0;
# CLIENT_CPU for the load and the ingresses, default 1), the work directory
# /tmp/signpost-$1.XXXXXX (removed on exit with every process started, unless KEEP=1),
# the Debian packages ensure_packages takes ($2...), and the release build of signpost.
bench_start() {
  local name=$1
  shift
  SERVER_CPU=${SERVER_CPU:-0}
  CLIENT_CPU=${CLIENT_CPU:-1}
  INGRESS_CPUS=$CLIENT_CPU
  WORK=$(mktemp -d "/tmp/signpost-$name.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  ensure_packages "$@"
  build_signpost
}

# Builds a release binary (cargo build ARGS: $3...) unless the variable named $1 already
# names one, and sets that variable to target/release/$2.
build_release() {
  local var=$1 path=$2 target_dir
  shift 2
  if [ -n "${!var:-}" ]; then
    [ -x "${!var}" ] || die "$var=${!var} is not executable"
    return
  fi
  log "building $path (release)"
  (cd "$ROOT" && cargo build --release --locked "$@" -q) || die "cargo build failed"
  target_dir=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  printf -v "$var" '%s' "$target_dir/release/$path"
  [ -x "${!var}" ] || die "no binary at ${!var}"
}

# Sets SIGNPOST_BIN (built in release mode unless given).
build_signpost() { build_release SIGNPOST_BIN signpost --bin signpost; }

# Sets DNSBLAST_BIN: the load client bench/dnsblast.rs, a cargo example (built in release
# mode unless given).
build_dnsblast() { build_release DNSBLAST_BIN examples/dnsblast --example dnsblast; }

# Prints one TCP+UDP port that is free on every given loopback address.
free_port() {
  python3 - "$@" <<'EOF'
import socket, sys, random
addrs = sys.argv[1:] or ["127.0.0.1"]
for _ in range(200):
    port = random.randrange(20000, 60000)
    socks = []
    try:
        for a in addrs:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, kind)
                socks.append(s)
                s.bind((a, port))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(port)
    sys.exit(0)
sys.exit("no free port")
EOF
}

# Ingress addresses: one per endpoint, each its own loopback address so gdnsd's
# http_status (one port per service type) probes them all the same way.
INGRESS_ADDRS=(127.0.0.11 127.0.0.12 127.0.0.13)
INGRESS_WEIGHTS=(50 30 20)

# Starts one ingress per address on $INGRESS_PORT, pinned to $1 (CPU list).
# INGRESS_PIDS[i] and the mode files $WORK/ingress/<addr>.mode are set.
start_ingresses() {
  local cpus=$1 i addr pid
  mkdir -p "$WORK/ingress"
  INGRESS_PIDS=()
  for i in "${!INGRESS_ADDRS[@]}"; do
    addr=${INGRESS_ADDRS[$i]}
    echo ok >"$WORK/ingress/$addr.mode"
    spawn pid "$WORK/ingress/$addr.log" taskset -c "$cpus" \
      python3 "$LIB/ingress.py" "$addr" "$INGRESS_PORT" "$WORK/ingress/$addr.mode"
    INGRESS_PIDS+=("$pid")
  done
  for addr in "${INGRESS_ADDRS[@]}"; do
    wait_http "$addr" "$INGRESS_PORT" || die "ingress $addr:$INGRESS_PORT did not start"
  done
}

# Ingress $2 (index) fails as $1 says: refused (its process ends), hung (its process is
# stopped), 503 (it answers HTTP 503).
inject_fault() {
  local i=$2
  case $1 in
    refused) kill -TERM "${INGRESS_PIDS[$i]}"; wait "${INGRESS_PIDS[$i]}" 2>/dev/null || true ;;
    hung) kill -STOP "${INGRESS_PIDS[$i]}" ;;
    503) echo 503 >"$WORK/ingress/${INGRESS_ADDRS[$i]}.mode" ;;
  esac
}

# Ends fault $1 of ingress $2 (index).
repair_fault() {
  local i=$2
  case $1 in
    refused) restart_ingress "$i" ;;
    hung) kill -CONT "${INGRESS_PIDS[$i]}" ;;
    503) echo ok >"$WORK/ingress/${INGRESS_ADDRS[$i]}.mode" ;;
  esac
}

# Restarts ingress $1 (index) after it was ended.
restart_ingress() {
  local i=$1 addr=${INGRESS_ADDRS[$1]} pid
  spawn pid "$WORK/ingress/$addr.log" taskset -c "${INGRESS_CPUS:-1}" \
    python3 "$LIB/ingress.py" "$addr" "$INGRESS_PORT" "$WORK/ingress/$addr.mode"
  INGRESS_PIDS[$i]=$pid
  wait_http "$addr" "$INGRESS_PORT" || die "ingress $addr did not restart"
}

wait_http() {
  python3 - "$1" "$2" <<'EOF'
import sys, time, urllib.request
url = f"http://{sys.argv[1]}:{sys.argv[2]}/"
end = time.monotonic() + 10
while time.monotonic() < end:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
EOF
}

# The zone every server serves, in RFC 1035 form: lib/bench.example.zone (which
# bench/fixture.rs serves in process too), then at "app" what $2 says: a profile (none:
# signpost), "DYNA" (gdnsd), or "A" (a static A record: Knot).
write_zone() {
  local file=$1 app=$2
  cp "$LIB/bench.example.zone" "$file"
  case $app in
    DYNA) echo "app 30 DYNA weighted!app" >>"$file" ;;
    A) echo "app 30 IN A ${INGRESS_ADDRS[0]}" >>"$file" ;;
    none) ;;
  esac
}

# The start of every signpost config the benches write, in $1/signpost.toml: the zone
# (no profile), [dns] on 127.0.0.1:$2 with $3 UDP sockets, the admin API on port $4
# (default: a free one), zones and state in $1, and the head of [monitors.ingress] (HTTP
# to the ingresses; the caller appends its timings, then its profiles).
start_signpost_config() {
  local dir=$1 port=$2 sockets=$3 admin=${4:-$(free_port 127.0.0.1)}
  mkdir -p "$dir/zones" "$dir/state"
  write_zone "$dir/zones/bench.example.zone" none
  cat >"$dir/signpost.toml" <<EOF
[dns]
listen = ["127.0.0.1:$port"]
udp_sockets = $sockets

[admin]
listen = "127.0.0.1:$admin"

[zones]
dir = "$dir/zones"

[state]
dir = "$dir/state"

[monitors.ingress]
protocol = "http"
port = $INGRESS_PORT
path = "/"
EOF
}

# signpost's config: the weighted profile with an http monitor on the ingresses.
# $1 = dir, $2 = DNS port, $3 = monitor interval, $4 = timeout, $5 = udp_sockets.
write_signpost_config() {
  local dir=$1 port=$2 interval=$3 timeout=$4 sockets=$5 i
  start_signpost_config "$dir" "$port" "$sockets"
  cat >>"$dir/signpost.toml" <<EOF
interval = "$interval"
timeout = "$timeout"
tolerated_failures = 1      # down after 2 consecutive failures (gdnsd: down_thresh = 2)
rise = 2

[profiles."app.bench.example"]
method = "weighted"
ttl = 30
monitor = "ingress"
all_down = "serve_all"
EOF
  for i in "${!INGRESS_ADDRS[@]}"; do
    cat >>"$dir/signpost.toml" <<EOF

[[profiles."app.bench.example".endpoints]]
name = "e$i"
address = "${INGRESS_ADDRS[$i]}"
weight = ${INGRESS_WEIGHTS[$i]}
EOF
  done
}

# gdnsd's config: weighted plugin, http_status monitor with the same probe settings.
# $1 = dir, $2 = DNS port, $3 = interval (integer seconds, >= 1), $4 = timeout (seconds).
write_gdnsd_config() {
  local dir=$1 port=$2 interval=$3 timeout=$4 i
  mkdir -p "$dir/zones" "$dir/run" "$dir/state"
  write_zone "$dir/zones/bench.example" DYNA
  {
    cat <<EOF
options => {
  listen => [ 127.0.0.1:$port ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => "$dir/run"
  state_dir => "$dir/state"
}
service_types => {
  ingress => {
    plugin => http_status
    port => $INGRESS_PORT
    url_path => "/"
    interval => $interval
    timeout => $timeout
    down_thresh => 2  # down after 2 failures ...
    ok_thresh => 1    # ... in a row (one success resets the count)
    up_thresh => 2    # signpost: rise = 2
  }
}
plugins => {
  weighted => {
    app => {
      service_types => ingress
      up_thresh => 0.01  # serve what is up; signpost: all_down = serve_all
EOF
    for i in "${!INGRESS_ADDRS[@]}"; do
      echo "      e$i = [ ${INGRESS_ADDRS[$i]}, ${INGRESS_WEIGHTS[$i]} ]"
    done
    cat <<EOF
    }
  }
}
EOF
  } >"$dir/config"
}

# Knot's config: the same zone with a static A record at "app".
write_knot_config() {
  local dir=$1 port=$2
  mkdir -p "$dir/zones" "$dir/run" "$dir/db"
  write_zone "$dir/zones/bench.example.zone" A
  cat >"$dir/knot.conf" <<EOF
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$dir/db"
template:
  - id: default
    storage: "$dir/zones"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: bench.example.
EOF
}

# Starts the ingresses, then signpost and gdnsd with compare.sh's weighted-name configs
# (one UDP thread each, pinned to $SERVER_CPU; the ingresses on $CLIENT_CPU), waits for
# both to answer and for a few probe rounds. Sets SP, GD (pids) and SP_PORT, GD_PORT.
# SIGNPOST_ENV: VAR=VALUE words for signpost's environment, e.g. a config override
# (SIGNPOST__DNS__RATE_LIMIT=1000000).
start_signpost_and_gdnsd() {
  INGRESS_PORT=$(free_port "${INGRESS_ADDRS[@]}")
  start_ingresses "$CLIENT_CPU"
  SP_PORT=$(free_port 127.0.0.1)
  GD_PORT=$(free_port 127.0.0.1)
  start_bench_signpost SP "$WORK/signpost" "$SP_PORT" "${SIGNPOST_ENV:-}"
  write_gdnsd_config "$WORK/gdnsd" "$GD_PORT" 2 1
  spawn GD "$WORK/gdnsd.log" taskset -c "$SERVER_CPU" gdnsd -c "$WORK/gdnsd" start
  wait_dns 127.0.0.1 "$SP_PORT" app.bench.example 20 || die "signpost did not answer"
  wait_dns 127.0.0.1 "$GD_PORT" app.bench.example 20 || die "gdnsd did not answer"
  sleep 3
}

# Starts signpost with the weighted-name config in dir $2 on DNS port $3 (pinned to
# $SERVER_CPU), with the VAR=VALUE words of $4 in its environment; sets the variable
# named $1 to its pid. The ingresses must be running.
start_bench_signpost() {
  local var=$1 dir=$2 port=$3 envs=$4
  write_signpost_config "$dir" "$port" 2s 1s 1
  # shellcheck disable=SC2086 # $envs is a list of words
  spawn "$var" "$dir.log" env $envs taskset -c "$SERVER_CPU" \
    "$SIGNPOST_BIN" --log-level warn serve --config "$dir/signpost.toml"
}

# Waits until $2:$3 answers A for $4 (NOERROR with an address), up to $5 seconds.
wait_dns() {
  python3 "$LIB/dnsq.py" wait "$1" "$2" "$3" "${4:-10}"
}

# utime and stime of every thread of process $1, in clock ticks: "user system".
cpu_ticks() {
  awk '{ print $14, $15 }' "/proc/$1/stat"
}

# VmRSS of process $1 in KiB.
rss_kib() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

machine_line() {
  printf '%s cores, %s, kernel %s' "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)"
}
