#!/usr/bin/env bash
# Builds the Debian package target/debian/signpost_<version>_<arch>.deb with cargo-deb
# (installed from crates.io when missing): /usr/bin/signpost, the systemd unit, the config
# and the example zone in /etc/signpost (conffiles), the man page, bash/zsh/fish
# completions, and maintainer scripts that create the system user signpost and
# /var/lib/signpost. scripts/check-deploy.sh checks what it built.
#
#   scripts/package.sh            # prints the path of the .deb on its last line
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "package.sh: cargo-deb is missing; installing it from crates.io" >&2
    cargo install cargo-deb --locked
fi

# The release binary (reused when up to date), then the files generated from it.
cargo build --release --locked --bin signpost
bin=target/release/signpost
assets=target/assets
rm -rf "$assets"
mkdir -p "$assets"
mkdir -p "$assets/man"
"$bin" manpage "$assets/man"
gzip -9 -n "$assets"/man/*.1
"$bin" completions bash >"$assets/signpost.bash"
"$bin" completions zsh >"$assets/_signpost"
"$bin" completions fish >"$assets/signpost.fish"

# Stripped: the release profile keeps line tables for backtraces, which would make the
# binary five times larger in the package.
deb=$(cargo deb --no-build --locked --strip --output target/debian 2>&1 | tee /dev/stderr | tail -n 1)
if [[ ! -f "$deb" ]]; then
    echo "package.sh: cargo deb did not report a package file (last line: $deb)" >&2
    exit 1
fi
echo "package.sh: $(du -h "$deb" | cut -f1) $(stat -c %s "$deb") bytes" >&2
echo "$deb"
