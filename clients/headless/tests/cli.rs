//! The `tessera-bot` command itself: its progress lines, its report on
//! stdout and in `--json`, and its exit status, against an address where
//! no node answers (every bot fails).

use std::process::Command;

#[test]
fn a_run_where_every_bot_fails_prints_and_writes_why_and_exits_1() {
    // A port just freed: nothing answers there.
    let server = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera-bot"))
        .args(["--server", &format!("http://{server}")])
        .args(["--bots", "3", "--ramp", "100", "--duration", "2s"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    // Not a terminal: a plain progress line a second.
    let progress = stdout
        .lines()
        .find(|l| l.starts_with("t="))
        .unwrap_or_default();
    assert!(
        progress.contains("connected 0/3 failed") && progress.contains("msgs/s"),
        "{stdout}"
    );
    assert!(stdout.contains("3 bots, 0 connected, 3 failed"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 of 3 bots failed"), "{stderr}");
    // The file holds the same figures.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["bots"], 3);
    assert_eq!(report["connected"], 0);
    let failed: u64 = report["failed"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(reason, _)| reason.starts_with("login: "))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(failed, 3, "{report}");
}
