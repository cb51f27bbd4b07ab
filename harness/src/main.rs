//! The `calico-lab` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use calico_lab::calico::{self, confd, Resources};
use calico_lab::lab::{self, MemberRole};
use calico_lab::{image, render, Error, KeepPolicy, Lab, LabOptions, Topology};
use clap::{Parser, Subcommand};

/// Leaf/spine BGP fabric + Calico lab: bring it up, check it, tear it down.
#[derive(Parser)]
#[command(name = "calico-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a topology file and print what it describes.
    Validate {
        /// Topology file (default: the embedded seed lab).
        #[arg(long, short)]
        topology: Option<PathBuf>,
    },
    /// Write every derived config (FRR, VyOS, kind, Calico resources) to a folder.
    Render {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Render what calico-node v3.23's confd writes for one node (bird.cfg,
    /// bird_aggr.cfg, bird_ipam.cfg) from Calico resources, applied in file order.
    Confd {
        /// The Calico Node to render for.
        #[arg(long)]
        node: String,
        /// Folder to write the three files to.
        #[arg(long, short)]
        out: PathBuf,
        /// Adapt the files for upstream BIRD 1.6 (drop Calico's `krt_tunnel`).
        #[arg(long)]
        upstream_bird: bool,
        /// Calico v3 resources and BlockAffinity objects (YAML, `---` separated, `*List` forms too).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Bring a lab up and leave it running.
    Up {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        /// Lab name (default: the topology's name).
        #[arg(long, short)]
        name: Option<String>,
        /// Seconds to wait for every fabric BGP session to be Established.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
    /// Remove a lab's containers.
    Down {
        /// Lab name (default: the topology's name).
        #[arg(long, short)]
        name: Option<String>,
        #[arg(long, short)]
        topology: Option<PathBuf>,
    },
    /// Remove every labelled container whose run is gone (never unlabelled ones).
    Gc,
    /// Build the emulated image unless the engine has it; print its tag.
    Image,
    /// Measure the lab engine and print figures.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Image build (cold with --cold, cached), fabric up to Established, teardown.
    Up {
        #[arg(long, short)]
        topology: Option<PathBuf>,
        /// Remove the image first, to time a cold build.
        #[arg(long)]
        cold: bool,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "calico_lab=info,calico_lab_cli=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let code = match err.downcast_ref::<Error>() {
                Some(e) if e.is_input() => 2,
                Some(e) if e.is_environment() => 3,
                _ => 1,
            };
            ExitCode::from(code)
        }
    }
}

fn load(topology: Option<&PathBuf>) -> Result<Topology, Error> {
    Ok(Topology::load_or_seed(topology.map(PathBuf::as_path))?)
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Validate { topology } => {
            let t = load(topology.as_ref())?;
            println!(
                "topology '{}' is valid: {} spines, {} leafs, {} racks, {} nodes, {} links",
                t.name,
                t.spines.len(),
                t.leafs.len(),
                t.racks.len(),
                t.nodes().count(),
                t.links.len()
            );
        }
        Command::Render { topology, out } => {
            let t = load(topology.as_ref())?;
            let written = render::write_all(&t, &out)
                .with_context(|| format!("writing renders to {}", out.display()))?;
            for path in written {
                println!("{}", path.display());
            }
        }
        Command::Confd {
            node,
            out,
            upstream_bird,
            files,
        } => {
            let mut resources = Resources::default();
            for file in &files {
                resources
                    .apply(calico::resources::load(file).map_err(Error::from)?)
                    .map_err(Error::from)?;
            }
            let mut bird =
                confd::render(&resources, &node).map_err(|e| Error::Input(e.to_string()))?;
            if upstream_bird {
                bird = calico::bird::upstream(&bird);
            }
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for (name, text) in bird.files() {
                let path = out.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
        }
        Command::Up {
            topology,
            name,
            wait,
        } => {
            let t = load(topology.as_ref())?;
            // Torn down when bring-up fails or is interrupted; released once up.
            let options = LabOptions {
                name,
                keep: KeepPolicy::Never,
                detached: true,
                ..LabOptions::default()
            };
            let up = Lab::up(t, options);
            tokio::pin!(up);
            let lab = tokio::select! {
                result = &mut up => result?,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted: finishing the step under way, then removing what was created");
                    // Dropping `up` mid-request could let the engine create a container
                    // after the teardown listed them; the finished lab drops cleanly.
                    drop(up.await);
                    anyhow::bail!("interrupted: removed what was created");
                }
            };
            let took = tokio::select! {
                result = lab.wait_for_fabric(Duration::from_secs(wait)) => result?,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: removed what was created"),
            };
            let calico = tokio::select! {
                result = lab.wait_for_calico(Duration::from_secs(wait)) => result?,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: removed what was created"),
            };
            print_members(&lab);
            println!(
                "fabric BGP sessions Established {:.1} s after the routers started; calico-node sessions {:.1} s later",
                took.as_secs_f64(),
                calico.as_secs_f64()
            );
            println!("remove it with: calico-lab down --name {}", lab.name());
            lab.release();
        }
        Command::Down { name, topology } => {
            let name = match name {
                Some(name) => name,
                None => load(topology.as_ref())?.name,
            };
            let removed = lab::down(&name).await?;
            println!("lab {name}: removed {} container(s)", removed.len());
        }
        Command::Gc => {
            let removed = lab::gc().await?;
            for name in &removed {
                println!("removed {name}");
            }
            println!("gc: removed {} container(s)", removed.len());
        }
        Command::Image => {
            let docker = calico_lab::docker::connect().await?;
            let report = image::ensure_image(&docker).await?;
            println!(
                "{} ({}, {:.1} s)",
                report.tag, report.method, report.seconds
            );
        }
        Command::Bench {
            what:
                BenchWhat::Up {
                    topology,
                    cold,
                    runs,
                },
        } => {
            bench_up(load(topology.as_ref())?, cold, runs.max(1)).await?;
        }
    }
    Ok(())
}

fn print_members(lab: &Lab) {
    println!("lab {} (run {}):", lab.name(), lab.run_id());
    println!("  {:<36} {:<30} ROLE", "CONTAINER", "DEVICE");
    for m in lab.members() {
        println!("  {:<36} {:<30} {}", m.container, m.device, m.role.as_str());
    }
}

async fn bench_up(t: Topology, cold: bool, runs: usize) -> anyhow::Result<()> {
    let docker = calico_lab::docker::connect().await?;
    if cold {
        let tag = image::image_tag();
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        let _ = docker.remove_image(&tag, Some(options), None).await;
        let report = image::ensure_image(&docker).await?;
        println!(
            "image build, cold ({}): {:.1} s",
            report.method, report.seconds
        );
    }
    let started = Instant::now();
    image::ensure_image(&docker).await?;
    println!(
        "image lookup, cached: {:.3} s",
        started.elapsed().as_secs_f64()
    );

    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for i in 0..runs {
        let options = LabOptions {
            name: Some(format!("bench-{}", std::process::id())),
            ..Default::default()
        };
        let started = Instant::now();
        let lab = Lab::up(t.clone(), options).await?;
        lab.wait_for_fabric(Duration::from_secs(60)).await?;
        let up = started.elapsed();
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
            "run {}: {members} containers ({routers} routers): up to all fabric sessions Established {:.2} s (containers {:.2}, wiring {:.2}, FRR start {:.2}); teardown {:.2} s",
            i + 1,
            up.as_secs_f64(),
            timings.containers.as_secs_f64(),
            timings.wiring.as_secs_f64(),
            timings.routers.as_secs_f64(),
            down.as_secs_f64()
        );
        ups.push(up);
        downs.push(down);
    }
    ups.sort();
    downs.sort();
    println!(
        "fabric up + Established: median {:.2} s, max {:.2} s (target <= 10 s)",
        ups[ups.len() / 2].as_secs_f64(),
        ups[ups.len() - 1].as_secs_f64()
    );
    println!(
        "teardown: median {:.2} s, max {:.2} s (target <= 5 s)",
        downs[downs.len() / 2].as_secs_f64(),
        downs[downs.len() - 1].as_secs_f64()
    );
    Ok(())
}
