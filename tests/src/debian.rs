//! Debian packages for the tests: made by `scripts/package-deb.sh` from the debug binaries beside
//! the tests, to install in a throwaway root ([`crate::docker::Container::throwaway`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{binary, repo_root};

/// Builds the three packages at `version` into `out` from the debug binaries of this build.
pub fn build_packages(out: &Path, version: &str) -> anyhow::Result<Vec<PathBuf>> {
    let bin_dir = binary("edge-agent")
        .parent()
        .context("binary folder")?
        .to_path_buf();
    binary("cloud-analyzer");
    let o = Command::new(repo_root().join("scripts/package-deb.sh"))
        .args(["--profile", "debug", "--version", version, "--out"])
        .arg(out)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .output()?;
    if !o.status.success() {
        bail!(
            "package-deb.sh failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let mut debs: Vec<PathBuf> = std::fs::read_dir(out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    anyhow::ensure!(debs.len() == 3, "three packages, got {debs:?}");
    Ok(debs)
}

/// The packaged edge agent's config edited as an operator would for a box with no camera or
/// broker: the sample clip as its camera (looping, in real time), the generated test model, plain
/// MQTT to a broker on loopback. Run in the container after copying the clip to `clip`.
pub fn configure_agent_script(clip: &str, manifest: &str) -> String {
    format!(
        r#"set -e
f=/etc/cascade/edge-agent.toml
sed -i 's|^source = {{ kind = "v4l2", device = "/dev/video0" }}|source = {{ kind = "file", path = "{clip}", realtime = true, loop = true }}|' $f
sed -i 's|^manifest = "/var/lib/cascade/models/edge/manifest.toml"|manifest = "{manifest}"|' $f
sed -i 's|^port = 8883|port = 1883\ntls = false|; /^ca_file = /d; /^client_cert_file = /d; /^client_key_file = /d' $f
grep -q 'path = "{clip}"' $f && grep -q 'tls = false' $f && grep -q '"{manifest}"' $f
"#
    )
}
