//! Benchmark of every deployment wait (rolling, CodeDeploy, ECS blue/green): how soon after a
//! deployment ends the action notices (detection lag), and how many describe calls a minute it
//! costs per cluster, for 1 service and for 10 services deploying together.
//!
//! The AWS side is scripted (aws-smithy-mocks, answering at once) and plays each path's real
//! timeline (see each module). It runs on tokio's paused clock: the CodeDeploy and blue/green
//! timelines last 6 to 12 minutes, which take no wall time here, and the lag is exact (what a
//! run would see, minus the AWS calls' own latency). The deployments of a scenario end
//! `STAGGER` (1.3 s) apart, so the lag is sampled across the polling interval.
//!
//! Run: `cargo bench --bench wait --profile dev` (the progress lines, then a Markdown table).

#[path = "wait/bluegreen.rs"]
mod bluegreen;
#[path = "wait/codedeploy.rs"]
mod codedeploy;
#[path = "wait/common.rs"]
mod common;
#[path = "wait/rolling.rs"]
mod rolling;

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let (rolling, rolling_fixed, codedeploy, bluegreen) = tokio::join!(
        rolling::scenarios(rolling::adaptive()),
        rolling::scenarios(rolling::fixed_15s()),
        codedeploy::scenarios(codedeploy::production()),
        bluegreen::scenarios(bluegreen::production()),
    );
    println!();
    println!("## wait benchmark");
    println!("{}", common::HEADER);
    let rows = [
        ("rolling", rolling),
        ("rolling, fixed 15 s poll", rolling_fixed),
        ("CodeDeploy canary", codedeploy),
        ("ECS blue/green", bluegreen),
    ];
    for (path, (one, ten)) in rows {
        println!("{}", common::row(path, "1 service", &one));
        println!("{}", common::row(path, "10 services", &ten));
    }
}
