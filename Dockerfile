# signpost in a container: a release build on Debian bookworm, run as the fixed non-root
# user 10053:10053 with no capabilities.
#
#   docker build -t signpost .
#   docker run -p 53:53/udp -p 53:53/tcp signpost
#
# Mount your config at /etc/signpost/config (signpost.toml, the admin token) and your
# zones at /etc/signpost/zones; relative paths in the config resolve against
# /etc/signpost, the working directory. Drains and the audit log go to /var/lib/signpost.
#
# Port 53 without privileges: the process has no capabilities and runs with no_new_privs
# in mind, so it does not rely on file capabilities (setcap), which no_new_privs ignores.
# It binds 53 because its network namespace lets unprivileged users do so: Docker 20.10
# and later set net.ipv4.ip_unprivileged_port_start=0 in a container's own network
# namespace (say so explicitly with --sysctl net.ipv4.ip_unprivileged_port_start=53),
# Kubernetes pods set the same sysctl (deploy/kubernetes). With --network host that
# sysctl is the host's: use the Debian package and its systemd unit on a host instead, or
# listen on a port above 1023. See docs/deploy.md.

ARG RUST_IMAGE=rust:1-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin signpost \
    && install -D -m 0755 target/release/signpost /out/signpost

FROM debian:bookworm-slim
# ca-certificates: for https health probes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed UID/GID, so that bind mounts, fsGroup and file ownership on the host are known
# in advance: 10053 (above the range distributions give to system and login users).
RUN groupadd --system --gid 10053 signpost \
    && useradd --system --uid 10053 --gid 10053 --home-dir /var/lib/signpost \
        --no-create-home --shell /usr/sbin/nologin signpost \
    && install -d -m 0755 /etc/signpost/config /etc/signpost/zones \
    && install -d -o 10053 -g 10053 -m 0750 /var/lib/signpost
COPY --from=build /out/signpost /usr/local/bin/signpost
COPY config/signpost.toml /etc/signpost/config/signpost.toml
COPY zones/ /etc/signpost/zones/

WORKDIR /etc/signpost
# DNS on every address on port 53; drains and the audit log in /var/lib/signpost. The
# admin listener stays on the container's loopback (the config's default) until it has a
# token; the health check below reaches it there.
ENV SIGNPOST__DNS__LISTEN=0.0.0.0:53 \
    SIGNPOST__STATE__DIR=/var/lib/signpost
# State only: config is mounted (or baked into a derived image), never an anonymous volume.
VOLUME ["/var/lib/signpost"]
# DNS only. The admin API (8053) is published only when you move it off loopback with a
# token: -e SIGNPOST__ADMIN__LISTEN=0.0.0.0:8053 -p 8053:8053.
EXPOSE 53/udp 53/tcp
USER 10053:10053
# GET /healthz on the admin listener with the binary itself (no curl in the image). When
# admin.listen is not on 127.0.0.1:8053, set SIGNPOST_ADMIN=http://ADDRESS:PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["signpost", "healthcheck"]
ENTRYPOINT ["signpost"]
CMD ["serve"]
