//! `impush render`: one input line (a message, a recipient's device, optional settings and
//! receive option for the message's conversation) to one output line (decision, notification, exact vendor payload), through the same core
//! functions the router and sender use.

use impush_config::Config;
use impush_core::{
    DeviceState, PushTarget, badge_for, build_payload, channel, decide, decide_conversation,
    mention_of, render_for_recipient,
};
use impush_proto::v1::{OfflineMessage, PresenceState, PushSettings, ReceiveOption, Vendor};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    message: Value,
    #[serde(default)]
    recipient_id: Option<String>,
    device: DeviceInput,
    #[serde(default)]
    settings: Option<Value>,
    /// The recipient's `ReceiveOption` for the message's conversation, by name.
    #[serde(default)]
    conversation_option: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceInput {
    vendor: String,
    business_id: u64,
    #[serde(default)]
    device_id: String,
    token: String,
    #[serde(default)]
    presence: Option<String>,
    #[serde(default)]
    unread: u32,
    /// The device registered a TPNS token: it is pushed through TPNS.
    #[serde(default)]
    is_tpns_token: bool,
}

/// One rendered input line: whom it was for, and the output object.
pub struct Rendered {
    pub vendor: Vendor,
    pub recipient_id: String,
    pub device_id: String,
    pub output: Value,
}

/// Renders one line; the error says what is wrong with it.
pub fn render_line(
    line: &str,
    config: &Config,
    now_ms: Option<i64>,
    wall_clock: impl Fn() -> i64,
) -> Result<Rendered, String> {
    let (vendor, recipient_id, device_id, output) = render_parts(line, config, now_ms, wall_clock)?;
    Ok(Rendered {
        vendor,
        recipient_id,
        device_id,
        output,
    })
}

/// The human-readable form of `--format table`: one header line per input, then the
/// notification and the payload.
pub fn format_table(line_number: usize, rendered: &Rendered) -> String {
    let out = &rendered.output;
    let mut text = format!(
        "#{line_number:<3} {:<7} {} / {}  ",
        impush_core::vendor::name(rendered.vendor),
        rendered.recipient_id,
        rendered.device_id
    );
    if out["decision"] == "push" {
        let n = &out["notification"];
        text.push_str("PUSH\n");
        let field = |name: &str| match &n[name] {
            Value::Null => "-".to_owned(),
            Value::String(s) if s.is_empty() => "-".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for name in ["title", "body", "badge", "sound", "ext"] {
            text.push_str(&format!("      {name:<6} {}\n", field(name)));
        }
        let payload = serde_json::to_string_pretty(&out["payload"]).unwrap_or_default();
        text.push_str("      payload\n");
        for line in payload.lines() {
            text.push_str(&format!("        {line}\n"));
        }
    } else {
        text.push_str(&format!(
            "skip ({})\n",
            out["reason"].as_str().unwrap_or("unknown")
        ));
    }
    text
}

#[allow(clippy::type_complexity)]
fn render_parts(
    line: &str,
    config: &Config,
    now_ms: Option<i64>,
    wall_clock: impl Fn() -> i64,
) -> Result<(Vendor, String, String, Value), String> {
    let input: Input =
        serde_json::from_str(line).map_err(|e| format!("not a render input: {e}"))?;
    let message: OfflineMessage = serde_json::from_value(input.message)
        .map_err(|e| format!("message: not an OfflineMessage in proto3 JSON: {e}"))?;
    let settings: Option<PushSettings> = input
        .settings
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("settings: not a PushSettings in proto3 JSON: {e}"))?;
    let conversation_option = match input.conversation_option.as_deref() {
        None => ReceiveOption::Unspecified,
        Some(name) => ReceiveOption::from_str_name(name)
            .ok_or_else(|| format!("conversation_option: unknown receive option {name:?}"))?,
    };
    let vendor = Vendor::from_str_name(&input.device.vendor)
        .filter(|v| *v != Vendor::Unspecified)
        .ok_or_else(|| format!("device.vendor: unknown vendor {:?}", input.device.vendor))?;
    let presence = match input.device.presence.as_deref() {
        None => PresenceState::Unspecified,
        Some(name) => PresenceState::from_str_name(name)
            .ok_or_else(|| format!("device.presence: unknown presence state {name:?}"))?,
    };
    let recipient_id = input
        .recipient_id
        .unwrap_or_else(|| message.receiver_id.clone());
    if recipient_id.is_empty() {
        return Err("recipient_id is required for a group message".into());
    }
    let mut device = DeviceState {
        device_id: input.device.device_id,
        vendor,
        business_id: input.device.business_id,
        token: input.device.token,
        presence,
        unread: input.device.unread,
    };
    let now = now_ms.unwrap_or(if message.send_time_ms > 0 {
        message.send_time_ms
    } else {
        wall_clock()
    });
    // A TPNS token goes through TPNS, with the iOS rules on an iPhone.
    let channel = channel(
        message.sdk_app_id,
        &device,
        input.device.is_tpns_token,
        &config.credentials,
    );
    device.vendor = channel.vendor;
    device.business_id = channel.business_id;
    let vendor = channel.vendor;

    let credential = config.credentials.get(&device.business_id);
    if let Err(reason) = decide(
        &message,
        &recipient_id,
        &device,
        settings.as_ref(),
        credential,
        now,
    )
    .and_then(|()| {
        decide_conversation(
            &message,
            &recipient_id,
            conversation_option,
            settings.as_ref(),
            now,
        )
    }) {
        let skip = json!({"decision": "skip", "reason": reason.as_str()});
        return Ok((vendor, recipient_id, device.device_id, skip));
    }
    let Some(credential) = credential else {
        let skip = json!({"decision": "skip", "reason": "no_credential"});
        return Ok((vendor, recipient_id, device.device_id, skip));
    };
    let templates = config.templates.for_app(message.sdk_app_id);
    let mention = mention_of(&message, &recipient_id);
    let mut notification = render_for_recipient(
        &message,
        channel.platform,
        settings.as_ref(),
        templates,
        mention,
    );
    // The request leaves now (`--now-ms`): the time to live shown is what is left then.
    notification.request_at_ms = now;
    // The preview takes the message as the first push since the BACKGROUND report.
    let badge = badge_for(channel.platform, &message, device.unread, 1);
    let target = PushTarget {
        user_id: recipient_id.clone(),
        device_id: device.device_id.clone(),
        token: device.token,
        badge,
    };
    let output = match build_payload(&notification, credential, std::slice::from_ref(&target)) {
        Ok(request) => json!({
            "decision": "push",
            "notification": {
                "title": notification.title,
                "body": notification.body,
                "badge": badge,
                "sound": (!notification.sound.is_empty()).then_some(&notification.sound),
                "ext": notification.ext,
            },
            "payload": request.body.to_json_value(),
        }),
        Err(err) => json!({
            "decision": "skip",
            "reason": build_error_reason(&err),
            "detail": err.to_string(),
        }),
    };
    Ok((vendor, recipient_id, device.device_id, output))
}

fn build_error_reason(err: &impush_core::BuildError) -> &'static str {
    use impush_core::BuildError::*;
    match err {
        NoTargets | TooManyTargets { .. } => "no_target",
        VendorMismatch { .. } => "no_credential",
        MissingCredentialField { .. } => "credential_incomplete",
        InvalidToken { .. } => "invalid_token",
        PayloadTooLarge { .. } => "payload_too_large",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::sample().unwrap()
    }

    fn render(line: &str) -> Value {
        render_line(line, &config(), None, || 0).unwrap().output
    }

    const APNS_LINE: &str = r#"{"message":{"msgId":"m1","sdkAppId":1400000001,"senderId":"denny","senderNickname":"Denny","receiverId":"vinson","elems":[{"text":{"text":"hello"}}],"pushInfo":{"ext":"jump to denny"},"sendTimeMs":"1700000000000"},"device":{"vendor":"VENDOR_APNS","business_id":1,"device_id":"iphone","token":"abcdef","presence":"PRESENCE_STATE_BACKGROUND","unread":3}}"#;

    #[test]
    fn a_background_ios_device_gets_the_rendered_alert_with_badge_unread_plus_one() {
        let out = render(APNS_LINE);
        assert_eq!(out["decision"], "push");
        assert_eq!(out["notification"]["body"], "Denny: hello");
        assert_eq!(out["notification"]["badge"], 4);
        assert_eq!(out["notification"]["sound"], "default");
        assert_eq!(out["notification"]["ext"], "jump to denny");
        assert_eq!(out["payload"]["aps"]["alert"], "Denny: hello");
        assert_eq!(out["payload"]["aps"]["badge"], 4);
        assert_eq!(out["payload"]["ext"], "jump to denny");
    }

    #[test]
    fn a_foreground_device_is_skipped_with_its_reason() {
        let line = APNS_LINE.replace("PRESENCE_STATE_BACKGROUND", "PRESENCE_STATE_FOREGROUND");
        assert_eq!(
            render(&line),
            json!({"decision": "skip", "reason": "foreground"})
        );
    }

    #[test]
    fn user_settings_are_applied() {
        let line = APNS_LINE.replace(
            r#""unread":3}}"#,
            r#""unread":3},"settings":{"openPush":"OPEN_PUSH_DISABLED"}}"#,
        );
        assert_eq!(render(&line)["reason"], "push_disabled_by_user");
    }

    const GROUP_LINE: &str = r#"{"message":{"msgId":"g1","sdkAppId":1400000001,"senderId":"denny","senderNickname":"Denny","groupId":"team","groupName":"Team","memberIds":["vinson"],"elems":[{"text":{"text":"lunch?"}}],"sendTimeMs":"1700000000000"},"recipient_id":"vinson","device":{"vendor":"VENDOR_APNS","business_id":1,"device_id":"iphone","token":"abcdef","presence":"PRESENCE_STATE_BACKGROUND"}}"#;

    fn group_line(message_extra: &str, line_extra: &str) -> String {
        GROUP_LINE
            .replace(
                r#""sendTimeMs":"1700000000000"}"#,
                &format!(r#""sendTimeMs":"1700000000000"{message_extra}}}"#),
            )
            .replace(
                r#""PRESENCE_STATE_BACKGROUND"}}"#,
                &format!(r#""PRESENCE_STATE_BACKGROUND"}}{line_extra}}}"#),
            )
    }

    #[test]
    fn a_muted_conversation_is_skipped_unless_an_except_at_option_meets_a_mention() {
        let muted = group_line("", r#","conversation_option":"RECEIVE_OPTION_NOT_NOTIFY""#);
        assert_eq!(render(&muted)["reason"], "conversation_muted");
        let except_at = r#","conversation_option":"RECEIVE_OPTION_NOT_NOTIFY_EXCEPT_AT""#;
        assert_eq!(
            render(&group_line("", except_at))["reason"],
            "conversation_muted"
        );
        let mentioned = render(&group_line(r#","atUserIds":["vinson"]"#, except_at));
        assert_eq!(mentioned["decision"], "push");
        assert_eq!(
            mentioned["notification"]["body"],
            "[@me] Denny (Team): lunch?"
        );
        assert_eq!(
            render(&group_line(r#","atAll":true"#, ""))["payload"]["aps"]["alert"],
            "[@all] Denny (Team): lunch?"
        );
    }

    #[test]
    fn quiet_hours_follow_the_clock_given_with_now_ms() {
        // 22:00 UTC for 8 hours; the message was sent at 22:13:20 UTC.
        let line = group_line(
            "",
            r#","settings":{"quietStartS":79200,"quietDurationS":28800,"quietOption":"RECEIVE_OPTION_NOT_NOTIFY"}"#,
        );
        assert_eq!(render(&line)["reason"], "quiet_hours");
        let noon = 1_700_000_000_000 - 10 * 3600 * 1000;
        let out = render_line(&line, &config(), Some(noon), || 0)
            .unwrap()
            .output;
        assert_eq!(out["decision"], "push");
        let bad = group_line("", r#","conversation_option":"LOUD""#);
        assert!(
            render_line(&bad, &config(), None, || 0)
                .err()
                .unwrap()
                .contains("conversation_option")
        );
    }

    #[test]
    fn an_unknown_business_id_is_skipped_as_no_credential() {
        let line = APNS_LINE.replace(r#""business_id":1"#, r#""business_id":99"#);
        assert_eq!(render(&line)["reason"], "no_credential");
    }

    #[test]
    fn bad_lines_are_errors_that_say_what_is_wrong() {
        let err = |line: &str| render_line(line, &config(), None, || 0).err().unwrap();
        assert!(err("not json").contains("not a render input"));
        assert!(err(&APNS_LINE.replace("VENDOR_APNS", "VENDOR_NOKIA")).contains("device.vendor"));
        assert!(err(&APNS_LINE.replace(r#""msgId":"m1""#, r#""msgId":1"#)).contains("message:"));
        let group = APNS_LINE.replace(r#""receiverId":"vinson","#, r#""groupId":"g","#);
        assert!(err(&group).contains("recipient_id"));
    }

    #[test]
    fn a_tpns_token_on_an_iphone_goes_through_tpns_with_the_ios_sound_and_badge() {
        let line = APNS_LINE
            .replace(
                r#""pushInfo":{"ext":"jump to denny"}"#,
                r#""pushInfo":{"ext":"jump to denny","iosSound":"ring.caf","androidSound":"beep.mp3"}"#,
            )
            .replace(r#""business_id":1"#, r#""business_id":0,"is_tpns_token":true"#);
        let out = render_line(&line, &config(), None, || 0).unwrap();
        assert_eq!(out.vendor, Vendor::Tpns);
        assert_eq!(out.output["decision"], "push", "{}", out.output);
        assert_eq!(out.output["notification"]["sound"], "ring.caf");
        assert_eq!(out.output["notification"]["badge"], 4);
        assert_eq!(
            out.output["payload"]["message"]["ios"]["aps"]["sound"],
            "ring.caf"
        );
        assert_eq!(
            out.output["payload"]["message"]["ios"]["aps"]["badge_type"],
            4
        );
    }

    #[test]
    fn new_push_options_show_in_the_preview_payload() {
        // A silent iOS push, then a data-only FCM message.
        let silent = APNS_LINE.replace(
            r#""pushInfo":{"ext":"jump to denny"}"#,
            r#""pushInfo":{"ext":"jump to denny","iosContentAvailable":true}"#,
        );
        let out = render(&silent);
        assert_eq!(out["payload"]["aps"], json!({"content-available": 1}));
        let data_only = APNS_LINE
            .replace(
                r#""pushInfo":{"ext":"jump to denny"}"#,
                r#""pushInfo":{"ext":"jump to denny","androidNotifyMode":"ANDROID_NOTIFY_MODE_CUSTOM"}"#,
            )
            .replace("VENDOR_APNS", "VENDOR_FCM")
            .replace(r#""business_id":1"#, r#""business_id":2"#);
        let out = render(&data_only);
        assert!(
            out["payload"]["message"].get("notification").is_none(),
            "{out}"
        );
        assert_eq!(out["payload"]["message"]["data"]["body"], "Denny: hello");
    }

    #[test]
    fn the_preview_ttl_is_what_is_left_at_now_ms() {
        let line = APNS_LINE
            .replace(
                r#""pushInfo":{"ext":"jump to denny"}"#,
                r#""pushInfo":{"ext":"jump to denny","ttlSeconds":30}"#,
            )
            .replace("VENDOR_APNS", "VENDOR_FCM")
            .replace(r#""business_id":1"#, r#""business_id":2"#);
        // (now, ttl shown)
        for (now, ttl) in [(1_700_000_000_000, "30s"), (1_700_000_010_000, "20s")] {
            let out = render_line(&line, &config(), Some(now), || 0)
                .unwrap()
                .output;
            assert_eq!(out["payload"]["message"]["android"]["ttl"], ttl, "{now}");
        }
    }

    #[test]
    fn a_token_that_could_change_the_url_is_never_built_into_a_request() {
        let line = APNS_LINE.replace(r#""token":"abcdef""#, r#""token":"../../x""#);
        assert_eq!(render(&line)["reason"], "invalid_token");
    }
}
