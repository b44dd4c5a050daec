#!/usr/bin/env bash
# The README's test command: installs the offline test bed (moto server in a venv, Debian's
# docker-registry, htpasswd), then runs the whole test suite (`cargo test`) against local
# stand-ins only: moto, the registry, wiremock servers and the machine's Docker engine, all on
# 127.0.0.1. It also builds the local action image (scripts/local-action-image.sh) that the
# container-as-runner tests start. Extra arguments go to `cargo test` (e.g.
# `scripts/test.sh foundation`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-testbed.sh

# Never reach real AWS: drop every AWS_* setting (profiles, endpoints, tokens, roles) and give
# the SDK dummy credentials, a region, no instance metadata and no config files.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^AWS_' || true)
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null

# The container-as-runner tests (tests/it/container.rs) run the local action image: build it
# once here, before the suite, so its release-mode compile does not compete with the tests.
if [ -z "${ECS_DEPLOY_TEST_ACTION_IMAGE:-}" ]; then
    echo "[test] building the local action image (scripts/local-action-image.sh)"
    ECS_DEPLOY_TEST_ACTION_IMAGE=$(scripts/local-action-image.sh --tag ecs-deploy-action:test)
    export ECS_DEPLOY_TEST_ACTION_IMAGE
fi

cargo test --locked "$@"
