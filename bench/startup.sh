#!/usr/bin/env bash
# Measures how fast the action image gets to work, and how big it is:
#   - container start → first AWS request: a listener on 127.0.0.1 notes when the first HTTP
#     request arrives; the container's start is the engine's own `State.StartedAt` (the moment
#     its process was started), both on this machine's clock
#   - `docker run` → first AWS request: the same, counted from the moment `docker run` is called
#     (adds the engine's container set-up, which the runner pays too)
#   - the bare binary → first AWS request, for comparison
#   - the image's size (`docker image inspect .Size`)
# The run is a real deploy request: a merged release/web1 PR with `image` and `service` given,
# so the first AWS call is the deploy's first ECS read. The listener answers every request with
# an AWS-style error, so the run then ends; only the arrival time counts.
# Usage: bench/startup.sh [IMAGE] [RUNS]
#   IMAGE  default: builds scripts/local-action-image.sh --profile release --tag ecs-deploy-action:bench
#   RUNS   default 10
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-}
runs=${2:-10}
if [[ -z $image ]]; then
    image=$(scripts/local-action-image.sh --profile release --tag ecs-deploy-action:bench)
fi
binary=$(mktemp -d)/ecs-deploy
docker create --name "ecs-deploy-bench-cp-$$" "$image" >/dev/null
docker cp "ecs-deploy-bench-cp-$$:/usr/local/bin/ecs-deploy" "$binary" >/dev/null
docker rm "ecs-deploy-bench-cp-$$" >/dev/null

work=$(mktemp -d)
trap 'kill "$listener" 2>/dev/null || true; rm -rf "$work" "$(dirname "$binary")"' EXIT

# The listener: appends "<epoch seconds> <path>" per request to $work/hits, answers 400.
cat >"$work/listener.py" <<'PY'
import http.server, sys, time
hits = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def _any(self):
        hits.write(f"{time.time():.6f} {self.headers.get('X-Amz-Target') or self.path}\n")
        n = int(self.headers.get("Content-Length") or 0)
        if n: self.rfile.read(n)
        body = b'{"__type":"ClientException","message":"benchmark listener"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET = do_PUT = _any
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$work/listener.py" "$work/port" "$work/hits" &
listener=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
port=$(cat "$work/port")

event="$PWD/fixtures/events/pr-merged-release-web1.json"
envs=(
    AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    AWS_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_MAX_ATTEMPTS=1
    GITHUB_EVENT_NAME=pull_request GITHUB_REPOSITORY=acme/shop
    GITHUB_SHA=1a2b3c4d5e6f708192a3b4c5d6e7f80912345678
    INPUT_IMAGE=123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3
    INPUT_CLUSTER=prod INPUT_SERVICE=web1 INPUT_CONTAINER-NAME=web1
)

first_hit_after() { # $1: epoch seconds; prints the first hit's time after it
    awk -v t="$1" '$1 >= t { print $1; exit }' "$work/hits"
}
wait_hit() { # $1: epoch seconds
    for _ in $(seq 100); do
        local h
        h=$(first_hit_after "$1")
        [[ -n $h ]] && { echo "$h"; return; }
        sleep 0.05
    done
    echo "no AWS request arrived" >&2
    exit 1
}

container_ms=() run_ms=() bare_ms=()
for i in $(seq "$runs"); do
    name="ecs-deploy-bench-$$-$i"
    called=$(date +%s.%N)
    docker run -d --name "$name" --network host \
        -v "$PWD/fixtures/monorepo:/github/workspace" -v "$event:/github/workflow/event.json" \
        -e GITHUB_WORKSPACE=/github/workspace -e GITHUB_EVENT_PATH=/github/workflow/event.json \
        $(printf -- '-e %s ' "${envs[@]}") "$image" >/dev/null
    hit=$(wait_hit "$called")
    docker wait "$name" >/dev/null
    started=$(docker inspect --format '{{.State.StartedAt}}' "$name")
    docker rm "$name" >/dev/null
    started_s=$(date -d "$started" +%s.%N)
    container_ms+=("$(python3 -c "print(round(($hit - $started_s) * 1000, 1))")")
    run_ms+=("$(python3 -c "print(round(($hit - $called) * 1000, 1))")")

    called=$(date +%s.%N)
    env -i PATH="$PATH" HOME="$work" GITHUB_WORKSPACE="$PWD/fixtures/monorepo" \
        GITHUB_EVENT_PATH="$event" "${envs[@]}" "$binary" >/dev/null 2>&1 || true
    hit=$(wait_hit "$called")
    bare_ms+=("$(python3 -c "print(round(($hit - $called) * 1000, 1))")")
done

stats() { # median min max of the arguments
    python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.1f} | {min(v):.1f} | {max(v):.1f}")' "$@"
}
size=$(docker image inspect --format '{{.Size}}' "$image")
first=$(awk '{print $2; exit}' "$work/hits")
echo "image: $image, $runs runs, first AWS request: $first"
echo
echo "| measure | median ms | min ms | max ms |"
echo "|---|---|---|---|"
echo "| container start → first AWS request | $(stats "${container_ms[@]}") |"
echo "| \`docker run\` → first AWS request | $(stats "${run_ms[@]}") |"
echo "| bare binary → first AWS request | $(stats "${bare_ms[@]}") |"
echo
echo "image size: $size bytes ($(python3 -c "print(round($size / 1024 / 1024, 1))") MiB)"
