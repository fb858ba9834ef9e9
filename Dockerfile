# The impush image: every binary (impush, impush-ingest, impush-router, impush-sender,
# impush-receipts, impush-sim) in one slim, non-root image, so the fleet runs one artifact whatever the role.
# Build: docker build -t impush:dev .

# The builder matches the toolchain the project is tested with.
FROM rust:1.95-slim-bookworm AS builder
# aws-lc-sys (rustls' crypto) compiles C and may call cmake; nothing else is native.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
    && mkdir /out \
    && cp target/release/impush target/release/impush-ingest target/release/impush-router \
          target/release/impush-sender target/release/impush-receipts target/release/impush-sim /out/

FROM debian:bookworm-slim
# ca-certificates: the vendors are reached over TLS. tini is PID 1 because the kernel gives
# PID 1 no default signal actions; under it a worker gets SIGTERM (drain) and SIGHUP (reload
# secrets) like any process, and stray children are reaped.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 impush \
    && useradd --system --uid 10001 --gid impush --no-create-home --shell /usr/sbin/nologin impush
COPY --from=builder /out/ /usr/local/bin/
ENV IMPUSH_CONFIG=/etc/impush/config/impush.toml \
    IMPUSH__LOG__FORMAT=json
USER 10001:10001
EXPOSE 9600
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["impush", "--help"]
