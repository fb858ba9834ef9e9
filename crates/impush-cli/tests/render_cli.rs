//! `impush render` as IM developers run it: JSON lines in, JSON lines out, bad lines
//! reported by number without stopping the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn impush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_impush"))
}

fn demo_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/demo-render.jsonl")
}

fn run_with_stdin(args: &[&str], input: &str) -> std::process::Output {
    let mut child = impush()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("impush starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("impush reads its input");
    child.wait_with_output().expect("impush finishes")
}

#[test]
fn the_demo_stream_renders_one_output_per_input_line_with_the_expected_decisions() {
    let output = impush()
        .args(["render", "--file"])
        .arg(demo_file())
        .output()
        .expect("impush runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect();
    let decisions: Vec<String> = lines
        .iter()
        .map(|v| match v["decision"].as_str() {
            Some("push") => "push".to_owned(),
            _ => format!("skip:{}", v["reason"].as_str().unwrap_or("?")),
        })
        .collect();
    assert_eq!(
        decisions,
        [
            "push",
            "skip:foreground",
            "push",
            "push",
            "push",
            "push",
            "push",
            "push",
            "push",
            "skip:logged_out",
            "skip:kicked",
            "skip:push_disabled_by_user",
            "skip:custom_without_desc",
            "push",
            "push",
            "push",
            "push",
            "push",
            "push",
            "skip:conversation_muted",
            "skip:quiet_hours",
        ]
    );
    // A mention breaks through NOT_NOTIFY_EXCEPT_AT and marks the body.
    assert_eq!(
        lines[18]["notification"]["body"],
        "[@me] Denny (Team): @vinson review please"
    );
    // The call invitation goes to iOS as VoIP; the muted message has no sound; the user's
    // own c2c sound applies; ignore_ios_badge leaves the badge out.
    assert_eq!(lines[13]["notification"]["body"], "Denny: [video call]");
    assert_eq!(lines[14]["notification"]["sound"], Value::Null);
    assert!(lines[14]["payload"]["aps"].get("sound").is_none());
    assert_eq!(lines[15]["notification"]["sound"], "ding.caf");
    assert_eq!(lines[17]["notification"]["badge"], Value::Null);
    assert_eq!(lines[17]["notification"]["title"], "New message");
    // The Chinese template set of app 1400000002.
    assert_eq!(
        lines[3]["notification"]["body"],
        "Boss Denny（Team）：今天的菜单[图片]"
    );
    // The long vivo text is cut, with an ellipsis, inside vivo's content limit.
    let long = lines[16]["payload"]["content"]
        .as_str()
        .expect("vivo content");
    assert!(long.ends_with('…'), "{long}");
}

#[test]
fn a_bad_line_is_reported_with_its_number_and_the_rest_still_renders() {
    let good = std::fs::read_to_string(demo_file()).expect("demo file");
    let first = good.lines().next().expect("a line");
    let input = format!("{first}\n{{\"message\": 5}}\n\n{first}\n");
    let output = run_with_stdin(&["render"], &input);
    assert_eq!(
        output.status.code(),
        Some(1),
        "bad input makes the exit status 1"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2:"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2);
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let output = run_with_stdin(&["render", "--config", "/nonexistent/impush.toml"], "");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/impush.toml"), "{stderr}");
}

#[test]
fn the_table_format_shows_each_vendor_payload() {
    let output = impush()
        .args(["render", "--format", "table", "--file"])
        .arg(demo_file())
        .output()
        .expect("impush runs");
    let text = String::from_utf8_lossy(&output.stdout);
    for vendor in [
        "apns", "fcm", "huawei", "xiaomi", "oppo", "vivo", "meizu", "tpns",
    ] {
        assert!(
            text.contains(&format!(" {vendor} ")),
            "no {vendor} row:\n{text}"
        );
    }
    assert!(text.contains("skip (foreground)"));
}
