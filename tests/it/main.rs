//! Integration tests, one binary with one module per capability (one link step on 2 cores).
//! Shared helpers live in `support` (moto server, local registry, `ecs-deploy` runner).

mod action_contract;
mod bluegreen;
mod codedeploy;
mod container;
mod deploy_action_cases;
mod deploy_rolling;
mod faults;
mod foundation;
mod hostile;
mod iam_policy;
mod image;
mod kubernetes;
mod layers;
mod matrix;
mod migration;
mod migration_image;
mod pause_hook;
mod preflight;
mod readme;
mod release_notes;
mod report;
mod support;
mod testbed;
mod verify;
mod workflow_hardening;
