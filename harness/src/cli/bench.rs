//! `calico-lab bench`: figures for the lab engine (image, bring-up phases,
//! convergence, teardown). Figures, not assertions.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use calico_lab::backend::{docker, image, MemberRole};
use calico_lab::{Lab, LabOptions};

use super::TopologyArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Image build (cold with --cold, cached), fabric up to Established, calico-node
    /// sessions, every expected route, teardown.
    Up {
        #[command(flatten)]
        topology: TopologyArg,
        /// Remove the image first, to time a cold build.
        #[arg(long)]
        cold: bool,
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
        runs: u64,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let What::Up {
        topology,
        cold,
        runs,
    } = args.what;
    let t = topology.load()?;
    let engine = docker::connect().await?;
    if cold {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        // Absent already is as good as removed.
        let _ = engine
            .remove_image(&image::image_tag(), Some(options), None)
            .await;
        let report = image::ensure_image(&engine).await?;
        println!(
            "image build, cold ({}): {:.1} s",
            report.method, report.seconds
        );
    }
    let started = Instant::now();
    image::ensure_image(&engine).await?;
    println!(
        "image lookup, cached: {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let (mut ups, mut alls, mut downs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let options = LabOptions {
            name: Some(format!("bench-{}", std::process::id())),
            ..Default::default()
        };
        let started = Instant::now();
        let lab = Lab::up(t.clone(), options).await?;
        let budget = Duration::from_secs(60);
        lab.wait_for_fabric(budget).await?;
        let up = started.elapsed();
        lab.wait_for_calico(budget).await?;
        let calico = started.elapsed();
        lab.converge(budget).await?;
        let converged = started.elapsed();
        let timings = lab.timings.clone();
        let members = lab.members().len();
        let routers = lab
            .members()
            .iter()
            .filter(|m| m.role == MemberRole::Router)
            .count();
        let started = Instant::now();
        lab.down().await?;
        let down = started.elapsed();
        println!(
            "run {}: {members} containers ({routers} routers): up to all fabric sessions Established {:.2} s (containers {:.2}, wiring {:.2}, FRR start {:.2}, BIRD and pods {:.2}); calico-node sessions Established {:.2} s; every expected route {:.2} s; teardown {:.2} s",
            i + 1,
            up.as_secs_f64(),
            timings.containers.as_secs_f64(),
            timings.wiring.as_secs_f64(),
            timings.routers.as_secs_f64(),
            timings.nodes.as_secs_f64(),
            calico.as_secs_f64(),
            converged.as_secs_f64(),
            down.as_secs_f64()
        );
        ups.push(up);
        alls.push(converged);
        downs.push(down);
    }
    for (what, list) in [
        ("fabric up + Established", &mut ups),
        (
            "lab start to every session Established and every route installed",
            &mut alls,
        ),
        ("teardown", &mut downs),
    ] {
        list.sort();
        println!(
            "{what}: median {:.2} s, max {:.2} s",
            list[list.len() / 2].as_secs_f64(),
            list[list.len() - 1].as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
