#!/usr/bin/env bash
# The README's first command: the main job on the bundled monorepo example, on this machine alone.
#
#   scripts/demo.sh            deploys web1 for real, to a local stand-in for AWS (moto)
#   scripts/demo.sh --dry-run  the plan and the task-definition diff only; nothing is started
#
# Both run `ecs-deploy` on the saved event of a merged `release/web1` pull request
# (fixtures/events/pr-merged-release-web1.json) over the example monorepo (fixtures/monorepo) with
# its config file.
#
# The deploy: installs the test bed if needed (scripts/setup-testbed.sh: moto's server in
# .testbed/venv), starts moto on 127.0.0.1 with the cluster `prod` and the service `web1` the
# example names (its task definition file as revision 1), and a local recorder standing in for
# Slack's webhook. Then the binary registers web1:2 with the image v1.2.3, updates the service,
# waits for the rollout, and tells the recorder; the script prints the log, the job summary, the
# outputs, the Slack message as received and where the service stands. moto never moves a rollout
# by itself: it is started with MOTO_ECS_SERVICE_RUNNING=2, so it reports the service's two tasks
# as running and the wait ends when ECS's rollout would. The image is given (`--image`), as one
# built elsewhere: nothing is built or pushed (that needs a Docker engine and a registry; see
# tests/it/image.rs). Everything it started is stopped and removed on exit.
#
# No AWS account is used either way: every AWS_* setting of your shell is dropped, the SDK gets
# dummy keys, and instance metadata is off, so nothing probes for credentials. Extra arguments go
# to the binary (e.g. `--wait-for-minutes 5`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dry_run=false
args=()
for arg in "$@"; do
    if [ "$arg" = "--dry-run" ]; then dry_run=true; else args+=("$arg"); fi
done

# ECS_DEPLOY_DEMO_BIN: a binary already built (the test of this script, tests/it/foundation.rs,
# runs inside `cargo test`, which holds cargo's build lock); else cargo builds it here.
bin=${ECS_DEPLOY_DEMO_BIN:-}
if [ -z "$bin" ]; then
    command -v cargo >/dev/null 2>&1 \
        || { echo "cargo is missing: install Rust (https://rustup.rs) and rerun" >&2; exit 1; }
    cargo build --quiet --locked --bin ecs-deploy
    bin=target/debug/ecs-deploy
fi

while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^AWS_' || true)
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
# The GitHub runner's files, when this runs inside a workflow: the demo writes its own.
unset GITHUB_OUTPUT GITHUB_STEP_SUMMARY


# The example's run, as the Actions runner would start it for that event (the workspace: the
# example monorepo, fixtures/monorepo, or the deploy's copy of it).
example=(
    --event fixtures/events/pr-merged-release-web1.json
    --event-name pull_request
    --config .github/ecs-deploy.yml
    --sha 1a2b3c4d5e6f708192a3b4c5d6e7f80912345678
)

if [ "$dry_run" = true ]; then
    # No credentials at all: the read-only look-ups say what they could not read and go on.
    exec "$bin" --dry-run --workspace fixtures/monorepo "${example[@]}" "${args[@]}"
fi

scripts/setup-testbed.sh >/dev/null
python=.testbed/venv/bin/python
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until a server wrote its port to $1 and answers $2 on it; prints the port.
wait_port() {
    local file=$1 path=$2 i
    for i in $(seq 1 150); do
        if [ -s "$file" ] && "$python" -c 'import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}{sys.argv[2]}", timeout=1)
except urllib.error.HTTPError:
    pass  # it answered' "$(cat "$file")" "$path" 2>/dev/null; then
            cat "$file"
            return 0
        fi
        sleep 0.2
    done
    echo "[demo] a server did not come up in 30 s; its log:" >&2
    cat "$work"/*.log >&2 || true
    return 1
}

# moto on a free port (the port 0 trick, then handed over), its log kept out of the output.
moto_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_ECS_SERVICE_RUNNING=2 .testbed/venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" \
    >"$work/moto.log" 2>&1 &
pids+=($!)
echo "$moto_port" >"$work/moto.port"
wait_port "$work/moto.port" /moto-api/ >/dev/null
endpoint="http://127.0.0.1:$moto_port"
echo "[demo] moto (a local AWS) on $endpoint, reporting a service's tasks as running (MOTO_ECS_SERVICE_RUNNING=2)"

"$python" -u scripts/demo-recorder.py "$work/slack.port" >"$work/slack.out" 2>"$work/slack.log" &
pids+=($!)
slack_port=$(wait_port "$work/slack.port" /)
echo "[demo] Slack recorder on http://127.0.0.1:$slack_port"

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=ap-northeast-2
export AWS_ENDPOINT_URL="$endpoint"
"$python" scripts/demo-aws.py workspace "$work/monorepo"
"$python" scripts/demo-aws.py setup "$endpoint" "$work/monorepo"

echo "[demo] running: $bin ${example[*]} --workspace $work/monorepo --image ... --slack-webhook-url ..."
echo
status=0
GITHUB_OUTPUT="$work/outputs" GITHUB_STEP_SUMMARY="$work/summary.md" \
    "$bin" "${example[@]}" --workspace "$work/monorepo" \
    --image 123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web1:v1.2.3 \
    --slack-webhook-url "http://127.0.0.1:$slack_port/services/T000/B000/demo" \
    --wait-for-minutes 2 \
    "${args[@]}" || status=$?

echo
echo "=== the job summary (GITHUB_STEP_SUMMARY) ==="
cat "$work/summary.md" 2>/dev/null || echo "(none written)"
echo
echo "=== the outputs (GITHUB_OUTPUT; the empty ones left out) ==="
# The file holds `name<<delimiter`, the value's lines, then the delimiter, as the runner reads it.
"$python" - "$work/outputs" <<'PY' || echo "(none written)"
import sys
lines = open(sys.argv[1]).read().split("\n")
i = 0
while i < len(lines) and "<<" in lines[i]:
    name, delimiter = lines[i].split("<<", 1)
    end = lines.index(delimiter, i + 1)
    value = "\n".join(lines[i + 1 : end])
    if value:
        print(f"{name}: {value}")
    i = end + 1
PY
echo
echo "=== what the Slack recorder received ==="
if [ -s "$work/slack.out" ]; then cat "$work/slack.out"; else echo "(nothing)"; fi
echo
echo "=== where the service stands ==="
"$python" scripts/demo-aws.py status "$endpoint" "$work/monorepo"
echo
echo "[demo] ecs-deploy exited $status; moto and the recorder are stopped now"
exit "$status"
