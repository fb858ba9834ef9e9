//! The notification a message becomes: title, body, sound, ext, expiry, and the badge.
//!
//! - Body: C2C `Nickname: content` (content alone without a nickname); group
//!   `Name (GroupName): content`, name = the sender's name card, else nickname, else none.
//!   The content is the texts of the elements joined (text as is, `[image]`, `[voice]`, …,
//!   a custom element's desc), or `push_info.desc` when set, which replaces it.
//! - Title: `push_info.title` ("added to the default push content").
//! - Sound: the message's sound for the device's platform, else the custom element's own
//!   sound, else the user's c2c/group sound, else the default; `push.no_sound` anywhere on
//!   that path means silence. The platform is the device's, not its channel's: a TPNS token
//!   on an iPhone is rendered with the iOS rules (`ios_sound`, badge).
//! - ext: `push_info.ext`, else the custom element's ext, passed unchanged.
//! - Mention: a recipient mentioned by name gets `[@me] ` before the body, one mentioned
//!   with the whole group `[@all] ` (templates `mention_me`, `mention_all`).
//! - Recall: [`recall_notification`] carries the `recalled` text under the message's collapse
//!   id, for vendors that replace a shown notification by it.
//! - Expiry: the TTL and, for a call invitation, the ring timeout, whichever ends first.
//!   Call invitations go to iOS as VoIP pushes unless the sender asked for a plain one.

use impush_proto::v1::{
    CallType, IosPushType, Notification, OfflineMessage, PushSettings, Vendor, elem::Content,
};

use crate::conversation::{Mention, conversation_of};
use crate::decide::{call_expiry_ms, ttl_expiry_ms};
use crate::templates::{Templates, fill};
use crate::vendor;

/// The `ios_sound` / `android_sound` value that mutes a push.
pub const NO_SOUND: &str = "push.no_sound";
/// The sound value meaning the platform's default sound.
pub const DEFAULT_SOUND: &str = "default";

/// Renders `message` for a device of `device_vendor` of a recipient it does not mention.
pub fn render_notification(
    message: &OfflineMessage,
    device_vendor: Vendor,
    settings: Option<&PushSettings>,
    templates: &Templates,
) -> Notification {
    render_for_recipient(message, device_vendor, settings, templates, None)
}

/// Renders `message` for a device of `device_vendor` of a recipient it mentions as
/// `mention` says (`crate::mention_of`): the mention marker starts the body.
pub fn render_for_recipient(
    message: &OfflineMessage,
    device_vendor: Vendor,
    settings: Option<&PushSettings>,
    templates: &Templates,
    mention: Option<Mention>,
) -> Notification {
    let info = message.push_info.clone().unwrap_or_default();
    let is_group = !message.group_id.is_empty();
    let content = if info.desc.is_empty() {
        elems_text(message, templates)
    } else {
        info.desc.clone()
    };
    let sender_name = if is_group && !message.sender_name_card.is_empty() {
        &message.sender_name_card
    } else {
        &message.sender_nickname
    };
    let marker = match mention {
        Some(Mention::Me) => templates.mention_me.as_str(),
        Some(Mention::All) => templates.mention_all.as_str(),
        None => "",
    };
    let formatted = match (is_group, sender_name.is_empty()) {
        (false, false) => fill(
            &templates.c2c,
            &[("nickname", sender_name), ("content", &content)],
        ),
        (false, true) => fill(&templates.c2c_anonymous, &[("content", &content)]),
        (true, false) => fill(
            &templates.group,
            &[
                ("name", sender_name),
                ("nickname", &message.sender_nickname),
                ("group_name", &message.group_name),
                ("content", &content),
            ],
        ),
        (true, true) => fill(
            &templates.group_anonymous,
            &[("group_name", &message.group_name), ("content", &content)],
        ),
    };
    let body = if marker.is_empty() {
        formatted
    } else {
        format!("{marker}{formatted}")
    };

    let expires_at_ms = [call_expiry_ms(message), ttl_expiry_ms(message)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
    let ios_push_type = match info.ios_push_type() {
        IosPushType::Unspecified if message.call.is_some() => IosPushType::Voip,
        IosPushType::Unspecified => IosPushType::Apns,
        explicit => explicit,
    };
    let ext = if info.ext.is_empty() {
        custom_ext(message).to_owned()
    } else {
        info.ext.clone()
    };

    Notification {
        title: info.title.clone(),
        body,
        sound: resolve_sound(message, device_vendor, settings, is_group),
        ext,
        ios_push_type: ios_push_type as i32,
        expires_at_ms,
        send_time_ms: message.send_time_ms,
        conversation: conversation_of(message),
        is_call: message.call.is_some(),
        is_group,
        android_oppo_channel_id: info.android_oppo_channel_id,
        android_fcm_channel_id: info.android_fcm_channel_id,
        android_xiaomi_channel_id: info.android_xiaomi_channel_id,
        android_vivo_classification: info.android_vivo_classification,
        android_huawei_category: info.android_huawei_category,
        sender_name: sender_name.clone(),
        group_name: message.group_name.clone(),
        collapse_id: collapse_id(&message.msg_id),
        android_notify_mode: info.android_notify_mode,
        ios_content_available: info.ios_content_available,
        ios_mutable_content: info.ios_mutable_content,
        request_at_ms: 0,
        ios_device: vendor::is_ios(device_vendor),
        // Set by the sender, which knows whether the credential asks for receipts.
        receipt_param: String::new(),
    }
}

/// What replaces a recalled message's notification where the vendor replaces by collapse id
/// (APNs `apns-collapse-id`, FCM `tag`): the `recalled` text, silent, with the message's own
/// collapse id.
pub fn recall_notification(msg_id: &str, templates: &Templates, at_ms: i64) -> Notification {
    Notification {
        body: templates.recalled.clone(),
        ios_push_type: IosPushType::Apns as i32,
        send_time_ms: at_ms,
        collapse_id: collapse_id(msg_id),
        ..Notification::default()
    }
}

/// The message's collapse id: its msg_id, or a stable digest of one APNs would refuse or
/// that could not travel in a header (over 64 bytes, or anything but visible ASCII: a line
/// break would end the header). Only copies of one message share it.
fn collapse_id(msg_id: &str) -> String {
    if msg_id.len() <= 64 && crate::ids::is_header_safe(msg_id) {
        msg_id.to_owned()
    } else {
        format!("m-{:016x}", crate::ids::stable_hash(&[msg_id.as_bytes()]))
    }
}

/// The iOS badge of a device: its reported unread count plus the pushes since, this one
/// included (`pushes_since >= 1`). `None` for Android devices and `ignore_ios_badge`.
pub fn badge_for(
    device_vendor: Vendor,
    message: &OfflineMessage,
    unread: u32,
    pushes_since: u32,
) -> Option<u32> {
    let ignore = message
        .push_info
        .as_ref()
        .is_some_and(|i| i.ignore_ios_badge);
    (vendor::is_ios(device_vendor) && !ignore).then(|| unread.saturating_add(pushes_since))
}

/// The texts of all elements, joined.
pub fn elems_text(message: &OfflineMessage, templates: &Templates) -> String {
    let parts: Vec<&str> = message
        .elems
        .iter()
        .filter_map(|elem| match elem.content.as_ref()? {
            Content::Text(t) => Some(t.text.as_str()),
            Content::Image(_) => Some(templates.image.as_str()),
            Content::Sound(_) => Some(templates.voice.as_str()),
            Content::File(_) => Some(templates.file.as_str()),
            Content::Video(_) => Some(templates.video.as_str()),
            Content::Location(_) => Some(templates.location.as_str()),
            Content::Face(_) => Some(templates.face.as_str()),
            Content::Custom(c) => Some(c.desc.as_str()),
            Content::Merger(_) => Some(templates.merger.as_str()),
        })
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty()
        && let Some(call) = &message.call
    {
        return match call.call_type() {
            CallType::Video => templates.video_call.clone(),
            CallType::Audio | CallType::Unspecified => templates.audio_call.clone(),
        };
    }
    parts.join(&templates.elem_separator)
}

fn custom_ext(message: &OfflineMessage) -> &str {
    message
        .elems
        .iter()
        .find_map(|elem| match &elem.content {
            Some(Content::Custom(c)) if !c.ext.is_empty() => Some(c.ext.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// The first custom element's own sound (TIMCustomElem `sound`), `""` when none.
fn custom_sound(message: &OfflineMessage) -> &str {
    message
        .elems
        .iter()
        .find_map(|elem| match &elem.content {
            Some(Content::Custom(c)) if !c.sound.is_empty() => Some(c.sound.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// The notifications of one message for its recipients, each rendered once: a render
/// depends only on the device's vendor and the one user setting it reads (the c2c or group
/// sound), and in a group most members share both. Identical renders share one index, so
/// the index also tells which devices can share a vendor request.
pub struct Renders<'m> {
    message: &'m OfflineMessage,
    templates: &'m Templates,
    is_group: bool,
    /// (vendor, user sound, mention) → index in `notifications`.
    seen: Vec<(Vendor, String, Option<Mention>, usize)>,
    notifications: Vec<Notification>,
}

/// Past this many distinct (vendor, sound) pairs, lookups cost more than they save.
const MAX_DISTINCT_RENDERS: usize = 64;

impl<'m> Renders<'m> {
    pub fn new(message: &'m OfflineMessage, templates: &'m Templates) -> Renders<'m> {
        Renders {
            message,
            templates,
            is_group: !message.group_id.is_empty(),
            seen: Vec::new(),
            notifications: Vec::new(),
        }
    }

    /// The index of the notification for a device of `vendor` whose user has `settings`;
    /// equal indices mean equal notifications.
    pub fn index(&mut self, vendor: Vendor, settings: Option<&PushSettings>) -> usize {
        self.index_for(vendor, settings, None)
    }

    /// [`Renders::index`] for a recipient the message mentions as `mention` says.
    pub fn index_for(
        &mut self,
        vendor: Vendor,
        settings: Option<&PushSettings>,
        mention: Option<Mention>,
    ) -> usize {
        let sound = user_sound(settings, self.is_group);
        if let Some(&(_, _, _, i)) = self
            .seen
            .iter()
            .find(|(v, s, m, _)| *v == vendor && s == sound && *m == mention)
        {
            return i;
        }
        let notification =
            render_for_recipient(self.message, vendor, settings, self.templates, mention);
        let same = if self.notifications.len() < MAX_DISTINCT_RENDERS {
            self.notifications.iter().position(|n| *n == notification)
        } else {
            None
        };
        let index = match same {
            Some(i) => i,
            None => {
                self.notifications.push(notification);
                self.notifications.len() - 1
            }
        };
        if self.seen.len() < MAX_DISTINCT_RENDERS {
            self.seen.push((vendor, sound.to_owned(), mention, index));
        }
        index
    }

    pub fn get(&self, index: usize) -> Option<&Notification> {
        self.notifications.get(index)
    }
}

/// The user's own sound for this kind of message, `""` when none.
fn user_sound(settings: Option<&PushSettings>, is_group: bool) -> &str {
    settings.map_or("", |s| {
        if is_group {
            s.group_sound.as_str()
        } else {
            s.c2c_sound.as_str()
        }
    })
}

fn resolve_sound(
    message: &OfflineMessage,
    device_vendor: Vendor,
    settings: Option<&PushSettings>,
    is_group: bool,
) -> String {
    let info = message.push_info.as_ref();
    let message_sound = info.map_or("", |i| {
        if vendor::is_ios(device_vendor) {
            i.ios_sound.as_str()
        } else {
            i.android_sound.as_str()
        }
    });
    let user_sound = user_sound(settings, is_group);
    let chosen = [message_sound, custom_sound(message), user_sound]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SOUND);
    if chosen == NO_SOUND {
        String::new()
    } else {
        chosen.to_owned()
    }
}
