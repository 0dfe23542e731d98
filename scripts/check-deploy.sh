#!/usr/bin/env bash
# Checks what signpost ships besides the binary (scripts/test.sh runs it after
# scripts/package.sh; it fails on the first thing that is wrong):
#   1. the Debian package: its layout once unpacked into a throwaway root (dpkg-deb -x),
#      control fields, conffiles, maintainer scripts, the packaged binary and config; then
#      dpkg -i into a throwaway overlay of this system (root; SIGNPOST_SKIP_INSTALL=1
#      skips it), running signpost as the user the package creates, and dpkg --purge;
#   2. the systemd unit: systemd-analyze verify, and a security exposure of OK or better;
#   3. the man pages (man -l, no groff warnings) and the bash/zsh/fish completions;
#   4. the Kubernetes base: kubectl kustomize deploy/kubernetes | kubernetes-validate --strict -;
#   5. the Prometheus rules (promtool check rules, promtool test rules) and the PromQL of
#      the Grafana dashboard (promtool check rules on its queries).
# That the dashboard and rules name only exported metrics is tests/deploy.rs (cargo test).
#
#   scripts/check-deploy.sh [target/debian/signpost_<version>_<arch>.deb]
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "check-deploy.sh: FAIL: $*" >&2
    exit 1
}
need() {
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 ||
            fail "$t not found; scripts/test.sh installs it (as root on Debian)"
    done
}
ok() { echo "check-deploy.sh: ok: $*"; }

need dpkg-deb dpkg systemd-analyze man bash zsh fish kubectl kubernetes-validate promtool python3

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
deb=${1:-target/debian/signpost_${version}_${arch}.deb}
[[ -f "$deb" ]] || fail "$deb does not exist; build it with scripts/package.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
ctl="$work/control"
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$ctl"

# --- 1. The package --------------------------------------------------------------------

field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == signpost ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] ||
    fail "Version $(field Version) is not Cargo.toml's $version"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture)"
[[ $(field Depends) == *adduser* ]] || fail "Depends lacks adduser: $(field Depends)"

# The systemd unit may land in /lib or /usr/lib depending on the cargo-deb version.
unit=""
for d in lib/systemd/system usr/lib/systemd/system; do
    [[ -f "$root/$d/signpost.service" ]] && unit="$d/signpost.service"
done
[[ -n "$unit" ]] || fail "no signpost.service in the package"

# path mode: every file the package must hold, and nothing it must not.
expected=(
    "usr/bin/signpost 755"
    "$unit 644"
    "etc/signpost/signpost.toml 644"
    "etc/signpost/zones/gslb.example.zone 644"
    "etc/logrotate.d/signpost 644"
    "usr/share/man/man1/signpost.1.gz 644"
    "usr/share/man/man1/signpost-serve.1.gz 644"
    "usr/share/bash-completion/completions/signpost 644"
    "usr/share/zsh/vendor-completions/_signpost 644"
    "usr/share/fish/vendor_completions.d/signpost.fish 644"
    "usr/share/doc/signpost/copyright 644"
    "usr/share/doc/signpost/README.md 644"
    "usr/share/doc/signpost/CHANGELOG.md 644"
    "usr/share/doc/signpost/operations.md 644"
    "usr/share/doc/signpost/examples/signpost-dashboard.json 644"
    "usr/share/doc/signpost/examples/alerts.yaml 644"
)
for e in "${expected[@]}"; do
    read -r path mode <<<"$e"
    [[ -f "$root/$path" ]] || fail "missing /$path"
    got=$(stat -c %a "$root/$path")
    [[ $got == "$mode" ]] || fail "/$path has mode $got, want $mode"
done
not_root=$(dpkg-deb -c "$deb" | awk '$2 != "root/root" && $2 != "0/0"')
[[ -z "$not_root" ]] || fail "files not owned by root:root in the package: $not_root"
cmp -s "$root/$unit" deploy/systemd/signpost.service || fail "the packaged unit differs from deploy/systemd/signpost.service"
grep -q "Apache License" "$root/usr/share/doc/signpost/copyright" || fail "copyright lacks the Apache-2.0 text"
file_type=$(od -An -c -N4 "$root/usr/bin/signpost" | tr -d ' ')
[[ $file_type == 177ELF ]] || fail "/usr/bin/signpost is not an ELF binary"
[[ $("$root/usr/bin/signpost" --version) == "signpost $version" ]] || fail "signpost --version: $("$root/usr/bin/signpost" --version)"

# Conffiles: the config and the zone, so upgrades keep local edits.
for c in /etc/signpost/signpost.toml /etc/signpost/zones/gslb.example.zone /etc/logrotate.d/signpost; do
    grep -qxF "$c" "$ctl/conffiles" || fail "$c is not a conffile: $(cat "$ctl/conffiles")"
done

# Maintainer scripts: valid sh; postinst makes the system user and its state dir and
# enables the unit; postrm removes the state on purge.
for s in postinst prerm postrm; do
    [[ -f "$ctl/$s" ]] || fail "no $s in the package"
    sh -n "$ctl/$s" || fail "$s is not valid sh"
done
grep -q 'adduser --system' "$ctl/postinst" || fail "postinst does not create a system user"
grep -q 'install -d -o signpost -g signpost -m 0750 /var/lib/signpost' "$ctl/postinst" ||
    fail "postinst does not create /var/lib/signpost owned by signpost"
grep -q 'deb-systemd-helper' "$ctl/postinst" || fail "postinst does not enable signpost.service"
grep -q 'rm -rf /var/lib/signpost' "$ctl/postrm" || fail "postrm does not remove the state on purge"

# The packaged binary accepts the packaged config and zone, as the unit runs it.
(cd "$root/etc/signpost" && "$root/usr/bin/signpost" check --config "$root/etc/signpost/signpost.toml" >/dev/null 2>&1) ||
    fail "signpost check rejects the packaged config"
ok "package $deb ($(stat -c %s "$deb") bytes): layout, control, conffiles, maintainer scripts"

# Install it for real into a throwaway copy of this system (an overlay of / in a private
# mount namespace, chrooted, with a network namespace of its own: nothing reaches the
# host): the maintainer scripts create the user and /var/lib/signpost, the binary runs as
# that user from /etc/signpost and writes its state there, and purge removes it.
if [[ ${SIGNPOST_SKIP_INSTALL:-} == 1 ]]; then
    echo "check-deploy.sh: SIGNPOST_SKIP_INSTALL=1: not installing the package into a throwaway root" >&2
else
    [[ $(id -u) -eq 0 ]] || fail "installing the package into a throwaway root needs root (or set SIGNPOST_SKIP_INSTALL=1)"
    need unshare chroot setpriv
    ovl="$work/overlay"
    mkdir -p "$ovl/upper" "$ovl/work" "$ovl/merged"
    cp "$deb" "$ovl/signpost.deb"
    cat >"$ovl/inside.sh" <<'INSIDE'
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ip link set lo up
getent passwd signpost >/dev/null && { echo "a signpost user exists before the install"; exit 1; }
dpkg -i /signpost.deb >/dev/null
entry=$(getent passwd signpost) || { echo "postinst made no signpost user"; exit 1; }
uid=$(cut -d: -f3 <<<"$entry")
((uid < 1000)) || { echo "signpost is not a system user: $entry"; exit 1; }
[[ $(cut -d: -f7 <<<"$entry") == /usr/sbin/nologin ]] || { echo "signpost has a login shell: $entry"; exit 1; }
[[ $(stat -c '%U:%G %a' /var/lib/signpost) == "signpost:signpost 750" ]] ||
    { echo "/var/lib/signpost: $(stat -c '%U:%G %a' /var/lib/signpost)"; exit 1; }
[[ $(stat -c '%U:%G %a' /etc/signpost) == "root:signpost 750" ]] ||
    { echo "/etc/signpost: $(stat -c '%U:%G %a' /etc/signpost)"; exit 1; }
[[ -L /etc/systemd/system/multi-user.target.wants/signpost.service ]] || { echo "signpost.service is not enabled"; exit 1; }
[[ $(man -w signpost-drain) == /usr/share/man/man1/signpost-drain.1.gz ]] || { echo "man -w signpost-drain"; exit 1; }
# As the unit runs it: the signpost user, from /etc/signpost, state in /var/lib/signpost.
as_signpost() { setpriv --reuid=signpost --regid=signpost --init-groups --no-new-privs "$@"; }
cd /etc/signpost
# setpriv itself (not the function, which would be a subshell) so that $! is signpost.
SIGNPOST__STATE__DIR=/var/lib/signpost SIGNPOST__ADMIN__LISTEN=127.0.0.1:8053 \
    setpriv --reuid=signpost --regid=signpost --init-groups --no-new-privs \
    /usr/bin/signpost serve --config /etc/signpost/signpost.toml >/tmp/signpost.log 2>&1 &
pid=$!
for _ in $(seq 100); do
    as_signpost signpost healthcheck >/dev/null 2>&1 && break
    sleep 0.1
done
as_signpost signpost healthcheck >/dev/null || { cat /tmp/signpost.log; exit 1; }
as_signpost signpost drain --site hub-b --reason "package test" >/dev/null
kill "$pid"
wait "$pid" || { echo "signpost did not exit 0 on SIGTERM"; cat /tmp/signpost.log; exit 1; }
for f in drains.json audit.log; do
    [[ $(stat -c %U "/var/lib/signpost/$f") == signpost ]] || { echo "no /var/lib/signpost/$f of signpost"; exit 1; }
done
dpkg --purge signpost >/dev/null
[[ ! -e /var/lib/signpost && ! -e /etc/signpost && ! -e /usr/bin/signpost ]] || { echo "purge left files"; exit 1; }
INSIDE
    # shellcheck disable=SC2016 # expanded by the inner shell
    if ! out=$(unshare -m --propagation private bash -c '
            set -e
            ovl=$1
            mount -t overlay overlay -o "lowerdir=/,upperdir=$ovl/upper,workdir=$ovl/work" "$ovl/merged"
            for d in proc sys dev; do mount --rbind "/$d" "$ovl/merged/$d"; done
            cp "$ovl/signpost.deb" "$ovl/inside.sh" "$ovl/merged/"
            unshare -n chroot "$ovl/merged" bash /inside.sh
        ' _ "$ovl" 2>&1); then
        fail "installing the package into a throwaway root: $out"
    fi
    ok "dpkg -i into a throwaway root: system user, /var/lib/signpost, enabled unit, runs as signpost, purge"
fi

# --- 2. The systemd unit ---------------------------------------------------------------

# verify checks that every Exec*= binary exists: point the unit at the unpacked one.
# MANPATH lets it find man:signpost(1) from Documentation= in the unpacked root.
verify_unit="$work/signpost.service"
sed "s|/usr/bin/signpost|$root/usr/bin/signpost|g" "$root/$unit" >"$verify_unit"
out=$(MANPATH="$root/usr/share/man" systemd-analyze verify "$verify_unit" 2>&1) ||
    fail "systemd-analyze verify: $out"
[[ -z "$out" ]] || fail "systemd-analyze verify warns: $out"
grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' "$root/$unit" || fail "the unit's ambient capabilities changed"
grep -qx 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' "$root/$unit" || fail "the unit's capability bounding set changed"
score=$(systemd-analyze security --offline=true --no-pager "$verify_unit" 2>&1 | grep 'Overall exposure level') ||
    fail "systemd-analyze security gave no score"
level=$(awk '{print $(NF-1)}' <<<"$score")
case "$level" in
PERFECT | SAFE | OK) ok "systemd-analyze verify; security: ${score#→ }" ;;
*) fail "systemd-analyze security: $score (want OK or better)" ;;
esac

# --- 3. Man page and completions ---------------------------------------------------------

# man -l on signpost.1 and the page of every subcommand it lists: no groff warnings, the
# usual sections, each subcommand named on the main page with a page of its own.
subcommands=(serve check status drain undrain explain reload healthcheck completions)
man_text() {
    MANWIDTH=80 MANPAGER=cat LC_ALL=C.UTF-8 man --warnings -l "$1" 2>"$work/man.err" ||
        fail "man -l $1: $(cat "$work/man.err")"
    [[ ! -s "$work/man.err" ]] || fail "man -l $1 warns: $(cat "$work/man.err")"
}
man1="$root/usr/share/man/man1"
text=$(man_text "$man1/signpost.1.gz")
for w in NAME SYNOPSIS DESCRIPTION OPTIONS SUBCOMMANDS; do
    grep -qx "$w" <<<"$text" || fail "signpost.1 has no $w section"
done
for sub in "${subcommands[@]}"; do
    grep -q "signpost-$sub(1)" <<<"$text" || fail "signpost.1 does not list signpost-$sub(1)"
    [[ -f "$man1/signpost-$sub.1.gz" ]] || fail "no man page signpost-$sub.1.gz"
    sub_text=$(man_text "$man1/signpost-$sub.1.gz")
    grep -q "signpost-$sub" <<<"$sub_text" || fail "signpost-$sub.1 does not name itself"
done
grep -q -- "--ramp" <<<"$(man_text "$man1/signpost-drain.1.gz")" || fail "signpost-drain.1 lacks --ramp"
[[ ! -e "$man1/signpost-manpage.1.gz" ]] || fail "a page for the hidden manpage subcommand"
ok "man -l on signpost.1 and ${#subcommands[@]} subcommand pages (no warnings)"

# bash: load the completion and complete "signpost <TAB>" and "signpost drain --<TAB>".
bash_words=$(bash --norc --noprofile -c '
    source "$1"
    COMP_WORDS=(signpost ""); COMP_CWORD=1; COMP_LINE="signpost "; COMP_POINT=${#COMP_LINE}
    _signpost signpost "" signpost
    printf "%s\n" "${COMPREPLY[@]}"
    COMP_WORDS=(signpost drain --); COMP_CWORD=2; COMP_LINE="signpost drain --"; COMP_POINT=${#COMP_LINE}
    _signpost signpost -- drain
    printf "%s\n" "${COMPREPLY[@]}"
' _ "$root/usr/share/bash-completion/completions/signpost")
for w in "${subcommands[@]}" --site --endpoint --ramp --reason; do
    grep -qx -- "$w" <<<"$bash_words" || fail "bash completion does not offer $w: $bash_words"
done
# zsh: valid syntax, a #compdef for signpost that names the subcommands.
zsh -n "$root/usr/share/zsh/vendor-completions/_signpost" || fail "zsh completion: syntax error"
head -n 1 "$root/usr/share/zsh/vendor-completions/_signpost" | grep -qx '#compdef signpost' ||
    fail "zsh completion lacks #compdef signpost"
for w in "${subcommands[@]}"; do
    grep -q "'$w:" "$root/usr/share/zsh/vendor-completions/_signpost" || fail "zsh completion lacks $w"
done
# fish: load it and ask fish for the completions of "signpost " and "signpost drain --".
fish_words=$(fish --no-config -c "source $root/usr/share/fish/vendor_completions.d/signpost.fish
    complete -C 'signpost '; complete -C 'signpost drain --'" | cut -f1)
for w in "${subcommands[@]}" --site --endpoint --ramp --reason; do
    grep -qx -- "$w" <<<"$fish_words" || fail "fish completion does not offer $w: $fish_words"
done
ok "completions: bash and fish complete subcommands and drain's options; zsh parses"

# --- 4. Kubernetes -------------------------------------------------------------------------

kubectl kustomize deploy/kubernetes >"$work/k8s.yaml" || fail "kubectl kustomize deploy/kubernetes"
kubernetes-validate --strict --quiet - <"$work/k8s.yaml" || fail "kubernetes-validate --strict"
for kind in Namespace Deployment Service PodDisruptionBudget NetworkPolicy ConfigMap Secret; do
    grep -qx "kind: $kind" "$work/k8s.yaml" || fail "the rendered base has no $kind"
done
# The base's config and zones pass `signpost check` laid out as the pod mounts them (the
# token from a file here; the base's own Secret is empty on purpose, which check refuses).
k8s="$work/k8s"
mkdir -p "$k8s/config" "$k8s/zones"
cp deploy/kubernetes/signpost.toml "$k8s/config/"
cp deploy/kubernetes/zones/*.zone "$k8s/zones/"
echo "check-deploy-token" >"$k8s/token"
(cd "$k8s" && SIGNPOST__ADMIN__TOKEN_FILE="$k8s/token" "$root/usr/bin/signpost" check --config config/signpost.toml >/dev/null 2>&1) ||
    fail "signpost check rejects deploy/kubernetes/signpost.toml"
: >"$k8s/token"
(cd "$k8s" && SIGNPOST__ADMIN__TOKEN_FILE="$k8s/token" "$root/usr/bin/signpost" check --config config/signpost.toml >/dev/null 2>&1) &&
    fail "signpost check accepts an empty admin token"
ok "kubectl kustomize deploy/kubernetes | kubernetes-validate --strict -; its config passes signpost check"

# --- 5. Prometheus and Grafana -------------------------------------------------------------

promtool check rules deploy/prometheus/alerts.yaml >/dev/null || fail "promtool check rules"
promtool test rules deploy/prometheus/alerts.test.yaml >/dev/null ||
    fail "promtool test rules: $(promtool test rules deploy/prometheus/alerts.test.yaml 2>&1)"
# Every dashboard query, with Grafana's variables filled in, as a recording rule.
python3 - deploy/grafana/signpost-dashboard.json >"$work/dashboard-rules.yaml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert exprs, "the dashboard has no queries"
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(exprs):
    e = e.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*")
    print(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(e)}")
PY
promtool check rules "$work/dashboard-rules.yaml" >/dev/null ||
    fail "dashboard PromQL: $(promtool check rules "$work/dashboard-rules.yaml" 2>&1)"
ok "promtool check rules, promtool test rules, dashboard PromQL"
