//! Conversation push options, @ mentions and quiet hours: whether a recipient who would get
//! a push wants it for this conversation at this moment.
//!
//! The rules follow Tencent Cloud IM's receive options per conversation and its
//! do-not-disturb window for the whole account
//! (<https://cloud.tencent.com/document/product/269/75353>):
//!
//! - `NOT_NOTIFY` for the message's conversation: no push, mentions included
//!   ([`SkipReason::ConversationMuted`]).
//! - `NOT_NOTIFY_EXCEPT_AT`: a push only when the recipient is mentioned, by name
//!   (`at_user_ids`) or with the whole group (`at_all`).
//! - `NOTIFY`, or no option (`UNSPECIFIED`): a push.
//! - Inside the quiet window (`quiet_start_s` seconds after 00:00 UTC, for
//!   `quiet_duration_s` seconds, possibly across midnight) the window's own option applies
//!   the same way ([`SkipReason::QuietHours`]); a conversation's `NOTIFY` does not lift it.
//!
//! The conversation of a message, seen from its recipient, is `group:<group_id>`, or for a
//! one-to-one message `c2c:<sender_id>` (the recipient's peer is the sender).

use impush_proto::v1::{OfflineMessage, PushSettings, ReceiveOption};

use crate::decide::SkipReason;

const DAY_MS: i64 = 24 * 3600 * 1000;
const C2C_PREFIX: &str = "c2c:";
const GROUP_PREFIX: &str = "group:";

/// How a recipient is mentioned in a message; it puts a marker before the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mention {
    /// Named in `at_user_ids`.
    Me,
    /// `at_all`, and not named.
    All,
}

/// The conversation key of a message as its recipients see it.
pub fn conversation_of(message: &OfflineMessage) -> String {
    if message.group_id.is_empty() {
        format!("{C2C_PREFIX}{}", message.sender_id)
    } else {
        format!("{GROUP_PREFIX}{}", message.group_id)
    }
}

/// Whether `conversation` is a key of the contract: `c2c:<user id>` or `group:<group id>`
/// with a non-empty id.
pub fn check(conversation: &str) -> Result<(), String> {
    let id = conversation
        .strip_prefix(C2C_PREFIX)
        .or_else(|| conversation.strip_prefix(GROUP_PREFIX));
    match id {
        Some(id) if !id.is_empty() => Ok(()),
        Some(_) => Err(format!("conversation {conversation:?} has an empty id")),
        None => Err(format!(
            "conversation {conversation:?} is neither c2c:<user id> nor group:<group id>"
        )),
    }
}

/// How the message mentions `recipient_id`, if it does. Being named wins over `at_all`.
pub fn mention_of(message: &OfflineMessage, recipient_id: &str) -> Option<Mention> {
    if message.at_user_ids.iter().any(|id| id == recipient_id) {
        Some(Mention::Me)
    } else if message.at_all {
        Some(Mention::All)
    } else {
        None
    }
}

/// Whether the quiet window holds `now_ms`: it starts `start_s` seconds after 00:00 UTC and
/// lasts `duration_s` seconds (0: no window; a day or more: always), crossing midnight when
/// it runs past the end of the day. The start is inclusive, the end exclusive.
pub fn in_quiet_window(start_s: u32, duration_s: u32, now_ms: i64) -> bool {
    if duration_s == 0 {
        return false;
    }
    let duration_ms = i64::from(duration_s) * 1000;
    if duration_ms >= DAY_MS {
        return true;
    }
    let start_ms = (i64::from(start_s) * 1000).rem_euclid(DAY_MS);
    let time_of_day = now_ms.rem_euclid(DAY_MS);
    let since_start = (time_of_day - start_ms).rem_euclid(DAY_MS);
    since_start < duration_ms
}

/// Whether an option keeps a push from a recipient who is (or is not) mentioned.
fn blocks(option: ReceiveOption, mentioned: bool) -> bool {
    match option {
        ReceiveOption::NotNotify => true,
        ReceiveOption::NotNotifyExceptAt => !mentioned,
        ReceiveOption::Notify | ReceiveOption::Unspecified => false,
    }
}

/// The option the quiet window applies: a window set without one silences everything.
fn quiet_option(settings: &PushSettings) -> ReceiveOption {
    match settings.quiet_option() {
        ReceiveOption::Unspecified => ReceiveOption::NotNotify,
        option => option,
    }
}

/// Whether `recipient_id` wants a push of `message`, given their option for its
/// conversation (`Unspecified` when they set none) and their settings (quiet hours), at
/// `now_ms`. The conversation's option is checked first, so when both block the reason is
/// [`SkipReason::ConversationMuted`].
pub fn decide_conversation(
    message: &OfflineMessage,
    recipient_id: &str,
    conversation_option: ReceiveOption,
    settings: Option<&PushSettings>,
    now_ms: i64,
) -> Result<(), SkipReason> {
    let mentioned = mention_of(message, recipient_id).is_some();
    if blocks(conversation_option, mentioned) {
        return Err(SkipReason::ConversationMuted);
    }
    if let Some(settings) = settings
        && in_quiet_window(settings.quiet_start_s, settings.quiet_duration_s, now_ms)
        && blocks(quiet_option(settings), mentioned)
    {
        return Err(SkipReason::QuietHours);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_keys_are_checked() {
        assert!(check("c2c:alice").is_ok());
        assert!(check("group:g1").is_ok());
        assert!(check("group:").is_err());
        assert!(check("alice").is_err());
        assert!(check("").is_err());
    }

    #[test]
    fn a_window_of_a_day_or_more_always_holds() {
        assert!(in_quiet_window(5, 86_400, 0));
        assert!(in_quiet_window(0, u32::MAX, 1_700_000_000_000));
    }
}
