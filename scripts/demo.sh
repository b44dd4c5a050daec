#!/usr/bin/env bash
# The README's first command: a dry-run deploy of the bundled monorepo example, on its own.
# Builds `ecs-deploy` and runs it on the saved event of a merged `release/web1` pull request,
# with the example's config file. It prints the trigger, the plan (version, image tags, build,
# service, deployment kind) and the task-definition diff, and writes, builds, pushes and
# registers nothing.
#
# No AWS account is used: every AWS_* setting of your shell is dropped and instance metadata is
# off, so the read-only look-ups a dry run tries (the live service) say what they could not read
# and the plan goes on. To preview against a real account, run the binary yourself with your
# usual AWS environment: target/debug/ecs-deploy --dry-run ... (see README).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 \
    || { echo "cargo is missing: install Rust (https://rustup.rs) and rerun" >&2; exit 1; }

while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^AWS_' || true)
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

cargo build --quiet --locked --bin ecs-deploy
exec target/debug/ecs-deploy \
    --dry-run \
    --event fixtures/events/pr-merged-release-web1.json \
    --event-name pull_request \
    --workspace fixtures/monorepo \
    --config .github/ecs-deploy.yml \
    --sha 1a2b3c4d5e6f708192a3b4c5d6e7f80912345678 \
    "$@"
