use std::process::ExitCode;

use clap::Parser;
use cloud_analyzer::cli::{self, Cli, Command};

fn main() -> ExitCode {
    cascade_shared::telemetry::init_logging();
    match Cli::parse().command {
        Command::Check { config } => {
            match cli::check(&config).and_then(|cfg| cli::server_answers(&cfg)) {
                Ok(server) => {
                    if let Some(line) = server {
                        println!("inference server: {line}");
                    }
                    println!("{}: ok", config.display());
                    ExitCode::SUCCESS
                }
                Err(problems) => {
                    eprintln!("{}", problems.report(&config));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token { name, scope } => match cli::new_token(&name, &scope) {
            Some((token, lines)) => {
                eprintln!("token for {name} (shown once; keep it secret):");
                println!("{token}");
                eprintln!("\nadd to the analyzer's config:\n{lines}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("cloud-analyzer token: --scope must be read or admin, not {scope:?}");
                ExitCode::FAILURE
            }
        },
        Command::Pki { command } => match cli::pki(command) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cloud-analyzer pki: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => match run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cloud-analyzer: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config: &std::path::Path) -> anyhow::Result<()> {
    let cfg = cli::check(config).map_err(|p| anyhow::anyhow!(p.report(config)))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = cascade_shared::shutdown::Shutdown::new();
        tokio::spawn(cascade_shared::shutdown::on_signals(shutdown.clone()));
        cloud_analyzer::analyzer::run(cfg, shutdown).await
    })?;
    Ok(())
}
