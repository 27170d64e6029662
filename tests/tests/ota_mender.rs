//! Over-the-air updates through the Mender update module (deploy/ota/mender/cascade-deb,
//! design/ota.md), driven by a real Mender client (`mender install`, Debian's mender-client) in a
//! throwaway Debian 12 container, with artifacts written by mender-artifact
//! (scripts/ota-artifact.sh). The agent runs under a restart loop (no systemd in the container;
//! the module restarts it through RESTART_CMD): a model artifact installs the model (a file whose
//! sha256 differs from its manifest's is refused and nothing changes); v1 then v2 of the packages
//! install and commit; a broken v3 (its binary fails `check`) rolls back by itself to v2, which
//! runs and is ready again. Skipped, saying so, without a Docker engine or the base image.

use cascade_tests::debian::{build_packages, configure_agent_script};
use cascade_tests::docker::{self, Container};
use cascade_tests::repo_root;

const DEVICE_TYPE: &str = "cascade-test";

#[test]
fn a_broken_update_rolls_back_to_the_running_version() {
    if docker::available().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for v in ["1", "2", "3"] {
        build_packages(&tmp.path().join(format!("v{v}")), &format!("0.0.0~ota{v}"))
            .expect("packages");
    }
    let c = Container::throwaway("ota").expect("container");
    for (src, dest) in [
        (tmp.path().join("v1"), "/tmp/v1"),
        (tmp.path().join("v2"), "/tmp/v2"),
        (tmp.path().join("v3"), "/tmp/v3"),
        (
            repo_root().join("scripts/ota-artifact.sh"),
            "/tmp/ota-artifact.sh",
        ),
        (
            repo_root().join("deploy/ota/mender/cascade-deb"),
            "/tmp/cascade-deb",
        ),
        (repo_root().join("models"), "/tmp/models"),
        (
            repo_root().join("tests/fixtures/walker.mp4"),
            "/tmp/walker.mp4",
        ),
    ] {
        c.copy_in(&src, dest).expect("copy");
    }
    provision(&c);

    // A model artifact: checked, swapped in, the agent restarted and healthy, committed.
    c.sh(
        "/tmp/ota-artifact.sh model --name model-blob-1 --device-type cascade-test \
          --out /tmp/model.mender /tmp/models/blob-yolov8-int8.toml",
    )
    .expect("model artifact");
    mender_install(&c, "/tmp/model.mender").expect("the model installs");
    let link = c
        .sh("readlink /var/lib/cascade/models/edge")
        .expect("model link");
    assert!(link.starts_with("edge."), "{link}");
    assert_eq!(
        c.sh("sha256sum < /var/lib/cascade/models/edge/blob-yolov8-int8.onnx | cut -c1-64")
            .expect("sum")
            .trim(),
        "b51e4efb6d2111f7007142848d80ff906910980a110ef753976e5d9b2b9aa783"
    );
    // A model file that is not what its manifest pins: refused before anything changes.
    c.sh("set -e; mkdir -p /tmp/bad && cd /tmp/bad
          sed 's|^file = .*|file = \"blob-yolov8-int8.onnx\"|' /tmp/models/blob-yolov8-int8.toml > manifest.toml
          head -c 2317 /dev/zero > blob-yolov8-int8.onnx; echo edge > slot
          mender-artifact write module-image -T cascade-model -n model-bad -t cascade-test -o /tmp/bad.mender \
            -f manifest.toml -f blob-yolov8-int8.onnx -f slot >/dev/null")
        .expect("bad model artifact");
    let err = mender_install(&c, "/tmp/bad.mender").expect_err("a bad model is refused");
    assert!(err.contains("does not match the sha256"), "{err}");
    assert_eq!(
        c.sh("readlink /var/lib/cascade/models/edge").expect("link"),
        link,
        "the model in use is unchanged"
    );

    // v1, then v2: installed, healthy, committed.
    for v in ["1", "2"] {
        c.sh(&format!(
            "/tmp/ota-artifact.sh deb --name cascade-v{v} --device-type {DEVICE_TYPE} \
             --out /tmp/v{v}.mender /tmp/v{v}/cascade-common_*.deb /tmp/v{v}/cascade-edge-agent_*.deb"
        ))
        .expect("artifact");
        mender_install(&c, &format!("/tmp/v{v}.mender")).expect("installs and commits");
        assert_eq!(installed_version(&c), format!("0.0.0~ota{v}"));
    }
    assert_eq!(
        c.sh("ls /var/lib/cascade-ota/current").expect("kept"),
        "cascade-common_0.0.0-ota2_amd64.deb\ncascade-edge-agent_0.0.0-ota2_amd64.deb\n"
    );

    // v3 whose agent fails `check`: the install fails its health check and rolls back to v2.
    c.sh("set -e; cd /tmp/v3; dpkg-deb -R cascade-edge-agent_*.deb x
          printf '#!/bin/sh\\necho \"broken build\" >&2\\nexit 1\\n' > x/usr/bin/edge-agent
          dpkg-deb --root-owner-group -b x cascade-edge-agent_0.0.0~ota3_amd64.deb >/dev/null; rm -rf x
          /tmp/ota-artifact.sh deb --name cascade-v3 --device-type cascade-test --out /tmp/v3.mender \
            cascade-common_*.deb cascade-edge-agent_*.deb")
        .expect("broken v3 artifact");
    let err = mender_install(&c, "/tmp/v3.mender").expect_err("v3 fails");
    assert!(
        err.contains("broken build"),
        "the health check says why:\n{err}"
    );
    assert!(err.contains("rollback"), "{err}");
    assert_eq!(installed_version(&c), "0.0.0~ota2", "v2 is back");
    assert_eq!(
        c.sh("mender --no-syslog show-artifact 2>/dev/null")
            .expect("artifact")
            .trim(),
        "cascade-v2"
    );
    let ready = c
        .sh("for i in $(seq 60); do
               body=$(bash -c 'exec 3<>/dev/tcp/127.0.0.1/9464 && printf \"GET /readyz HTTP/1.0\\r\\n\\r\\n\" >&3 && cat <&3' 2>/dev/null)
               if echo \"$body\" | grep -q '^camera front-door: streaming'; then echo \"$body\"; exit 0; fi
               sleep 1
             done; exit 1")
        .expect("v2 runs and streams again");
    assert!(ready.contains("camera front-door: streaming"), "{ready}");
}

/// The box as it leaves the factory: Mender, v1 of the packages (dependencies from Debian's
/// mirror), the agent configured for the sample clip, the update module, and a restart loop
/// standing in for systemd.
fn provision(c: &Container) {
    c.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends mender-client mender-artifact /tmp/v1/cascade-common_*.deb \
          /tmp/v1/cascade-edge-agent_*.deb >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }")
        .expect("mender and v1 install");
    c.sh("set -e
          mkdir -p /data/mender && echo device_type=cascade-test > /data/mender/device_type
          echo artifact_name=factory > /etc/mender/artifact_info
          install -m 0755 /tmp/cascade-deb /usr/share/mender/modules/v3/cascade-deb
          ln -s cascade-deb /usr/share/mender/modules/v3/cascade-model
          install -o cascade -g cascade -m 0600 /tmp/walker.mp4 /var/lib/cascade/walker.mp4
          cat > /etc/cascade/ota.conf <<'EOF'
READY_TIMEOUT_S=60
RESTART_CMD='pid=$(cat /run/cascade-agent.pid); kill $pid 2>/dev/null || true; while kill -0 $pid 2>/dev/null; do sleep 0.2; done'
EOF")
    .expect("mender set up");
    c.sh(&configure_agent_script(
        "/var/lib/cascade/walker.mp4",
        "/var/lib/cascade/models/edge/manifest.toml",
    ))
    .expect("agent configured");
    c.sh("nohup bash -c 'while :; do setpriv --reuid=cascade --regid=cascade --init-groups \
          /usr/bin/edge-agent run --config /etc/cascade/edge-agent.toml & echo $! > /run/cascade-agent.pid; \
          wait $!; sleep 0.5; done' >/var/log/cascade-agent.log 2>&1 &")
        .expect("agent loop");
}

/// `mender install` then `mender commit`, as a deployment does; Err with the output on failure.
fn mender_install(c: &Container, artifact: &str) -> Result<String, String> {
    let (ok, out) = c.try_sh(&format!(
        "mender --no-syslog install {artifact} 2>&1 && mender --no-syslog commit 2>&1"
    ));
    if ok { Ok(out) } else { Err(out) }
}

fn installed_version(c: &Container) -> String {
    c.sh("dpkg-query -W -f '${Version}' cascade-edge-agent")
        .expect("version")
}
