//! The router's path for one device: decode an OfflineMessage (protobuf or JSON), decide,
//! render, count the badge and build the vendor request, for a device of any vendor and
//! presence. Nothing panics, and what would be sent keeps every rule of `check_request`.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use impush_core::decide::DeviceState;
use impush_core::{
    PushTarget, Templates, badge_for, build_payload, decide, render_notification, vendor,
};
use impush_fuzz::{check_request, credential};
use impush_proto::v1::{PresenceState, PushSettings};
use impush_proto::{Event, EventKind};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Device {
    vendor: u8,
    presence: i32,
    unread: u32,
    pushes_since: u32,
    chinese: bool,
    json: bool,
    token: Option<String>,
    default_title: String,
    c2c_sound: String,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let Ok(device) = Device::arbitrary(&mut input) else {
        return;
    };
    let body = input.take_rest();
    let event = if device.json {
        match std::str::from_utf8(body) {
            Ok(line) => Event::from_json_line(line),
            Err(_) => return,
        }
    } else {
        Event::decode(Some(EventKind::OfflineMessage.type_name()), body)
    };
    let Ok(Event::OfflineMessage(message)) = event else {
        return;
    };
    let vendor = vendor::ALL[usize::from(device.vendor) % vendor::ALL.len()];
    let credential = credential(vendor, &device.default_title, "");
    let state = DeviceState {
        device_id: "d1".into(),
        vendor,
        business_id: credential.business_id,
        token: device.token.unwrap_or_else(|| "ab".repeat(32)),
        // An unknown number from a newer IM core is a state impush does not know: pushed.
        presence: PresenceState::try_from(device.presence).unwrap_or(PresenceState::Unspecified),
        unread: device.unread,
    };
    let settings = PushSettings {
        c2c_sound: device.c2c_sound,
        ..Default::default()
    };
    let recipient = if message.receiver_id.is_empty() {
        message.member_ids.first().cloned().unwrap_or_default()
    } else {
        message.receiver_id.clone()
    };
    let now = message.send_time_ms;
    if decide(
        &message,
        &recipient,
        &state,
        Some(&settings),
        Some(&credential),
        now,
    )
    .is_err()
    {
        return;
    }
    let templates = if device.chinese {
        Templates::chinese()
    } else {
        Templates::english()
    };
    let notification = render_notification(&message, vendor, Some(&settings), &templates);
    let targets = [PushTarget {
        user_id: recipient,
        device_id: state.device_id.clone(),
        token: state.token.clone(),
        badge: badge_for(vendor, &message, state.unread, device.pushes_since.max(1)),
    }];
    let result = build_payload(&notification, &credential, &targets);
    check_request(vendor, &notification, &targets, &result);
});
