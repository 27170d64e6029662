use std::process::ExitCode;

use clap::Parser;
use edge_agent::agent::{self, RunOptions};
use edge_agent::cli::{self, Cli, Command};

fn main() -> ExitCode {
    cascade_shared::telemetry::init_logging();
    match Cli::parse().command {
        Command::Check { config } => match cli::check(&config) {
            Ok(checked) => {
                println!("{}: ok", config.display());
                print!("{}", checked.effective.report());
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!("{}", problems.report(&config));
                ExitCode::FAILURE
            }
        },
        Command::Run {
            config,
            exit_when_done,
        } => match run(&config, exit_when_done) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("edge-agent: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config: &std::path::Path, exit_when_done: bool) -> anyhow::Result<()> {
    let checked = cli::check(config).map_err(|p| anyhow::anyhow!(p.report(config)))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = cascade_shared::shutdown::Shutdown::new();
        tokio::spawn(cascade_shared::shutdown::on_signals(shutdown.clone()));
        let opts = RunOptions { exit_when_done };
        agent::run(checked.config, checked.effective, shutdown, opts).await
    })?;
    Ok(())
}
