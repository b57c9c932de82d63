# The operator's image: one static binary on a distroless base, running as a non-root user.
# No container engine is available where this project is developed and tested, so this file has
# never been built there; it is kept conventional and minimal on purpose.
#
#   docker build -t ghcr.io/example/maintenance-operator:0.1.0 .

# Build: a static musl binary (TLS is rustls with ring, so no OpenSSL is linked).
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
    && apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a change to the operator's code reuses their layer.
COPY Cargo.toml Cargo.lock ./
COPY operator/Cargo.toml operator/
COPY e2e/Cargo.toml e2e/
RUN mkdir -p operator/src e2e/src/bin \
    && echo 'fn main() {}' > operator/src/main.rs && touch operator/src/lib.rs \
    && touch e2e/src/lib.rs e2e/src/bin/demo.rs e2e/src/bin/bench_scale.rs \
    && cargo build --locked --release -p maintenance-operator --target x86_64-unknown-linux-musl \
    && rm -rf operator/src
COPY operator operator
RUN touch operator/src/main.rs operator/src/lib.rs \
    && cargo build --locked --release -p maintenance-operator --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/maintenance-operator /maintenance-operator

# Run: no shell, no package manager; UID 65532 as config/manager/deployment.yaml expects.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /maintenance-operator /maintenance-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/maintenance-operator"]
CMD ["run", "--listen", "0.0.0.0:8080"]
