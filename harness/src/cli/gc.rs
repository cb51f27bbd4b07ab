//! `calico-lab gc`: remove labelled containers whose run is gone.

use std::process::ExitCode;

pub async fn run() -> anyhow::Result<ExitCode> {
    let removed = calico_lab::backend::ownership::gc().await?;
    for name in &removed {
        println!("removed {name}");
    }
    println!("gc: removed {} container(s)", removed.len());
    Ok(ExitCode::SUCCESS)
}
