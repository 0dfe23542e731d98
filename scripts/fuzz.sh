#!/usr/bin/env bash
# Fuzzes signpost with cargo-fuzz (libFuzzer): the request path (DNS message in, answer
# out), the zone file reader and the config loader. The targets are in fuzz/, their checks
# in src/fuzzing/ (shared with tests/fuzz_replay.rs, which replays fuzz/corpus/ and
# fuzz/regressions/ in `cargo test`).
#
#   scripts/fuzz.sh [TARGET...]        run each target (default: request zone_file config)
#   scripts/fuzz.sh cmin [TARGET...]   merge what the runs found into fuzz/corpus/TARGET/, minimized
#   scripts/fuzz.sh seed               write the hand-made seed inputs into fuzz/corpus/
#
# Environment:
#   FUZZ_TIME=60       seconds per target (0: no time limit)
#   FUZZ_RUNS=0        executions per target (0: no limit); the run ends at either limit
#   FUZZ_JOBS=1        parallel workers per target (libFuzzer -fork); keep 1 on a shared machine
#   FUZZ_NICE=10       nice level of the build and the runs
#   FUZZ_SANITIZER=none  cargo fuzz -s: none, address, ...
#   TMPDIR             where the targets write their inputs as files (default /dev/shm)
#
# Installs cargo-fuzz (crates.io) when missing. cargo-fuzz needs nightly flags: with a
# stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them. New inputs go to
# fuzz/target/work/TARGET/ (not the repository); a failing input is saved by libFuzzer to
# fuzz/artifacts/TARGET/: once the bug is fixed, move it to fuzz/regressions/TARGET/.
# Runs print libFuzzer's final statistics (executions, exec/s) and the script's wall time.
set -euo pipefail

cd "$(dirname "$0")/.."

all_targets=(request zone_file config)
time_limit="${FUZZ_TIME:-60}"
runs="${FUZZ_RUNS:-0}"
jobs="${FUZZ_JOBS:-1}"
niceness="${FUZZ_NICE:-10}"
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    nice -n "$niceness" cargo install cargo-fuzz --locked
fi
# The zone file and config targets write each input to a scratch directory under
# $TMPDIR: on a tmpfs that costs little next to the check itself.
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then
    export TMPDIR=/dev/shm
fi
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

mode=run
if [[ $# -gt 0 && ( $1 == cmin || $1 == seed ) ]]; then
    mode=$1
    shift
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${all_targets[@]}")
fi
for t in "${targets[@]}"; do
    if [[ ! " ${all_targets[*]} " == *" $t "* ]]; then
        echo "fuzz.sh: unknown target $t (targets: ${all_targets[*]})" >&2
        exit 2
    fi
done

if [[ $mode == seed ]]; then
    SIGNPOST_FUZZ_SEEDS="$PWD/fuzz/corpus" nice -n "$niceness" \
        cargo test --test fuzz_replay -- --ignored --exact write_seeds --nocapture
    exit 0
fi

max_len() {
    case $1 in
        request) echo 65535 ;;
        *) echo 4096 ;;
    esac
}

for t in "${targets[@]}"; do
    nice -n "$niceness" cargo fuzz build -s "$sanitizer" "$t"
    work="fuzz/target/work/$t"
    mkdir -p "$work" "fuzz/corpus/$t"
    if [[ $mode == cmin ]]; then
        # Everything found so far, then one minimal corpus with the same edge coverage
        # (hit counts left out, which keeps the corpus small).
        cp -n "$work"/* "fuzz/corpus/$t/" 2>/dev/null || true
        nice -n "$niceness" cargo fuzz cmin -s "$sanitizer" "$t" "fuzz/corpus/$t" -- \
            -use_counters=0 -max_len="$(max_len "$t")" -rss_limit_mb=4096 -timeout=30
        echo "fuzz.sh: $t corpus: $(ls "fuzz/corpus/$t" | wc -l) files, $(cat "fuzz/corpus/$t"/* | wc -c) bytes"
        continue
    fi
    args=(-max_total_time="$time_limit" -runs="$runs" -max_len="$(max_len "$t")"
        -timeout=10 -rss_limit_mb=4096 -print_final_stats=1)
    if [[ $runs == 0 ]]; then
        args[1]=-runs=-1
    fi
    if [[ $jobs -gt 1 ]]; then
        args+=(-fork="$jobs")
    fi
    echo "fuzz.sh: $t: ${args[*]}" >&2
    start=$(date +%s)
    nice -n "$niceness" cargo fuzz run -s "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- "${args[@]}"
    echo "fuzz.sh: $t: done in $(($(date +%s) - start)) s wall time" >&2
done
