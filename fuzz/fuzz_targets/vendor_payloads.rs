//! Every vendor's payload builder fed with any notification: any title, body, ext, sound,
//! channel ids, expiry and tokens, a batch of up to the vendor's limit. Nothing panics, and
//! the request keeps every rule of `check_request`.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use impush_core::payload::max_batch;
use impush_core::{Notification, PushTarget, build_payload, vendor};
use impush_fuzz::{check_request, credential};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    title: String,
    body: String,
    sound: String,
    ext: String,
    ios_push_type: i32,
    expires_in_ms: i64,
    conversation: String,
    is_call: bool,
    is_group: bool,
    oppo_channel: String,
    fcm_channel: String,
    xiaomi_channel: String,
    vivo_classification: i32,
    huawei_category: String,
    sender_name: String,
    group_name: String,
    collapse_id: String,
    default_title: String,
    click_action: String,
    /// Some tokens as given, the rest well-formed.
    tokens: Vec<String>,
    batch: u16,
    badge: Option<u32>,
    /// Long text is what the limits are about; make it reachable with short inputs.
    repeat_body: u8,
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let send_time_ms: i64 = 1_700_000_000_000;
    let notification = Notification {
        title: input.title,
        body: input
            .body
            .repeat(usize::from(input.repeat_body % 64).max(1)),
        sound: input.sound,
        ext: input.ext,
        ios_push_type: input.ios_push_type,
        expires_at_ms: send_time_ms.saturating_add(input.expires_in_ms),
        send_time_ms,
        conversation: input.conversation,
        is_call: input.is_call,
        is_group: input.is_group,
        android_oppo_channel_id: input.oppo_channel,
        android_fcm_channel_id: input.fcm_channel,
        android_xiaomi_channel_id: input.xiaomi_channel,
        android_vivo_classification: input.vivo_classification,
        android_huawei_category: input.huawei_category,
        sender_name: input.sender_name,
        group_name: input.group_name,
        collapse_id: input.collapse_id,
    };
    for vendor in vendor::ALL {
        let credential = credential(vendor, &input.default_title, &input.click_action);
        // Mostly small batches, which run fast; one input in sixteen fills the vendor's batch
        // (Huawei leaves tokens out of its size limit, OPPO switches to unicast_batch).
        let count = if input.batch >= 0xF000 {
            (usize::from(input.batch) % max_batch(vendor)).max(1)
        } else {
            (usize::from(input.batch % 4) + 1).min(max_batch(vendor))
        };
        let targets: Vec<PushTarget> = (0..count)
            .map(|i| PushTarget {
                user_id: format!("u{i}"),
                device_id: format!("d{i}"),
                token: input
                    .tokens
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("{i:064x}")),
                badge: input.badge,
            })
            .collect();
        let result = build_payload(&notification, &credential, &targets);
        check_request(vendor, &notification, &targets, &result);
    }
});
