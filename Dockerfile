# The operator's image, for those with a container engine and a registry:
#
#   docker build -t ghcr.io/example/maintenance-operator:0.1.0 .
#
# `make image` builds the same image without a daemon (buildah, image/build.sh). Both take the
# image's files from image/rootfs.sh, and the runtime stage below is image/Containerfile's:
# `make lint` fails when they differ.

# Build: a static musl binary (TLS is rustls with ring, so no OpenSSL is linked).
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
    && apt-get update && apt-get install -y --no-install-recommends musl-tools ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p maintenance-operator --target x86_64-unknown-linux-musl \
    && image/rootfs.sh target/x86_64-unknown-linux-musl/release/maintenance-operator /rootfs

# Run: the binary, the CA bundle and a passwd entry for 65532; no shell, no package manager.
FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/maintenance-operator"]
CMD ["run", "--listen", "[::]:8080"]
