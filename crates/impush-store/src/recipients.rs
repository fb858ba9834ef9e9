//! The router's read: every registered device of each recipient and the recipient's push
//! settings (quiet hours included) and receive option for the message's conversation, and
//! whether the message was recalled, for a whole chunk of recipients in two round trips per
//! Redis node. The conversation option is a field of the settings hash and is read by the
//! same `HMGET`; the recall record is one more command in the first round trip.
//!
//! A stored record that cannot be read (unknown vendor number, non-numeric business id, ...)
//! is skipped with a warning rather than failing the whole message: the other recipients
//! still get their pushes.

use impush_core::DeviceState;
use impush_proto::v1::{PresenceState, PushSettings, ReceiveOption, Vendor};
use redis::Value;

use crate::connection::Batch;
use crate::error::StoreError;
use crate::keys::UserKeys;
use crate::{Store, reply};

/// One registered device with a token.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    pub state: DeviceState,
    /// A TPNS token stands in for the phone vendor's own token.
    pub is_tpns_token: bool,
}

/// Everything the router needs about one recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientState {
    pub user_id: String,
    /// Registered devices with a token, ordered by device id.
    pub devices: Vec<DeviceRecord>,
    /// `None` when the user never sent settings (push on, default sounds, no quiet hours).
    pub settings: Option<PushSettings>,
    /// The user's receive option for the conversation asked about (`Unspecified` when
    /// none is stored, or none was asked about).
    pub conversation_option: ReceiveOption,
}

/// What [`Store::fetch_chunk`] read for one chunk of a message's recipients.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkState {
    /// The message was recalled: `recipients` is left empty, nothing is to be sent.
    pub revoked: bool,
    pub recipients: Vec<RecipientState>,
}

/// Which message a chunk is read for: its recall record and its conversation.
struct MessageContext<'a> {
    msg_id: &'a str,
    conversation: &'a str,
}

const CALL: &str = "fetch_recipients";

/// The device hash fields the router reads, in the order `read_device` takes them.
const DEVICE_FIELDS: [&str; 7] = [
    "vendor",
    "business_id",
    "token",
    "tpns",
    "presence",
    "unread",
    "unregistered",
];
/// The settings hash fields the router reads, in the order `read_settings` takes them;
/// the conversation option's field follows them when a conversation is asked about.
const SETTINGS_FIELDS: [&str; 7] = [
    "at",
    "open_push",
    "c2c_sound",
    "group_sound",
    "quiet_start",
    "quiet_duration",
    "quiet_option",
];

impl Store {
    /// All registered devices and the settings of each user, in the order of `user_ids`,
    /// in two round trips per Redis node whatever the number of users: the device ids of
    /// every user, then every device hash and settings hash. (One script per user could
    /// read both at once, but only by building device keys inside the script, which Redis
    /// Cluster does not allow: a script may only touch the keys it is given.) A device
    /// registered between the two steps is seen by the next message, as if it had
    /// registered a moment later; one unregistered between them reads as a tombstone.
    pub async fn fetch_recipients(
        &self,
        sdk_app_id: u32,
        user_ids: &[String],
    ) -> Result<Vec<RecipientState>, StoreError> {
        Ok(self.fetch(sdk_app_id, user_ids, None).await?.recipients)
    }

    /// [`Store::fetch_recipients`] for the recipients of message `msg_id` in
    /// `conversation` (`c2c:<sender>` or `group:<group id>`): also each recipient's
    /// receive option for that conversation, and whether the message was recalled, in the
    /// same two round trips per Redis node (no more commands either: the option is read by
    /// the settings' `HMGET`, the recall by one `EXISTS`). When it was recalled, the
    /// second round trip is not made.
    pub async fn fetch_chunk(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        conversation: &str,
        user_ids: &[String],
    ) -> Result<ChunkState, StoreError> {
        let context = MessageContext {
            msg_id,
            conversation,
        };
        self.fetch(sdk_app_id, user_ids, Some(context)).await
    }

    async fn fetch(
        &self,
        sdk_app_id: u32,
        user_ids: &[String],
        context: Option<MessageContext<'_>>,
    ) -> Result<ChunkState, StoreError> {
        let mut state = ChunkState {
            revoked: false,
            recipients: Vec::new(),
        };
        if user_ids.is_empty() {
            return Ok(state);
        }
        let users: Vec<UserKeys> = user_ids
            .iter()
            .map(|user_id| self.keys.user(sdk_app_id, user_id))
            .collect();

        let mut members = Batch::new();
        for user in &users {
            let key = user.devices();
            let mut cmd = redis::cmd("SMEMBERS");
            cmd.arg(&key);
            members.add(&key, cmd);
        }
        if let Some(context) = &context {
            let key = self.keys.revoked(sdk_app_id, context.msg_id);
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(&key);
            members.add(&key, cmd);
        }
        let mut member_replies = self.run_batch(&members).await?;
        if context.is_some() {
            let revoked = member_replies
                .pop()
                .ok_or_else(|| StoreError::unexpected(CALL, "no reply to EXISTS"))?;
            if reply::int(CALL, &revoked)? > 0 {
                state.revoked = true;
                return Ok(state);
            }
        }
        let device_ids = member_replies
            .into_iter()
            .zip(&users)
            .map(|(reply, user)| read_device_ids(user, reply))
            .collect::<Result<Vec<_>, _>>()?;

        let conversation_field = context
            .as_ref()
            .map(|c| crate::state::conversation_field(c.conversation));
        let mut fields = Batch::new();
        for (user, ids) in users.iter().zip(&device_ids) {
            let key = user.settings();
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(&key).arg(&SETTINGS_FIELDS[..]);
            if let Some(field) = &conversation_field {
                cmd.arg(field);
            }
            fields.add(&key, cmd);
            for id in ids {
                let key = user.device(id);
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(&key).arg(&DEVICE_FIELDS[..]);
                fields.add(&key, cmd);
            }
        }
        let expected = users.len() + device_ids.iter().map(Vec::len).sum::<usize>();
        let replies = self.run_batch(&fields).await?;
        if replies.len() != expected {
            return Err(StoreError::unexpected(
                CALL,
                format!("{} replies for {expected} reads", replies.len()),
            ));
        }
        let mut replies = replies.into_iter();
        let recipients = &mut state.recipients;
        recipients.reserve(users.len());
        for ((user_id, user), ids) in user_ids.iter().zip(&users).zip(device_ids) {
            let settings = replies.next().unwrap_or(Value::Nil);
            let devices: Vec<(String, Value)> = ids
                .into_iter()
                .map(|id| (id, replies.next().unwrap_or(Value::Nil)))
                .collect();
            recipients.push(read_recipient(
                sdk_app_id, user_id, user, devices, settings,
            )?);
        }
        Ok(state)
    }
}

/// The device ids of a user's set; an id that is not text is skipped with a warning.
fn read_device_ids(user: &UserKeys, reply: Value) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    for id in reply::array(CALL, reply)? {
        match reply::text(id) {
            Ok(Some(id)) => ids.push(id),
            Ok(None) | Err(_) => {
                tracing::warn!(key = %user.devices(), "skipping a device id that is not text");
            }
        }
    }
    Ok(ids)
}

fn read_recipient(
    sdk_app_id: u32,
    user_id: &str,
    user: &UserKeys,
    devices: Vec<(String, Value)>,
    settings: Value,
) -> Result<RecipientState, StoreError> {
    let mut records = Vec::new();
    for (device_id, fields) in devices {
        let fields = reply::array(CALL, fields)?;
        match read_device(&device_id, fields) {
            Ok(Some(record)) => records.push(record),
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(
                    key = %user.device(&device_id),
                    %reason,
                    "skipping a corrupt device record"
                );
            }
        }
    }
    records.sort_by(|a, b| a.state.device_id.cmp(&b.state.device_id));
    let mut settings_fields = reply::array(CALL, settings)?;
    let conversation_option = if settings_fields.len() > SETTINGS_FIELDS.len() {
        let field = settings_fields.pop().unwrap_or(Value::Nil);
        read_conversation_option(field).unwrap_or_else(|reason| {
            tracing::warn!(key = %user.settings(), %reason, "ignoring a corrupt conversation option");
            ReceiveOption::Unspecified
        })
    } else {
        ReceiveOption::Unspecified
    };
    let settings = match read_settings(sdk_app_id, user_id, settings_fields) {
        Ok(settings) => settings,
        Err(reason) => {
            tracing::warn!(key = %user.settings(), %reason, "ignoring corrupt push settings");
            None
        }
    };
    Ok(RecipientState {
        user_id: user_id.to_owned(),
        devices: records,
        settings,
        conversation_option,
    })
}

/// Reads one device's [`DEVICE_FIELDS`]. `Ok(None)`: a
/// device that cannot be pushed to (a tombstone, or registered without a token).
fn read_device(device_id: &str, fields: Vec<Value>) -> Result<Option<DeviceRecord>, String> {
    let [
        vendor,
        business_id,
        token,
        tpns,
        presence,
        unread,
        unregistered,
    ] = <[Value; 7]>::try_from(fields).map_err(|f| format!("{} fields instead of 7", f.len()))?;
    if reply::text(unregistered)?.as_deref() == Some("1") {
        return Ok(None);
    }
    let token = reply::text(token)?.unwrap_or_default();
    if token.is_empty() {
        return Ok(None);
    }
    let vendor_number: i32 = parse_required("vendor", reply::text(vendor)?)?;
    let vendor = match Vendor::try_from(vendor_number) {
        Ok(Vendor::Unspecified) | Err(_) => return Err(format!("unknown vendor {vendor_number}")),
        Ok(vendor) => vendor,
    };
    let business_id: u64 = parse_required("business_id", reply::text(business_id)?)?;
    // A presence never reported (or one this build does not know) is UNSPECIFIED: the
    // decision treats it as "not in the foreground", which is the safe side for delivery.
    let presence = match reply::text(presence)? {
        Some(number) => number
            .parse::<i32>()
            .ok()
            .and_then(|n| PresenceState::try_from(n).ok())
            .unwrap_or(PresenceState::Unspecified),
        None => PresenceState::Unspecified,
    };
    let unread: u32 = match reply::text(unread)? {
        Some(number) => number
            .parse()
            .map_err(|_| format!("unread {number:?} is not a count"))?,
        None => 0,
    };
    Ok(Some(DeviceRecord {
        state: DeviceState {
            device_id: device_id.to_owned(),
            vendor,
            business_id,
            token,
            presence,
            unread,
        },
        is_tpns_token: reply::text(tpns)?.as_deref() == Some("1"),
    }))
}

fn read_settings(
    sdk_app_id: u32,
    user_id: &str,
    fields: Vec<Value>,
) -> Result<Option<PushSettings>, String> {
    let [
        at,
        open_push,
        c2c_sound,
        group_sound,
        quiet_start,
        quiet_duration,
        quiet_option,
    ] = <[Value; 7]>::try_from(fields).map_err(|f| format!("{} fields instead of 7", f.len()))?;
    let Some(at) = reply::text(at)? else {
        return Ok(None);
    };
    // Settings stored before quiet hours existed have none.
    let number_or_zero = |field: &str, value: Value| -> Result<u32, String> {
        reply::text(value)?.map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| format!("{field} {v:?} is not a number"))
        })
    };
    let at_ms: i64 = at
        .parse()
        .map_err(|_| format!("at {at:?} is not a timestamp"))?;
    Ok(Some(PushSettings {
        sdk_app_id,
        user_id: user_id.to_owned(),
        open_push: parse_required("open_push", reply::text(open_push)?)?,
        c2c_sound: reply::text(c2c_sound)?.unwrap_or_default(),
        group_sound: reply::text(group_sound)?.unwrap_or_default(),
        at_ms,
        quiet_start_s: number_or_zero("quiet_start", quiet_start)?,
        quiet_duration_s: number_or_zero("quiet_duration", quiet_duration)?,
        quiet_option: number_or_zero("quiet_option", quiet_option)? as i32,
    }))
}

/// A conversation option field: absent is `Unspecified` (the default, `NOTIFY`).
fn read_conversation_option(field: Value) -> Result<ReceiveOption, String> {
    let Some(number) = reply::text(field)? else {
        return Ok(ReceiveOption::Unspecified);
    };
    number
        .parse::<i32>()
        .ok()
        .and_then(|n| ReceiveOption::try_from(n).ok())
        .ok_or_else(|| format!("conversation option {number:?} is not a known value"))
}

fn parse_required<T: std::str::FromStr>(field: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{field} missing"))?;
    value
        .parse()
        .map_err(|_| format!("{field} {value:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn device_fields(vendor: &str, presence: Option<&str>, unread: Option<&str>) -> Vec<Value> {
        vec![
            bulk(vendor),
            bulk("1"),
            bulk("tok"),
            bulk("0"),
            presence.map_or(Value::Nil, bulk),
            unread.map_or(Value::Nil, bulk),
            bulk("0"),
        ]
    }

    #[test]
    fn a_device_never_reporting_presence_is_unspecified_with_no_unread() {
        let record = read_device("d", device_fields("1", None, None))
            .unwrap()
            .unwrap();
        assert_eq!(record.state.presence, PresenceState::Unspecified);
        assert_eq!(record.state.unread, 0);
        assert_eq!(record.state.vendor, Vendor::Apns);
    }

    #[test]
    fn an_unknown_presence_number_reads_as_unspecified() {
        let record = read_device("d", device_fields("2", Some("99"), Some("4")))
            .unwrap()
            .unwrap();
        assert_eq!(record.state.presence, PresenceState::Unspecified);
        assert_eq!(record.state.unread, 4);
    }

    #[test]
    fn a_corrupt_device_record_is_an_error_not_a_panic() {
        assert!(read_device("d", device_fields("apns", None, None)).is_err());
        assert!(read_device("d", device_fields("1", None, Some("-3"))).is_err());
        assert!(read_device("d", vec![bulk("1")]).is_err());
        let mut not_text = device_fields("1", None, None);
        not_text[2] = Value::BulkString(vec![0xff, 0xfe]);
        assert!(read_device("d", not_text).is_err());
    }

    #[test]
    fn a_tombstone_or_a_device_without_token_is_not_a_recipient_device() {
        let mut tombstone = device_fields("1", None, None);
        tombstone[6] = bulk("1");
        assert_eq!(read_device("d", tombstone), Ok(None));
        let mut no_token = device_fields("1", None, None);
        no_token[2] = Value::Nil;
        assert_eq!(read_device("d", no_token), Ok(None));
    }

    #[test]
    fn settings_never_written_are_none() {
        let fields = vec![Value::Nil; SETTINGS_FIELDS.len()];
        assert_eq!(read_settings(1, "u", fields), Ok(None));
    }

    #[test]
    fn settings_stored_before_quiet_hours_have_none() {
        let mut fields = vec![Value::Nil; SETTINGS_FIELDS.len()];
        fields[0] = bulk("5");
        fields[1] = bulk("2");
        let settings = read_settings(1, "u", fields).unwrap().unwrap();
        assert_eq!(settings.quiet_duration_s, 0);
        assert_eq!(settings.quiet_option(), ReceiveOption::Unspecified);
    }

    #[test]
    fn a_conversation_option_reads_as_its_enum_and_absent_as_unspecified() {
        assert_eq!(
            read_conversation_option(bulk("2")),
            Ok(ReceiveOption::NotNotify)
        );
        assert_eq!(
            read_conversation_option(Value::Nil),
            Ok(ReceiveOption::Unspecified)
        );
        assert!(read_conversation_option(bulk("x")).is_err());
    }
}
