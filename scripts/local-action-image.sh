#!/usr/bin/env bash
# Builds the action image locally, the way the release Dockerfile does, but without pulling any
# base image (this machine's Docker engine cannot pull): a static `ecs-deploy` binary built on
# the host, plus the host's CA bundle, in a `FROM scratch` image. The result runs exactly like
# the published image: same entrypoint, same paths, root user, nothing else inside.
#
# Usage: scripts/local-action-image.sh [--tag TAG] [--profile PROFILE] [--target gnu|musl]
#   --tag      image tag to create (default: ecs-deploy-action:local)
#   --profile  cargo profile (default: action-test, see Cargo.toml; `release` for size figures)
#   --target   gnu  = x86_64-unknown-linux-gnu with a statically linked glibc (always works with
#                     the machine's gcc; the default)
#              musl = x86_64-unknown-linux-musl, as the release Dockerfile builds (needs the rustup
#                     target and Debian's musl-tools for the C parts of the TLS stack)
# Prints the image tag on the last line of stdout; everything else goes to stderr.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tag=ecs-deploy-action:local
profile=action-test
target=gnu
while [[ $# -gt 0 ]]; do
    case "$1" in
        --tag) tag=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        --target) target=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

case "$target" in
    gnu)
        triple=x86_64-unknown-linux-gnu
        # crt-static links glibc into the binary. Passing --target explicitly makes cargo apply
        # these flags to the binary only, not to build scripts and proc macros (which must stay
        # dynamic to be loaded by the host).
        export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
        ;;
    musl)
        triple=x86_64-unknown-linux-musl
        rustup target list --installed | grep -qx "$triple" \
            || { echo "the $triple target is missing: rustup target add $triple" >&2; exit 1; }
        command -v musl-gcc >/dev/null \
            || { echo "musl-gcc is missing: apt-get install musl-tools" >&2; exit 1; }
        export CC_x86_64_unknown_linux_musl=musl-gcc
        ;;
    *) echo "--target must be gnu or musl, not $target" >&2; exit 2 ;;
esac

ca_bundle=/etc/ssl/certs/ca-certificates.crt
[[ -s $ca_bundle ]] || { echo "no CA bundle at $ca_bundle: apt-get install ca-certificates" >&2; exit 1; }

echo "building ecs-deploy (profile $profile, target $triple)" >&2
cargo build --locked --bin ecs-deploy --profile "$profile" --target "$triple" >&2

target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
binary="$target_dir/$triple/$profile/ecs-deploy"
[[ -x $binary ]] || { echo "cargo did not produce $binary" >&2; exit 1; }

# A `FROM scratch` image has no dynamic loader: refuse a binary that needs one.
if readelf -lW "$binary" | grep -q 'Requesting program interpreter'; then
    echo "$binary is dynamically linked; it cannot run in a FROM scratch image" >&2
    exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/ecs-deploy"
cp "$ca_bundle" "$context/ca-certificates.crt"
mkdir -m 1777 "$context/tmp"
# The same passwd/group as the release image: root, and `nonroot` (65532) for CLI use.
mkdir "$context/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' \
    >"$context/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$context/etc/group"
# Same layout and metadata as the release Dockerfile's final stage.
cat >"$context/Dockerfile" <<'EOF'
FROM scratch
COPY etc /etc
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY tmp /tmp
COPY ecs-deploy /usr/local/bin/ecs-deploy
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title="ecs-deploy-action (local build)"
ENTRYPOINT ["/usr/local/bin/ecs-deploy"]
EOF

echo "building image $tag" >&2
DOCKER_BUILDKIT=0 docker build --quiet --tag "$tag" "$context" >&2
echo "$tag"
