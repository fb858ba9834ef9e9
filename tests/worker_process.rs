//! A worker as a process under an orchestrator: it logs in the format the deployment asks
//! for (`IMPUSH__LOG__FORMAT`), without colour when standard error is not a terminal; it
//! stops cleanly on SIGTERM even after its standard error broke; and a config mistake ends
//! it with one message, without a backtrace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fleet::{Fleet, FleetOptions, binary, free_port, workspace_dir};

/// Far longer than a clean stop takes; only a worker that ignores SIGTERM reaches it.
const STOP_BOUND: Duration = Duration::from_secs(60);

/// Starts `impush-ingest` on the fleet's config with standard error piped to the test.
fn ingest_with_piped_stderr(fleet: &Fleet, env: &[(&str, &str)]) -> (Child, u16) {
    let port = free_port();
    let mut command = Command::new(binary("impush-ingest"));
    command
        .arg("--config")
        .arg(&fleet.config_path)
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(workspace_dir())
        .env_remove("IMPUSH__LOG__FORMAT")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    (command.spawn().expect("impush-ingest starts"), port)
}

async fn wait_ready(fleet: &Fleet, port: u16) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = fleet.http().get(&url).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sigterm(child: &Child) {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

/// The exit status, or `None` if the process was still running after [`STOP_BOUND`] (it
/// is then killed, so the test does not leave it behind).
async fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + STOP_BOUND;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn no_senders() -> FleetOptions {
    FleetOptions {
        vendors: Vec::new(),
        ..FleetOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_stderr_was_closed_stops_cleanly_on_sigterm() {
    let fleet = Fleet::start(no_senders()).await;
    let (mut child, port) = ingest_with_piped_stderr(&fleet, &[]);
    wait_ready(&fleet, port).await;
    // The reading end goes away: every later write to the worker's stderr fails (EPIPE).
    drop(child.stderr.take());
    // Something to log about after the pipe broke, besides the shutdown itself.
    let _ = fleet
        .http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await;
    sigterm(&child);
    let status = wait_exit(&mut child).await;
    assert!(
        status.is_some(),
        "the worker ignored SIGTERM once its stderr was closed"
    );
    let status = status.unwrap();
    assert!(
        status.success(),
        "the worker did not stop cleanly (a panic exits with 101): {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_format_comes_from_the_environment_and_has_no_colour_off_a_terminal() {
    let fleet = Fleet::start(no_senders()).await;
    for format in ["json", "pretty"] {
        let (mut child, port) =
            ingest_with_piped_stderr(&fleet, &[("IMPUSH__LOG__FORMAT", format)]);
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).unwrap();
            text
        });
        wait_ready(&fleet, port).await;
        sigterm(&child);
        let status = wait_exit(&mut child).await.expect("stopped on SIGTERM");
        assert!(status.success(), "{status}");
        let log = reader.join().unwrap();
        assert!(
            log.lines().count() >= 2,
            "{format}: the worker logged nothing: {log}"
        );
        assert!(
            !log.contains('\u{1b}'),
            "{format}: colour codes in a log that is not a terminal: {log}"
        );
        if format == "json" {
            for line in log.lines() {
                let object: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                assert!(object.get("level").is_some(), "{line}");
            }
        } else {
            assert!(
                log.lines().any(|line| line.contains(" INFO ")),
                "pretty text: {log}"
            );
        }
    }
}

#[test]
fn a_config_mistake_is_one_message_without_a_backtrace() {
    let dir = std::env::temp_dir().join(format!("impush-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("impush.toml");
    std::fs::write(
        &config,
        "[[credentials]]\nbusiness_id = 2\nvendor = \"fcm\"\nproject_id = \"p\"\nprojet = \"typo\"\n",
    )
    .unwrap();
    for worker in ["impush-ingest", "impush-router"] {
        let output = Command::new(binary(worker))
            .arg("--config")
            .arg(&config)
            .env("RUST_BACKTRACE", "1")
            .env("RUST_LIB_BACKTRACE", "1")
            .output()
            .expect("the worker runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{worker}: {stderr}");
        assert!(
            stderr.contains("unknown key `projet`"),
            "{worker}: {stderr}"
        );
        assert!(
            !stderr.to_lowercase().contains("backtrace"),
            "{worker}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{worker}: {stderr}");
    }
    let env_mistake = Command::new(binary("impush-ingest"))
        .arg("--config")
        .arg(workspace_dir().join("deploy/local/impush.toml"))
        .env("RUST_BACKTRACE", "1")
        .env("IMPUSH__AMQP__PREFETCH", "many")
        .output()
        .expect("the worker runs");
    let stderr = String::from_utf8_lossy(&env_mistake.stderr);
    assert_eq!(env_mistake.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("IMPUSH__AMQP__PREFETCH"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
