#!/usr/bin/env bash
# Regenerates action.yml and docs/src/inputs.md from the spec table (src/inputs/spec.rs), the
# contract's one source; tests/it/action_contract.rs fails when either differs from what this
# writes. action.yml keeps the image it runs (`Dockerfile`, or the digest a release pinned);
# `scripts/contract.sh --image docker://…@sha256:…` pins another (release.yml does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
image=$(sed -n 's/^  image: //p' action.yml)
if [ "${1:-}" = "--image" ]; then
    image="${2:?--image needs a docker://…@sha256:… reference}"
fi
bin=(cargo run --quiet --locked --bin ecs-deploy --)
if [ -n "${ECS_DEPLOY_BIN:-}" ]; then bin=("$ECS_DEPLOY_BIN"); fi
"${bin[@]}" contract action-yml --image "$image" > action.yml.new
mkdir -p docs/src
"${bin[@]}" contract inputs-md > docs/src/inputs.md.new
mv action.yml.new action.yml
mv docs/src/inputs.md.new docs/src/inputs.md
