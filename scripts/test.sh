#!/usr/bin/env bash
# signpost's whole check, as CI runs it (.ci/run calls this):
#   1. as root with apt-get, installs the Debian packages the interop tests need when a
#      tool is missing (without leaving their services running: port 53 stays free);
#   2. cargo fmt --check; clippy with -D warnings; every test, interop included;
#   3. builds the Debian package (scripts/package.sh) and checks it, the systemd unit, the
#      man page, the completions, the Kubernetes base and the Prometheus rules
#      (scripts/check-deploy.sh; kubernetes-validate comes from PyPI into target/pyvenv).
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian packages, and a tool each one provides that the tests use (same order). Only the
# packages whose tool is missing are installed. kubernetes-client is Debian's kubectl;
# a kubectl already on the PATH is used as it is.
packages=(bind9-dnsutils unbound bind9 bind9-utils dnsperf chromium chromium-driver iproute2 curl
    prometheus kubernetes-client systemd man-db zsh fish python3-venv)
tools=(dig unbound named named-checkzone dnsperf chromium chromedriver ip curl
    promtool kubectl systemd-analyze man zsh fish python3)

# named and unbound live in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
missing_packages=()
for i in "${!tools[@]}"; do
    if ! command -v "${tools[i]}" >/dev/null 2>&1; then
        missing+=("${tools[i]}")
        missing_packages+=("${packages[i]}")
    fi
done
# The venv for kubernetes-validate needs python3-venv, which has no command of its own.
if command -v python3 >/dev/null 2>&1 && [[ ! -x target/pyvenv/bin/kubernetes-validate ]] &&
    ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=("python3 venv")
    missing_packages+=(python3-venv)
fi

if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: missing ${missing[*]}; installing ${missing_packages[*]}" >&2
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
        apt-get install -y -q --no-install-recommends "${missing_packages[@]}"
        restore_policy
        trap - EXIT
        # Under systemd, make sure they stay stopped and do not come back at boot.
        if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now unbound.service named.service prometheus.service >/dev/null 2>&1 || true
        fi
    else
        echo "test.sh: missing ${missing[*]}; the interop tests and scripts/check-deploy.sh will fail." >&2
        echo "test.sh: run this script as root on Debian to install: ${missing_packages[*]}" >&2
    fi
fi

# kubernetes-validate (PyPI) in a venv of its own under target/, made once.
kv_version=1.37.0
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    if [[ ! -x target/pyvenv/bin/kubernetes-validate ]]; then
        echo "test.sh: installing kubernetes-validate $kv_version from PyPI into target/pyvenv" >&2
        python3 -m venv target/pyvenv
        target/pyvenv/bin/pip install --quiet "kubernetes-validate==$kv_version"
    fi
    export PATH="$PWD/target/pyvenv/bin:$PATH"
fi

cargo fmt --check
cargo clippy --all-targets --all-features -- -D warnings
cargo test --all-features --locked

deb=$(scripts/package.sh | tail -n 1)
scripts/check-deploy.sh "$deb"
