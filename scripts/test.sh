#!/usr/bin/env bash
# signpost's whole check, as CI runs it (.ci/run calls this):
#   1. as root with apt-get, installs the Debian packages the interop tests need when a
#      tool is missing (without leaving their services running: port 53 stays free);
#   2. cargo fmt --check; clippy with -D warnings; every test, interop included.
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian packages, and a tool each one provides that the tests use.
packages=(bind9-dnsutils unbound bind9 bind9-utils dnsperf chromium chromium-driver iproute2 curl prometheus)
tools=(dig unbound named named-checkzone dnsperf chromium chromedriver ip curl promtool)

# named and unbound live in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
for t in "${tools[@]}"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done

if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: missing ${missing[*]}; installing ${packages[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        # Keep the packages' services from starting at install: policy-rc.d exiting 101
        # ("action forbidden") for the duration, whatever one was there before. They would
        # take port 53, and the tests start their own unbound and named.
        policy=/usr/sbin/policy-rc.d
        backup=""
        if [[ -e "$policy" ]]; then
            backup="$(mktemp)"
            cp -p "$policy" "$backup"
        fi
        restore_policy() {
            if [[ -n "$backup" ]]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
        }
        trap restore_policy EXIT
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${packages[@]}"
        restore_policy
        trap - EXIT
        # Under systemd, make sure they stay stopped and do not come back at boot.
        if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now unbound.service named.service >/dev/null 2>&1 || true
        fi
    else
        echo "test.sh: missing ${missing[*]}; the interop tests will fail." >&2
        echo "test.sh: run this script as root on Debian to install: ${packages[*]}" >&2
    fi
fi

cargo fmt --check
cargo clippy --all-targets --all-features -- -D warnings
cargo test --all-features --locked
