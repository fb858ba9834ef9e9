//! One golden request per vendor: the exact path, headers and body impush sends for a
//! typical group message through the local stack's credentials. Each file under `golden/`
//! was reviewed against the vendor's documented request format (cited in the vendor's
//! module under `crates/impush-core/src/payload/`). A change to a payload shows up here as
//! a diff to review; `UPDATE_GOLDEN=1 cargo test -p impush-tests` rewrites the files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use impush_config::Config;
use impush_core::{Notification, PushTarget, build_payload, vendor};
use serde_json::{Value, json};

fn notification() -> Notification {
    Notification {
        title: "New message".into(),
        body: "Boss Denny (Team): Lunch at 12? 🍜".into(),
        sound: "default".into(),
        ext: r#"{"entity":{"action":1,"chatType":2,"sender":"@TGS#team","nickname":"Team"}}"#
            .into(),
        expires_at_ms: 1_700_000_000_000 + 86_400_000,
        send_time_ms: 1_700_000_000_000,
        // The message's collapse id, which every vendor key (notify id, request id, tag…)
        // is derived from.
        collapse_id: "144115212345678901-1700000000-42".into(),
        conversation: "group:@TGS#team".into(),
        is_group: true,
        sender_name: "Boss Denny".into(),
        group_name: "Team".into(),
        // Read by TPNS only, whose local credential serves both platforms: an iPhone.
        ios_device: true,
        ..Default::default()
    }
}

fn targets(n: usize) -> Vec<PushTarget> {
    (0..n)
        .map(|i| PushTarget {
            user_id: format!("user-{i}"),
            device_id: format!("device-{i}"),
            token: format!("0a1b2c3d4e5f{i:04}"),
            badge: Some(3),
        })
        .collect()
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(format!("{name}.json"))
}

#[test]
fn every_vendor_payload_matches_its_reviewed_golden_file() {
    let config = Config::sample().expect("the built-in local stack config parses");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for vendor in vendor::ALL {
        let credential = config
            .credentials
            .values()
            .find(|c| c.vendor == vendor)
            .expect("one sample credential per vendor");
        // Batch vendors are shown with two tokens, so the golden shows the batch form.
        let count = impush_core::payload::max_batch(vendor).min(2);
        let request = build_payload(&notification(), credential, &targets(count))
            .unwrap_or_else(|e| panic!("{}: {e}", vendor::name(vendor)));
        let actual = json!({
            "path": request.path,
            "headers": request.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": request.body.to_json_value(),
        });
        let path = golden_path(vendor::name(vendor));
        if update {
            let text = serde_json::to_string_pretty(&actual).expect("JSON serialises") + "\n";
            std::fs::write(&path, text).expect("golden file is writable");
            continue;
        }
        let expected: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        if expected != actual {
            mismatches.push(format!(
                "{}: golden {} differs\nactual:\n{}",
                vendor::name(vendor),
                path.display(),
                serde_json::to_string_pretty(&actual).unwrap_or_default()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
