//! The Debian packages (scripts/package-deb.sh, design/packaging.md) installed, upgraded and
//! purged in a throwaway Debian 12 container (the local base image; skipped, saying so, without a
//! Docker engine or the image): files in place, the `cascade` user and its 0700 state folder, the
//! conffile; `check` on the packaged, unconfigured box fails only for what an operator must still
//! provide (a model, certificates) and passes once configured; an upgrade keeps a
//! locally modified conffile and the state; a purge removes config and state.

use cascade_tests::debian::{build_packages, configure_agent_script};
use cascade_tests::docker::{self, Container};
use cascade_tests::repo_root;

const V1: &str = "0.0.0~test1";
const V2: &str = "0.0.0~test2";

#[test]
fn packages_install_upgrade_keep_the_conffile_and_purge() {
    if docker::available().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    build_packages(&tmp.path().join("v1"), V1).expect("v1 packages");
    build_packages(&tmp.path().join("v2"), V2).expect("v2 packages");
    let c = Container::throwaway("deb").expect("container");
    c.copy_in(&tmp.path().join("v1"), "/tmp/v1")
        .expect("copy v1");
    c.copy_in(&tmp.path().join("v2"), "/tmp/v2")
        .expect("copy v2");
    c.copy_in(
        &repo_root().join("tests/fixtures/walker.mp4"),
        "/tmp/walker.mp4",
    )
    .expect("copy clip");

    // Install: dependencies come from Debian's mirror.
    c.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends /tmp/v1/*.deb >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }")
        .expect("v1 installs");
    installed_as_packaged(&c);
    unconfigured_check_names_only_what_is_missing(&c);

    // The operator's edit (a conffile change) and some state.
    c.sh("install -o cascade -g cascade -m 0600 /tmp/walker.mp4 /var/lib/cascade/walker.mp4")
        .expect("clip");
    c.sh(&configure_agent_script(
        "/var/lib/cascade/walker.mp4",
        "/usr/share/cascade/models/blob-yolov8-int8.toml",
    ))
    .expect("configured");
    let check = c
        .sh("runuser -u cascade -- edge-agent check --config /etc/cascade/edge-agent.toml")
        .expect("check passes once configured");
    assert!(check.contains("edge-agent.toml: ok"), "{check}");
    c.sh("echo kept > /var/lib/cascade/buffer/marker")
        .expect("state");
    let edited = c.sh("sha256sum /etc/cascade/edge-agent.toml").expect("sum");

    // Upgrade: the modified conffile and the state stay.
    c.sh(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          /tmp/v2/*.deb >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }",
    )
    .expect("v2 installs");
    assert_eq!(
        c.sh("dpkg-query -W -f '${Version}' cascade-edge-agent")
            .expect("version"),
        V2
    );
    assert_eq!(
        c.sh("sha256sum /etc/cascade/edge-agent.toml").expect("sum"),
        edited,
        "the locally modified conffile is kept"
    );
    assert_eq!(
        c.sh("cat /var/lib/cascade/buffer/marker").expect("marker"),
        "kept\n"
    );
    assert_eq!(
        c.sh("stat -c '%a %U' /var/lib/cascade").expect("stat"),
        "700 cascade\n"
    );

    // Purge: config and state go; the user stays (Debian policy, design/packaging.md).
    c.sh("dpkg --purge cascade-edge-agent cascade-cloud-analyzer cascade-common")
        .expect("purge");
    let left = c
        .sh(
            "ls -d /etc/cascade /var/lib/cascade /usr/bin/edge-agent /usr/lib/cascade \
             /usr/share/cascade /lib/systemd/system/cascade-edge-agent.service 2>/dev/null; true",
        )
        .expect("ls");
    assert_eq!(left, "", "nothing left after purge");
    assert_eq!(
        c.sh("dpkg -l 'cascade-*' 2>/dev/null | grep -E '^(ii|rc)' ; true")
            .expect("dpkg"),
        "",
        "no cascade package installed or with config left"
    );
    c.sh("getent passwd cascade").expect("the user stays");
}

/// Files, user, state folder and conffile as design/packaging.md lists them.
fn installed_as_packaged(c: &Container) {
    c.sh(
        "set -e; for f in /usr/bin/edge-agent /usr/bin/cloud-analyzer; do test -x $f; done
         for f in /usr/lib/cascade/libonnxruntime.so /usr/share/cascade/hardware-profiles/x86_64-cpu.toml \
                  /usr/share/cascade/models/blob-yolov8-int8.toml /usr/share/cascade/models/test/blob-yolov8-int8.onnx \
                  /usr/share/cascade/models/yolov8n-int8-static.toml \
                  /lib/systemd/system/cascade-edge-agent.service /lib/systemd/system/cascade-cloud-analyzer.service \
                  /etc/cascade/edge-agent.toml /etc/cascade/cloud-analyzer.toml; do test -f $f || { echo missing $f; exit 1; }; done",
    )
    .expect("files in place");
    let version = c.sh("edge-agent --version").expect("runs");
    assert!(version.starts_with("edge-agent "), "{version}");
    assert_eq!(
        c.sh("stat -c '%a %U %G' /var/lib/cascade /var/lib/cascade/buffer")
            .expect("stat"),
        "700 cascade cascade\n700 cascade cascade\n"
    );
    let groups = c.sh("id -nG cascade").expect("user");
    assert!(
        groups.contains("video") && groups.contains("plugdev"),
        "{groups}"
    );
    let conffiles = c
        .sh("dpkg-query -W -f '${Conffiles}' cascade-edge-agent cascade-cloud-analyzer")
        .expect("conffiles");
    assert!(
        conffiles.contains("/etc/cascade/edge-agent.toml")
            && conffiles.contains("/etc/cascade/cloud-analyzer.toml"),
        "{conffiles}"
    );
    // The packaged unit's paths are the packaged files'.
    let unit = c
        .sh("cat /lib/systemd/system/cascade-edge-agent.service")
        .expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/bin/edge-agent run --config /etc/cascade/edge-agent.toml"),
        "{unit}"
    );
}

/// The packaged config on a box nobody configured: `check` names the model and the certificates,
/// and nothing the package provides (runtime, profile, state folder).
fn unconfigured_check_names_only_what_is_missing(c: &Container) {
    let (ok, out) =
        c.try_sh("runuser -u cascade -- edge-agent check --config /etc/cascade/edge-agent.toml");
    assert!(!ok, "an unconfigured box fails check:\n{out}");
    // (The camera, /dev/video0, is asked only once the rest checks: `edge-agent check` then
    // describes each camera.)
    for missing in [
        "/var/lib/cascade/models/edge/manifest.toml",
        "uplink.ca_file",
        "uplink.client_cert_file",
        "uplink.client_key_file",
    ] {
        assert!(out.contains(missing), "check names {missing}:\n{out}");
    }
    for provided in ["onnxruntime", "device.profile", "buffer.dir"] {
        assert!(!out.contains(provided), "{provided} is packaged:\n{out}");
    }
    let (ok, out) = c.try_sh(
        "runuser -u cascade -- cloud-analyzer check --config /etc/cascade/cloud-analyzer.toml",
    );
    assert!(!ok, "the analyzer needs its model:\n{out}");
    assert!(
        out.contains("/var/lib/cascade/models/cloud/manifest.toml"),
        "{out}"
    );
    for provided in ["onnxruntime", "store.dir"] {
        assert!(!out.contains(provided), "{provided} is packaged:\n{out}");
    }
}
