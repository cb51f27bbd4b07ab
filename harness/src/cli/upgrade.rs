//! `calico-lab upgrade`: the Calico upgrade gate on a lab.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use calico_lab::calico::CalicoVersion;
use calico_lab::upgrade::Upgrade;
use calico_lab::{scenario, KeepPolicy, LabOptions};

use super::progress::Display;
use super::{check_writable, write_reports, FlavorArg, TopologyArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArg,
    #[command(flatten)]
    flavor: FlavorArg,
    /// The version the lab starts at (default: the topology's `calico.version`).
    #[arg(long)]
    from: Option<CalicoVersion>,
    /// The version calico-node is rolled to, node by node.
    #[arg(long)]
    to: CalicoVersion,
    /// Run only scenarios whose name contains PATTERN (repeatable; default: all).
    #[arg(long = "scenario", short = 's', value_name = "PATTERN")]
    scenarios: Vec<String>,
    /// The longest window without replies any traffic pair may see during the
    /// rollout, in milliseconds.
    #[arg(long, default_value_t = calico_lab::upgrade::LOSS_BUDGET.as_millis() as u64)]
    loss_budget_ms: u64,
    /// Differences in the routes fail the gate too.
    #[arg(long)]
    strict: bool,
    /// Lab name (default: the topology's name).
    #[arg(long, short)]
    name: Option<String>,
    /// Keep the lab afterwards: never (default), on-failure, always.
    #[arg(long, default_value = "never")]
    keep: KeepPolicy,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as JUnit XML here (a suite per version, and the rollout's
    /// loss and the route differences as cases of a suite `upgrade`).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the report as Markdown here (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Seconds each convergence wait may take, the scenarios' own after a fault or a
    /// roll included (at least 1).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut topology = args.topology.load()?;
    if let Some(from) = args.from {
        topology.calico.version = from.to_string();
    }
    if args.flavor.dry_run(&topology, args.name.as_deref())? {
        println!("then: the scenarios at {}, calico-node rolled to {} node by node under continuous traffic, the scenarios again", topology.calico.version, args.to);
        return Ok(ExitCode::SUCCESS);
    }
    // The gate runs the suite around the upgrade: not the upgrade scenario itself.
    let mut scenarios = scenario::select(&args.scenarios)?;
    scenarios.retain(|s| s.name != scenario::UPGRADE);
    if scenarios.is_empty() {
        anyhow::bail!(
            "--scenario selects only {}: the gate needs scenarios to run around the upgrade",
            scenario::UPGRADE
        );
    }
    check_writable(args.json.iter().chain(&args.junit).chain(&args.markdown))?;
    let display = Display::new();
    let upgrade = Upgrade {
        topology,
        to: args.to,
        options: LabOptions {
            name: args.name,
            flavor: args.flavor.flavor,
            routers: args.flavor.routers,
            keep: args.keep,
            progress: display.listener(),
            ..LabOptions::default()
        },
        scenarios,
        wait: Duration::from_secs(args.wait),
        loss_budget: Duration::from_millis(args.loss_budget_ms),
        strict: args.strict,
    };
    let report = upgrade.run().await;
    display.finish();
    let report = report?;
    print!("{}", report.text());
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
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
