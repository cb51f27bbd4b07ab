//! `calico-lab image`: build the emulated image unless the engine has it.

use std::process::ExitCode;

use calico_lab::backend::{docker, image};

pub async fn run() -> anyhow::Result<ExitCode> {
    let engine = docker::connect().await?;
    let report = image::ensure_image(&engine).await?;
    println!(
        "{} ({}, {:.1} s)",
        report.tag, report.method, report.seconds
    );
    Ok(ExitCode::SUCCESS)
}
