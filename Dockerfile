# syntax=docker/dockerfile:1
# The action image, published by .github/workflows/release.yml as
# ghcr.io/ecs-deploy-action/ecs-deploy-action:<version> (and :v1) and named in action.yml.
# Runners pull this image on every workflow run, so it holds one static binary and the CA
# bundle, nothing else (goal: <= 30 MB, container start to first AWS request <= 100 ms).
#
# Multi-arch: release.yml builds each platform on a native runner (amd64, arm64); no
# cross-compiling, because the TLS stack (aws-lc) has C parts that want the target's own C
# compiler. This machine cannot pull base images: scripts/local-action-image.sh builds an
# equivalent image from a host-built static binary for the tests and the benchmark.

ARG RUST_VERSION=1.95
ARG ALPINE_VERSION=3.22

# --- build: a static musl binary --------------------------------------------------------------
# Alpine's Rust toolchain targets musl natively and links statically by default (crt-static),
# so the binary needs no libc, no loader and no shared library at run time.
FROM rust:${RUST_VERSION}-alpine${ALPINE_VERSION} AS build
# musl-dev + gcc + make + cmake + perl: the C parts of aws-lc (rustls' crypto provider).
# ca-certificates: the bundle copied into the final image. binutils: the static-link check.
RUN apk add --no-cache musl-dev gcc make cmake perl ca-certificates binutils
WORKDIR /src
COPY . .
# The release profile (Cargo.toml) is tuned for size: lto + codegen-units=1 + strip + opt "s".
# Cache mounts keep the crates.io download and the target dir between builds on one builder.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ecs-deploy \
 && cp target/release/ecs-deploy /usr/local/bin/ecs-deploy
# Refuse a dynamically linked binary: it would not start in the scratch image below.
RUN ! readelf -lW /usr/local/bin/ecs-deploy | grep -q 'program interpreter' \
 && /usr/local/bin/ecs-deploy --help >/dev/null
# The final image's small file tree: /tmp (sticky, world-writable) and a passwd/group file
# naming root and an unprivileged `nonroot` user (uid/gid 65532) for CLI use outside Actions.
RUN mkdir -p /rootfs/tmp /rootfs/etc \
 && chmod 1777 /rootfs/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' \
      > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group

# --- final: scratch + binary + CA bundle --------------------------------------------------------
FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /usr/local/bin/ecs-deploy /usr/local/bin/ecs-deploy
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title="ecs-deploy-action" \
      org.opencontainers.image.description="GitHub Action: build, push and deploy a web app to Amazon ECS, and tell the team" \
      org.opencontainers.image.licenses="MIT"
# Why no USER instruction (the image runs as root):
# - GitHub's docs for container actions: "Docker actions must be run by the default Docker user
#   (root). Do not use the USER instruction in your Dockerfile, because you won't be able to
#   access the GITHUB_WORKSPACE directory."
# - The runner mounts /github/workspace and /github/file_commands (GITHUB_OUTPUT,
#   GITHUB_STEP_SUMMARY) owned by its own user (uid 1001 on hosted runners), and
#   /var/run/docker.sock as root:docker mode 660 where the docker group's gid differs from host
#   to host: no fixed non-root uid/gid baked in here can write the first two and open the socket
#   everywhere.
# - Access to the Docker socket is root-equivalent on the host anyway, so a non-root user inside
#   would not reduce what the action can do.
# Outside Actions (CLI use without the socket, e.g. `--image` deploys only), run it unprivileged:
#   docker run --user nonroot ... ; with the socket add: --group-add "$(stat -c %g /var/run/docker.sock)"
# No WORKDIR: the runner sets the working directory to the mounted workspace.
ENTRYPOINT ["/usr/local/bin/ecs-deploy"]
