//! The systemd unit must pass `systemd-analyze verify`, and keep the
//! hardening the README promises.

use std::path::Path;
use std::process::Command;

fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/bounced.service");
    std::fs::read_to_string(path).expect("systemd/bounced.service is readable")
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!(
            "SKIPPED: systemd-analyze is not installed (scripts/install-deps.sh installs it)"
        );
        return;
    };
    assert!(out.status.success());
    // verify checks that ExecStart exists: point it at the binary just built.
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_text().replace("/usr/local/bin/bounced", env!("CARGO_BIN_EXE_bounced"));
    let file = dir.path().join("bounced.service");
    std::fs::write(&file, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    // verify exits 0 on some warnings; any line about our unit is a defect.
    let ours: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("bounced.service"))
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze verify warned:\n{}",
        ours.join("\n")
    );
}

#[test]
fn unit_keeps_its_hardening() {
    let unit = unit_text();
    for directive in [
        "DynamicUser=yes",
        "StateDirectory=bounced",
        "ConfigurationDirectory=bounced",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "LoadCredential=imap-password:",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(directive), "unit lost {directive:?}");
    }
    // The password must never be passed through the environment.
    assert!(
        !unit.contains("Environment=BOUNCED"),
        "secret in the environment"
    );
}
