//! A fleet PKI made by the real `cloud-analyzer pki` commands, for broker tests: a CA and a server
//! certificate for localhost, then any client identity on demand.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Certs, Mosquitto};

/// A CA folder made by `cloud-analyzer pki init`, with a server certificate for the broker.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub dir: PathBuf,
}

impl Fleet {
    /// `pki init` in `dir`, then `pki issue-server --host localhost --host 127.0.0.1`.
    pub fn init(dir: &Path) -> anyhow::Result<Fleet> {
        let fleet = Fleet {
            dir: dir.to_path_buf(),
        };
        fleet.run(&["init"])?;
        fleet.run(&["issue-server", "--host", "localhost", "--host", "127.0.0.1"])?;
        Ok(fleet)
    }

    /// Runs `cloud-analyzer pki ARGS --dir DIR`: its stdout, or an error with its stderr.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(crate::binary("cloud-analyzer"))
            .arg("pki")
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(out.status.success(), "pki {args:?}: {stderr}");
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The CA's revocation list, for Mosquitto's `crlfile`.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// The files a client with this CN uses (issued into the CA folder), with the broker's.
    pub fn certs(&self, cn: &str) -> Certs {
        Certs {
            ca: self.dir.join("ca.pem"),
            server_cert: self.dir.join("server.pem"),
            server_key: self.dir.join("server.key"),
            client_cert: self.dir.join(format!("{cn}.pem")),
            client_key: self.dir.join(format!("{cn}.key")),
        }
    }
}

/// SIGHUP to a running broker: Mosquitto reloads its configuration (and, as tested, its CRL).
pub fn hangup(broker: &Mosquitto) -> anyhow::Result<()> {
    let child = broker
        .child
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the broker is not running"))?;
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(child.id().to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill -HUP failed: {status}");
    Ok(())
}
