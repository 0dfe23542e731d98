# signpost in a container: a release build on Debian bookworm, run as a non-root user.
#
#   docker build -t signpost .
#   docker run -p 53:53/udp -p 53:53/tcp signpost
#
# Mount your own /etc/signpost (config/signpost.toml and zones/ inside) to serve your
# zones; relative paths in the config resolve against /etc/signpost, the working dir.

ARG RUST_IMAGE=rust:1-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin signpost \
    && install -D -m 0755 target/release/signpost /out/signpost

FROM debian:bookworm-slim
# libcap2-bin: setcap, so the non-root user may bind port 53. ca-certificates: for
# https health probes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcap2-bin ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --home-dir /var/lib/signpost --shell /usr/sbin/nologin signpost \
    && mkdir -p /etc/signpost/config /etc/signpost/zones /var/lib/signpost \
    && chown signpost:signpost /var/lib/signpost
COPY --from=build /out/signpost /usr/local/bin/signpost
RUN setcap cap_net_bind_service=+ep /usr/local/bin/signpost
COPY config/signpost.toml /etc/signpost/config/signpost.toml
COPY zones/ /etc/signpost/zones/

WORKDIR /etc/signpost
# DNS on every address on port 53; drains and the audit log in /var/lib/signpost. The
# admin listener stays on loopback (the config's default) until it has a token.
ENV SIGNPOST__DNS__LISTEN=0.0.0.0:53 \
    SIGNPOST__STATE__DIR=/var/lib/signpost
VOLUME ["/etc/signpost", "/var/lib/signpost"]
EXPOSE 53/udp 53/tcp 8053/tcp
USER signpost
ENTRYPOINT ["signpost"]
CMD ["serve"]
