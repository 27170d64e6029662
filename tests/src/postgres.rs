//! A real PostgreSQL server for tests, from Debian's packages (`postgresql`): `initdb` in a temp
//! dir, listening on a free loopback port (and a Unix socket in the same dir), `trust` auth, run
//! as the `postgres` user when the tests run as root (PostgreSQL refuses root), stopped on drop.
//! Tests that need it skip, saying so on stderr, when it is not installed (under `CI=true` that
//! is a failure: CI installs it through `scripts/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::free_port;

/// A running PostgreSQL server in a temp dir.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, or `CASCADE_PG_BIN`.
pub fn postgres_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CASCADE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    let bin = found.pop().map(|(_, b)| b);
    if bin.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "PostgreSQL is not installed, and CI must run the PostgreSQL tests"
        );
        eprintln!(
            "SKIPPED: PostgreSQL is not installed (apt-get install postgresql, or run scripts/setup.sh)"
        );
    }
    bin
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Postgres {
    /// Starts a fresh server, or `None` (said on stderr) when PostgreSQL is not installed.
    pub fn start() -> anyhow::Result<Option<Self>> {
        let Some(bin) = postgres_bin() else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new().prefix("cascade-pg").tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        let mut pg = Self {
            port: 0,
            bin,
            data,
            as_postgres,
            _dir: dir,
        };
        let data = pg.data.display().to_string();
        pg.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let mut last = None;
        for _ in 0..3 {
            pg.port = free_port();
            match pg.pg_ctl_start() {
                Ok(()) => return Ok(Some(pg)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let dir = self.socket_dir();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=50",
            self.port,
            dir.display()
        );
        let log = dir.join("postgres.log").display().to_string();
        let data = self.data.display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &opts, "-w", "-t", "30", "start",
            ],
        )
        .map(|_| ())
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::anyhow!("{e}\n{log}")
        })
    }

    fn socket_dir(&self) -> &Path {
        self.data.parent().unwrap_or(&self.data)
    }

    /// Runs one of the server's programs (as `postgres` when root).
    fn pg(&self, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args);
        run(&mut cmd)
    }

    /// A new, empty database; its connection string.
    pub fn create_db(&self, name: &str) -> anyhow::Result<String> {
        let port = self.port.to_string();
        self.pg(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name],
        )?;
        Ok(self.url(name))
    }

    /// The connection string of database `name` over loopback TCP.
    pub fn url(&self, name: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={name}",
            self.port
        )
    }

    /// Runs SQL through `psql` (tab-separated rows, no headers).
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let port = self.port.to_string();
        let out = self.pg(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-AtF",
                "\t",
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}
