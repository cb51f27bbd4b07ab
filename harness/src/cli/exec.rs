//! `calico-lab exec`: a command on a router, a node or in a pod; its exit code.

use std::process::ExitCode;

use super::LabArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lab: LabArg,
    /// Device or pod name.
    target: String,
    /// The command, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let lab = args.lab.attach().await?;
    let target = lab.target(&args.target)?;
    let words: Vec<&str> = args.command.iter().map(String::as_str).collect();
    let out = lab.exec(&target, &words).await?;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    Ok(ExitCode::from(
        u8::try_from(out.exit_code.clamp(0, 255)).unwrap_or(1),
    ))
}
