#!/usr/bin/env bash
# Times the image step for the fixture app web1 (fixtures/monorepo) on real parts: this machine's
# Docker engine and a local docker-registry on 127.0.0.1. Three runs of the `ecs-deploy` binary:
#   1. cold build + push (engine build cache pruned, empty registry), with `cache: registry`
#   2. the same run again, nothing changed: the version tag exists, so no build (expect < 3 s)
#   3. a rebuild (`rebuild: true`) after pruning the engine's build cache and local images, so
#      only the registry cache (`web1:buildcache`) can help
# Usage: bench/image.sh [path/to/ecs-deploy]   (default: target/debug/ecs-deploy, built if missing)
# Note: `docker builder prune` clears the engine's unused build cache for every user of it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/ecs-deploy}
[ -x "$BIN" ] || cargo build --bin ecs-deploy >/dev/null
command -v docker-registry >/dev/null || { echo "docker-registry is not installed" >&2; exit 1; }

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/config.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
cleanup() {
  kill "$registry_pid" 2>/dev/null || true
  docker images --format '{{.Repository}}:{{.Tag}}' | grep "^127.0.0.1:$port/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

reset_engine() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep "^127.0.0.1:$port/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  docker builder prune -af >/dev/null 2>&1
}

run() { # label, extra env...
  local label=$1; shift
  local out="$work/out-$RANDOM" log="$work/log-$RANDOM"
  : >"$out"
  local start end
  start=$(date +%s.%N)
  env -i PATH="$PATH" HOME="$work" \
    AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_ENDPOINT_URL=http://127.0.0.1:9 \
    GITHUB_WORKSPACE="$PWD/fixtures/monorepo" GITHUB_SHA=1a2b3c4d5e6f708192a3b4c5d6e7f80912345678 \
    GITHUB_REPOSITORY=acme/shop GITHUB_EVENT_NAME=pull_request \
    GITHUB_EVENT_PATH="$PWD/fixtures/events/pr-merged-release-web1.json" GITHUB_OUTPUT="$out" \
    INPUT_REGISTRY="127.0.0.1:$port" INPUT_CACHE=registry "$@" \
    "$BIN" >"$log" 2>&1 || { cat "$log"; exit 1; }
  if [ -n "${BENCH_VERBOSE:-}" ]; then grep -E "^(#|DONE|CACHED|ERROR|registry cache|built)" "$log" || true; fi
  end=$(date +%s.%N)
  local built steps
  built=$(grep -A1 '^image-built<<' "$out" | tail -1)
  steps=$(grep -o '[0-9]* steps, [0-9]* from cache' "$log" || echo "no build")
  printf '%-52s %6.2f s   image-built=%s   %s\n' "$label" "$(echo "$end - $start" | bc)" "$built" "$steps"
}

echo "ecs-deploy image step, fixture app web1 ($(docker version --format '{{.Server.Version}}' 2>/dev/null), binary $BIN)"
reset_engine
run "1. cold build + push (3 tags + buildcache)"
run "2. second run, nothing changed"
reset_engine
run "3. rebuild, empty engine cache, registry cache" INPUT_REBUILD=true
reset_engine
run "4. rebuild, empty engine cache, no cache (reference)" INPUT_REBUILD=true INPUT_CACHE=none
