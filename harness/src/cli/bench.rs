//! `calico-lab bench`: figures for the lab engine (bring-up phases, sessions,
//! routes, teardown, memory; the seed against the minimal script; generated
//! fabrics). Figures, not assertions.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use calico_lab::backend::{docker, image, MemberRole};
use calico_lab::bench::{memory, minimal, Memory};
use calico_lab::topology::generate::Shape;
use calico_lab::{Lab, LabOptions, Topology};

use super::TopologyArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: Option<What>,
    /// Runs of each lab (medians reported).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Generated fabrics besides the seed, as RACKSxNODES_PER_RACK (two spines).
    #[arg(long, value_delimiter = ',', default_value = "8x8,16x8,32x8")]
    sizes: Vec<Size>,
}

#[derive(clap::Subcommand)]
enum What {
    /// One topology: image build (cold with --cold), fabric up to Established,
    /// calico-node sessions, every expected route, teardown.
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

/// A generated fabric's size.
#[derive(Debug, Clone, Copy)]
struct Size {
    racks: u32,
    nodes_per_rack: u32,
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not RACKSxNODES_PER_RACK (e.g. 16x8)");
        let (r, n) = s.split_once('x').ok_or_else(bad)?;
        Ok(Size {
            racks: r.parse().map_err(|_| bad())?,
            nodes_per_rack: n.parse().map_err(|_| bad())?,
        })
    }
}

/// One bring-up, measured.
struct Figures {
    members: usize,
    routers: usize,
    timings: calico_lab::backend::emulated::UpTimings,
    fabric: Duration,
    established: Duration,
    routes: Duration,
    down: Duration,
    memory: Memory,
}

impl Figures {
    fn line(&self) -> String {
        let t = &self.timings;
        format!(
            "{} containers ({} routers): started {:.2} s (containers {:.2}, wiring {:.2}, FRR, BIRD and pods {:.2}); every session Established {:.2} s; fabric routes {:.2} s; every route {:.2} s; teardown {:.2} s; memory {} MiB anonymous, {} MiB charged",
            self.members,
            self.routers,
            (t.containers + t.wiring + t.daemons).as_secs_f64(),
            t.containers.as_secs_f64(),
            t.wiring.as_secs_f64(),
            t.daemons.as_secs_f64(),
            self.established.as_secs_f64(),
            self.fabric.as_secs_f64(),
            self.routes.as_secs_f64(),
            self.down.as_secs_f64(),
            self.memory.anon_bytes >> 20,
            self.memory.charged_bytes >> 20,
        )
    }
}

/// Brings `t` up, waits for each phase (60 s each), reads memory, tears down.
async fn measure(t: &Topology, name: String) -> anyhow::Result<Figures> {
    let options = LabOptions {
        name: Some(name),
        ..Default::default()
    };
    let started = Instant::now();
    let lab = Lab::up(t.clone(), options).await?;
    let budget = Duration::from_secs(60);
    lab.wait_for_sessions(budget).await?;
    let established = started.elapsed();
    lab.wait_for_fabric(budget).await?;
    let fabric = started.elapsed();
    lab.converge(budget).await?;
    let routes = started.elapsed();
    let memory = memory(&lab).await?;
    let (members, routers) = (
        lab.members().len(),
        lab.members()
            .iter()
            .filter(|m| m.role == MemberRole::Router)
            .count(),
    );
    let timings = lab.timings.clone();
    let started = Instant::now();
    lab.down().await?;
    Ok(Figures {
        members,
        routers,
        timings,
        fabric,
        established,
        routes,
        down: started.elapsed(),
        memory,
    })
}

fn median(mut list: Vec<Duration>) -> Duration {
    list.sort();
    list[list.len() / 2]
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        Some(What::Up {
            topology,
            cold,
            runs,
        }) => up(topology.load()?, cold, runs).await,
        None => all(args.runs, &args.sizes).await,
    }
}

/// The seed against the minimal script (alternating), then each generated size.
async fn all(runs: u64, sizes: &[Size]) -> anyhow::Result<ExitCode> {
    let engine = docker::connect().await?;
    let started = Instant::now();
    image::ensure_image(&engine).await?;
    println!("image ready: {:.1} s", started.elapsed().as_secs_f64());
    let seed = Topology::seed();
    let (mut harness, mut plain) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let base = minimal(&seed, &format!("bench-minimal-{}", std::process::id())).await?;
        println!(
            "seed, minimal script (bench/minimal.sh), run {}: started {:.2} s; every session Established {:.2} s",
            i + 1,
            base.started.as_secs_f64(),
            base.established.as_secs_f64()
        );
        let f = measure(&seed, format!("bench-{}", std::process::id())).await?;
        println!("seed, calico-lab, run {}: {}", i + 1, f.line());
        plain.push(base.established);
        harness.push(f.established);
    }
    let (h, p) = (median(harness), median(plain));
    println!(
        "seed: start to every session Established: calico-lab {:.2} s, minimal script {:.2} s, ratio {:.2}",
        h.as_secs_f64(),
        p.as_secs_f64(),
        h.as_secs_f64() / p.as_secs_f64()
    );
    for size in sizes {
        let shape = Shape::leaf_spine(size.racks, size.nodes_per_rack, 2);
        let t = shape.topology().map_err(calico_lab::Error::from)?;
        for i in 0..runs {
            let f = measure(&t, format!("bench-{}", std::process::id())).await?;
            println!(
                "{}x{} ({} nodes), run {}: {}",
                size.racks,
                size.nodes_per_rack,
                t.nodes().count(),
                i + 1,
                f.line()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn up(t: Topology, cold: bool, runs: u64) -> anyhow::Result<ExitCode> {
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
        let f = measure(&t, format!("bench-{}", std::process::id())).await?;
        println!("run {}: {}", i + 1, f.line());
        ups.push(f.fabric);
        alls.push(f.routes);
        downs.push(f.down);
    }
    for (what, list) in [
        ("fabric up + Established", ups),
        (
            "lab start to every session Established and every route installed",
            alls,
        ),
        ("teardown", downs),
    ] {
        let max = list.iter().max().copied().unwrap_or_default();
        println!(
            "{what}: median {:.2} s, max {:.2} s",
            median(list).as_secs_f64(),
            max.as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
