//! `calico-lab run`: the main job, its report on the terminal and in files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use calico_lab::job::{self, Job};
use calico_lab::{scenario, Error, KeepPolicy, LabOptions};

use super::progress::Display;
use super::{check_writable, write_reports, FlavorArg, TopologyArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArg,
    #[command(flatten)]
    flavor: FlavorArg,
    /// Run only scenarios whose name contains PATTERN (repeatable; default: all).
    #[arg(long = "scenario", short = 's', value_name = "PATTERN")]
    scenarios: Vec<String>,
    /// Only the scenarios that read the lab (no faults, mesh switch or upgrade): the
    /// quick gate.
    #[arg(long)]
    read_only: bool,
    /// Keep the lab afterwards: never (default), on-failure, always.
    #[arg(long, default_value = "never")]
    keep: KeepPolicy,
    /// Lab name (default: the topology's name).
    #[arg(long, short)]
    name: Option<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the report as Markdown here (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Keep a record of every command the run issued and its answer in this folder
    /// (what `Replay` reads to judge the run again offline).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Seconds each convergence wait may take, the scenarios' own after a fault or a
    /// roll included (at least 1).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
    /// How many labs may run at once: above 1, the scenarios that change the lab run
    /// on labs beside the main one (`<name>-1`, ...), the longest first, each lab
    /// taking the next when free (a fresh one after a failure); 1 runs every
    /// scenario on one lab, one after another (default: two per core for a lab the
    /// seed's size, fewer for bigger ones, 1 on kind or with --record).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    labs: Option<u64>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let topology = args.topology.load()?;
    if args.flavor.dry_run(&topology, args.name.as_deref())? {
        return Ok(ExitCode::SUCCESS);
    }
    let mut scenarios = scenario::select(&args.scenarios)?;
    if args.read_only {
        scenarios.retain(|s| !s.disrupts);
        if scenarios.is_empty() {
            return Err(Error::Unsupported(
                "--read-only leaves no scenario: every one selected changes the lab".into(),
            )
            .into());
        }
    }
    // An unwritable report path is the user's input: refuse it before the lab starts.
    check_writable(args.json.iter().chain(&args.junit).chain(&args.markdown))?;
    let display = Display::new();
    let labs = args.labs.map_or_else(
        || job::default_labs(&topology, args.flavor.flavor),
        |n| usize::try_from(n).unwrap_or(usize::MAX),
    );
    let job = Job {
        topology,
        options: LabOptions {
            name: args.name,
            flavor: args.flavor.flavor,
            routers: args.flavor.routers,
            keep: args.keep,
            record: args.record,
            progress: display.listener(),
            ..LabOptions::default()
        },
        scenarios,
        wait: Duration::from_secs(args.wait),
        labs,
    };
    let report = job.run().await;
    display.finish();
    let report = report?;
    // The reachability matrix, passed or failed.
    for o in report
        .outcomes
        .iter()
        .filter(|o| o.name == "all_pairs_reachability")
    {
        let matrix = o.failure.as_ref().map_or(&o.report, |f| &f.detail);
        println!("{matrix}");
    }
    println!("{}", report.table());
    let markdown = report.markdown();
    let reports = [
        (
            args.json.as_ref(),
            "JSON",
            serde_json::to_string_pretty(&report.json())?,
        ),
        (args.junit.as_ref(), "JUnit", report.junit()),
        (args.markdown.as_ref(), "Markdown", markdown.clone()),
    ];
    write_reports(&reports, &markdown)?;
    if !report.all_passed() {
        let (_, failed, _) = report.counts();
        return Err(Error::ScenariosFailed {
            failed,
            total: report.outcomes.len(),
        })
        .context("see the table above and the artifact folders");
    }
    Ok(ExitCode::SUCCESS)
}
