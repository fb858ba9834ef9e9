//! Whether one device gets an offline push for one message.
//!
//! The rules (seeds; DESIGN.md section 3): no push after an explicit logout or a kick; none
//! while the app is in the foreground (it shows the message itself); none when the user
//! turned push off (`open_push = DISABLED`) or the sender did (`disable_push`), nor for
//! `online_user_only` messages; none for a custom message with no desc, since there is
//! nothing to show; none for a call invitation whose ring time has passed. [`channel`] says
//! which vendor API and credential reach a device (a TPNS token goes through TPNS).

use std::collections::HashMap;

use impush_proto::v1::{
    OfflineMessage, OpenPush, PresenceState, PushSettings, Vendor, elem::Content,
};

use crate::credential::CredentialProfile;

/// What impush knows of one registered device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceState {
    pub device_id: String,
    pub vendor: Vendor,
    pub business_id: u64,
    pub token: String,
    pub presence: PresenceState,
    /// The unread count of the last BACKGROUND report.
    pub unread: u32,
}

/// How one device is reached: the vendor API that sends, the credential it sends with, and
/// the platform whose rules (sound, badge) the push follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// TPNS for a device registered with a TPNS token, else the device's vendor.
    pub vendor: Vendor,
    /// The credential's business_id; for a TPNS token registered with business_id 0, the
    /// TPNS credential bound to the message's sdk_app_id (0 when there is none).
    pub business_id: u64,
    /// `Vendor::Apns` for an iPhone (also one reached through TPNS), else `vendor`.
    pub platform: Vendor,
}

/// The channel of `device`, registered with `is_tpns_token`, for a message of `sdk_app_id`.
///
/// A device registered with a TPNS token is pushed through TPNS whatever its `vendor`. Its
/// `business_id` names a TPNS credential, or is 0, as the seeds tell apps to report: then
/// the TPNS credential bound to the app (`sdk_app_id` in `[[credentials]]`) for the
/// device's platform serves it, the lowest business_id first. The device's `vendor` tells
/// the platform: APNs means an iPhone (`setAPNS`), anything else Android.
pub fn channel(
    sdk_app_id: u32,
    device: &DeviceState,
    is_tpns_token: bool,
    credentials: &HashMap<u64, CredentialProfile>,
) -> Channel {
    if !is_tpns_token {
        return Channel {
            vendor: device.vendor,
            business_id: device.business_id,
            platform: device.vendor,
        };
    }
    let ios = device.vendor == Vendor::Apns;
    let platform = if ios { Vendor::Apns } else { Vendor::Tpns };
    let named = credentials
        .get(&device.business_id)
        .filter(|c| c.vendor == Vendor::Tpns);
    let business_id = match named {
        Some(c) => c.business_id,
        None => credentials
            .values()
            .filter(|c| c.vendor == Vendor::Tpns && c.sdk_app_id != 0 && c.sdk_app_id == sdk_app_id)
            .filter(|c| {
                if ios {
                    c.serves_ios()
                } else {
                    c.serves_android()
                }
            })
            .map(|c| c.business_id)
            .min()
            .unwrap_or(0),
    };
    Channel {
        vendor: Vendor::Tpns,
        business_id,
        platform,
    }
}

/// The user's push settings; absent settings mean push on, default sounds.
pub type UserSettings = PushSettings;

/// Why a device gets no push. `as_str` is the metric label and the `render` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// `push_info.disable_push`.
    DisabledByMessage,
    OnlineUserOnly,
    /// The call invitation's ring time (`send_time_ms + timeout_s`) is over.
    CallExpired,
    /// The message's TTL is over.
    Expired,
    /// Only custom elements and no desc anywhere: nothing to show.
    CustomWithoutDesc,
    /// No element with text and no desc.
    EmptyContent,
    /// The recipient is the sender (a group member list may include them).
    OwnMessage,
    LoggedOut,
    Kicked,
    Foreground,
    /// The user's `open_push = DISABLED`.
    DisabledByUser,
    NoToken,
    /// No credential with the device's business_id for its vendor.
    NoCredential,
    /// The recipient's receive option for the conversation keeps the push
    /// (`NOT_NOTIFY`, or `NOT_NOTIFY_EXCEPT_AT` without a mention).
    ConversationMuted,
    /// Inside the recipient's quiet window, and not a mention it lets through.
    QuietHours,
    /// The sender recalled the message (`MessageRevoked`).
    Revoked,
}

impl SkipReason {
    pub const ALL: [SkipReason; 16] = [
        SkipReason::DisabledByMessage,
        SkipReason::OnlineUserOnly,
        SkipReason::CallExpired,
        SkipReason::Expired,
        SkipReason::CustomWithoutDesc,
        SkipReason::EmptyContent,
        SkipReason::OwnMessage,
        SkipReason::LoggedOut,
        SkipReason::Kicked,
        SkipReason::Foreground,
        SkipReason::DisabledByUser,
        SkipReason::NoToken,
        SkipReason::NoCredential,
        SkipReason::ConversationMuted,
        SkipReason::QuietHours,
        SkipReason::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::DisabledByMessage => "push_disabled_by_message",
            SkipReason::OnlineUserOnly => "online_user_only",
            SkipReason::CallExpired => "call_expired",
            SkipReason::Expired => "expired",
            SkipReason::CustomWithoutDesc => "custom_without_desc",
            SkipReason::EmptyContent => "empty_content",
            SkipReason::OwnMessage => "own_message",
            SkipReason::LoggedOut => "logged_out",
            SkipReason::Kicked => "kicked",
            SkipReason::Foreground => "foreground",
            SkipReason::DisabledByUser => "push_disabled_by_user",
            SkipReason::NoToken => "no_token",
            SkipReason::NoCredential => "no_credential",
            SkipReason::ConversationMuted => "conversation_muted",
            SkipReason::QuietHours => "quiet_hours",
            SkipReason::Revoked => "revoked",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Skips that hold for every recipient of the message, checked once per message.
pub fn decide_message(message: &OfflineMessage, now_ms: i64) -> Result<(), SkipReason> {
    let info = message.push_info.as_ref();
    if info.is_some_and(|i| i.disable_push) {
        return Err(SkipReason::DisabledByMessage);
    }
    if message.online_user_only {
        return Err(SkipReason::OnlineUserOnly);
    }
    if let Some(expires) = call_expiry_ms(message)
        && now_ms >= expires
    {
        return Err(SkipReason::CallExpired);
    }
    if let Some(expires) = ttl_expiry_ms(message)
        && now_ms >= expires
    {
        return Err(SkipReason::Expired);
    }
    content_check(message)
}

/// The full decision for one device of one recipient.
pub fn decide(
    message: &OfflineMessage,
    recipient_id: &str,
    device: &DeviceState,
    settings: Option<&UserSettings>,
    credential: Option<&CredentialProfile>,
    now_ms: i64,
) -> Result<(), SkipReason> {
    decide_message(message, now_ms)?;
    if recipient_id == message.sender_id {
        return Err(SkipReason::OwnMessage);
    }
    match device.presence {
        PresenceState::LoggedOut => return Err(SkipReason::LoggedOut),
        PresenceState::Kicked => return Err(SkipReason::Kicked),
        PresenceState::Foreground => return Err(SkipReason::Foreground),
        PresenceState::Background | PresenceState::Disconnected | PresenceState::Unspecified => {}
    }
    if settings.is_some_and(|s| s.open_push() == OpenPush::Disabled) {
        return Err(SkipReason::DisabledByUser);
    }
    if device.token.is_empty() {
        return Err(SkipReason::NoToken);
    }
    match credential {
        Some(c) if c.vendor == device.vendor && c.business_id == device.business_id => Ok(()),
        _ => Err(SkipReason::NoCredential),
    }
}

/// `send_time_ms + timeout_s` of a call invitation.
pub fn call_expiry_ms(message: &OfflineMessage) -> Option<i64> {
    let call = message.call.as_ref()?;
    (call.timeout_s > 0).then(|| message.send_time_ms + i64::from(call.timeout_s) * 1000)
}

/// `send_time_ms + ttl_seconds`.
pub fn ttl_expiry_ms(message: &OfflineMessage) -> Option<i64> {
    let ttl = message.push_info.as_ref()?.ttl_seconds;
    (ttl > 0).then(|| message.send_time_ms + i64::from(ttl) * 1000)
}

/// A message is pushable if some element has text, or a desc replaces the content.
fn content_check(message: &OfflineMessage) -> Result<(), SkipReason> {
    let has_desc = message
        .push_info
        .as_ref()
        .is_some_and(|i| !i.desc.is_empty());
    if has_desc || message.call.is_some() {
        return Ok(());
    }
    let mut saw_custom = false;
    for elem in &message.elems {
        match &elem.content {
            Some(Content::Custom(custom)) => {
                if !custom.desc.is_empty() {
                    return Ok(());
                }
                saw_custom = true;
            }
            Some(Content::Text(text)) if text.text.is_empty() => {}
            Some(_) => return Ok(()),
            None => {}
        }
    }
    Err(if saw_custom {
        SkipReason::CustomWithoutDesc
    } else {
        SkipReason::EmptyContent
    })
}
