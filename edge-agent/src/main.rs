use std::process::ExitCode;

use clap::Parser;
use edge_agent::agent::{self, RunOptions};
use edge_agent::buffer;
use edge_agent::cli::{self, Cli, Command};

fn main() -> ExitCode {
    cascade_shared::telemetry::init_logging();
    match Cli::parse().command {
        Command::Check { config } => match cli::check(&config) {
            Ok(checked) => {
                let mut ok = true;
                for (camera, found) in cli::describe_cameras(&checked.config) {
                    match found {
                        Ok(found) => println!("camera {camera}: {found}"),
                        Err(e) => {
                            eprintln!("camera {camera}: {e}");
                            ok = false;
                        }
                    }
                }
                // Reported by `check` only: `run` recovers from it by itself.
                if let Some(damage) = buffer::recover::inspect(&checked.config.buffer.dir) {
                    eprintln!(
                        "buffer.dir: {damage}: `run` will move the file aside, keep what still \
                         reads and start a fresh buffer"
                    );
                    ok = false;
                }
                if !ok {
                    return ExitCode::FAILURE;
                }
                println!("{}: ok", config.display());
                print!("{}", checked.effective.report());
                print!("{}", checked.ladder_report());
                print!("{}", checked.providers_report());
                print!("{}", checked.power_report(false));
                print!("{}", checked.machine_report());
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!("{}", problems.report(&config));
                ExitCode::FAILURE
            }
        },
        Command::Probe {
            url,
            username,
            password_env,
            timeout_s,
        } => probe(url, username, password_env, timeout_s),
        Command::Run {
            config,
            exit_when_done,
            power_dry_run,
        } => match run(&config, exit_when_done, power_dry_run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("edge-agent: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config: &std::path::Path, exit_when_done: bool, power_dry_run: bool) -> anyhow::Result<()> {
    let checked = cli::check(config).map_err(|p| anyhow::anyhow!(p.report(config)))?;
    let plan = checked.power_report(power_dry_run);
    tracing::info!(plan = %plan.trim_end().replace('\n', "; "), "power plan");
    for note in checked.machine_report().lines().skip(1) {
        tracing::warn!(note = %note.trim_start_matches("note: "), "the machine does not match its profile");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = cascade_shared::shutdown::Shutdown::new();
        tokio::spawn(cascade_shared::shutdown::on_signals(shutdown.clone()));
        let opts = RunOptions {
            exit_when_done,
            profile: checked.profile.as_ref().map(|p| p.name.clone()),
            power: checked.profile.and_then(|p| p.power),
            power_dry_run,
        };
        agent::run(checked.config, checked.effective, shutdown, opts).await
    })?;
    Ok(())
}

fn probe(
    url: String,
    username: Option<String>,
    password_env: Option<String>,
    timeout_s: f64,
) -> ExitCode {
    if !url.contains("://") {
        return probe_device(std::path::Path::new(&url));
    }
    let source = cascade_shared::config::edge::SourceConfig::Rtsp {
        url,
        username,
        password: None,
        password_env,
        transport: cascade_shared::config::edge::RtspTransport::Tcp,
        timeout_s: std::time::Duration::from_secs_f64(timeout_s.clamp(1.0, 600.0)),
    };
    let found = match edge_agent::source::rtsp_settings(&source) {
        Some(Ok(s)) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(edge_agent::source::rtsp::probe(&s))
                    .map_err(|e| e.to_string())
            }),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("not an RTSP URL".to_string()),
    };
    match found {
        Ok(streams) => {
            for s in streams {
                println!("{s}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edge-agent probe: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `edge-agent probe /dev/videoN`: the device, its driver and every format, size and rate.
fn probe_device(path: &std::path::Path) -> ExitCode {
    match edge_agent::source::v4l2::probe(path, (1280, 720)) {
        Ok(info) => {
            println!("{info}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edge-agent probe: {e}");
            ExitCode::FAILURE
        }
    }
}
