//! The `calico-lab` binary: parses the command line, runs the command until it
//! ends or a signal stops it, and exits with the code its error calls for.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "calico_lab=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    // A signal drops the command's future: a lab it was bringing up or running is
    // torn down by its drop before the error is printed.
    let result = runtime.block_on(async {
        tokio::select! {
            result = cli::run(cli.command) => result,
            e = calico_lab::interrupt::received() => Err(e.into()),
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            // Each cause once: some messages already hold their source's text.
            let mut message = err.to_string();
            for cause in err.chain().skip(1) {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message = format!("{message}: {text}");
                }
            }
            eprintln!("error: {message}");
            let code = err
                .chain()
                .find_map(|e| e.downcast_ref::<calico_lab::Error>())
                .map_or(1, calico_lab::Error::exit_code);
            ExitCode::from(code)
        }
    }
}
