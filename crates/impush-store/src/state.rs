//! State writes: the ingest worker's device, presence, settings and conversation option
//! events (last write wins by `at_ms`) and the sender's removal of a registration whose token a vendor declared dead.

use impush_proto::v1::{
    ConversationPushOption, DeviceRegistered, DeviceUnregistered, OpenPush, PresenceChanged,
    PresenceState, PushSettings, ReceiveOption, Vendor,
};
use redis::{ScriptInvocation, Value};

use crate::error::StoreError;
use crate::{Applied, Store, reply};

/// Lua compares timestamps as doubles, exact only up to 2^53; ms timestamps stay far below
/// (year 287,000), so a larger one is a producer bug and is refused rather than misordered.
const MAX_EXACT_AT_MS: i64 = 1 << 53;

impl Store {
    pub async fn register_device(&self, e: &DeviceRegistered) -> Result<Applied, StoreError> {
        const WHAT: &str = "DeviceRegistered";
        require_id(WHAT, "user_id", &e.user_id)?;
        require_id(WHAT, "device_id", &e.device_id)?;
        let at_ms = exact_at_ms(WHAT, e.at_ms)?;
        let vendor = match Vendor::try_from(e.vendor) {
            Ok(Vendor::Unspecified) | Err(_) => {
                return Err(StoreError::invalid(
                    WHAT,
                    format!("vendor {} is not a known vendor", e.vendor),
                ));
            }
            Ok(vendor) => vendor,
        };
        let user = self.keys.user(e.sdk_app_id, &e.user_id);
        let device_key = user.device(&e.device_id);
        let mut call = self.scripts.register_device.prepare_invoke();
        call.key(user.devices())
            .key(&device_key)
            .arg(&e.device_id)
            .arg(at_ms)
            .arg(vendor as i32)
            .arg(e.business_id)
            .arg(&e.token)
            .arg(if e.is_tpns_token { "1" } else { "0" });
        self.last_write_wins(WHAT, &call, device_key, "reg_at")
            .await
    }

    pub async fn unregister_device(&self, e: &DeviceUnregistered) -> Result<Applied, StoreError> {
        const WHAT: &str = "DeviceUnregistered";
        require_id(WHAT, "user_id", &e.user_id)?;
        require_id(WHAT, "device_id", &e.device_id)?;
        let at_ms = exact_at_ms(WHAT, e.at_ms)?;
        let user = self.keys.user(e.sdk_app_id, &e.user_id);
        let device_key = user.device(&e.device_id);
        let mut call = self.scripts.unregister_device.prepare_invoke();
        call.key(user.devices())
            .key(&device_key)
            .arg(&e.device_id)
            .arg(at_ms);
        self.last_write_wins(WHAT, &call, device_key, "reg_at")
            .await
    }

    pub async fn set_presence(&self, e: &PresenceChanged) -> Result<Applied, StoreError> {
        const WHAT: &str = "PresenceChanged";
        require_id(WHAT, "user_id", &e.user_id)?;
        require_id(WHAT, "device_id", &e.device_id)?;
        let at_ms = exact_at_ms(WHAT, e.at_ms)?;
        let state = match PresenceState::try_from(e.state) {
            Ok(PresenceState::Unspecified) | Err(_) => {
                return Err(StoreError::invalid(
                    WHAT,
                    format!("state {} is not a known presence state", e.state),
                ));
            }
            Ok(state) => state,
        };
        // BACKGROUND reports the unread count the badge starts from; BACKGROUND and
        // FOREGROUND both mean the user just saw the app, so pushes counted so far are read.
        let (unread, reset_pushes_since) = match state {
            PresenceState::Background => (e.unread.to_string(), "1"),
            PresenceState::Foreground => (String::new(), "1"),
            PresenceState::Disconnected
            | PresenceState::LoggedOut
            | PresenceState::Kicked
            | PresenceState::Unspecified => (String::new(), "0"),
        };
        let device_key = self
            .keys
            .user(e.sdk_app_id, &e.user_id)
            .device(&e.device_id);
        let mut call = self.scripts.set_presence.prepare_invoke();
        call.key(&device_key)
            .arg(at_ms)
            .arg(state as i32)
            .arg(unread)
            .arg(reset_pushes_since);
        self.last_write_wins(WHAT, &call, device_key, "pres_at")
            .await
    }

    pub async fn set_settings(&self, e: &PushSettings) -> Result<Applied, StoreError> {
        const WHAT: &str = "PushSettings";
        require_id(WHAT, "user_id", &e.user_id)?;
        let at_ms = exact_at_ms(WHAT, e.at_ms)?;
        let open_push = OpenPush::try_from(e.open_push).map_err(|_| {
            StoreError::invalid(
                WHAT,
                format!("open_push {} is not a known value", e.open_push),
            )
        })?;
        let quiet_option = ReceiveOption::try_from(e.quiet_option).map_err(|_| {
            StoreError::invalid(
                WHAT,
                format!("quiet_option {} is not a known value", e.quiet_option),
            )
        })?;
        let settings_key = self.keys.user(e.sdk_app_id, &e.user_id).settings();
        let mut call = self.scripts.set_settings.prepare_invoke();
        call.key(&settings_key)
            .arg(at_ms)
            .arg(open_push as i32)
            .arg(&e.c2c_sound)
            .arg(&e.group_sound)
            .arg(e.quiet_start_s)
            .arg(e.quiet_duration_s)
            .arg(quiet_option as i32);
        self.last_write_wins(WHAT, &call, settings_key, "at").await
    }

    /// Stores one user's receive option for one conversation, last write wins by its own
    /// `at_ms` (independent of the other conversations and of the settings).
    pub async fn set_conversation_option(
        &self,
        e: &ConversationPushOption,
    ) -> Result<Applied, StoreError> {
        const WHAT: &str = "ConversationPushOption";
        require_id(WHAT, "user_id", &e.user_id)?;
        require_id(WHAT, "conversation", &e.conversation)?;
        let at_ms = exact_at_ms(WHAT, e.at_ms)?;
        let option = ReceiveOption::try_from(e.option).map_err(|_| {
            StoreError::invalid(WHAT, format!("option {} is not a known value", e.option))
        })?;
        let settings_key = self.keys.user(e.sdk_app_id, &e.user_id).settings();
        let mut call = self.scripts.set_conversation_option.prepare_invoke();
        call.key(&settings_key)
            .arg(conversation_field(&e.conversation))
            .arg(conversation_at_field(&e.conversation))
            .arg(at_ms)
            .arg(option as i32);
        self.last_write_wins(WHAT, &call, settings_key, "ca:<conversation>")
            .await
    }

    /// Vendor said the token is dead: drops the device's registration only if it still
    /// holds exactly this token (a newer registration wins). Returns whether it was removed.
    pub async fn remove_device_if_token(
        &self,
        sdk_app_id: u32,
        user_id: &str,
        device_id: &str,
        token: &str,
    ) -> Result<bool, StoreError> {
        // An empty token never identifies a registration; nothing to compare against.
        if token.is_empty() {
            return Ok(false);
        }
        let user = self.keys.user(sdk_app_id, user_id);
        let mut call = self.scripts.remove_device_if_token.prepare_invoke();
        call.key(user.devices())
            .key(user.device(device_id))
            .arg(device_id)
            .arg(token);
        let mut con = self.con.clone();
        let reply: Value = call.invoke_async(&mut con).await?;
        match reply::int("remove_device_if_token", &reply)? {
            1 => Ok(true),
            0 => Ok(false),
            other => Err(StoreError::unexpected(
                "remove_device_if_token",
                format!("result {other}"),
            )),
        }
    }

    /// Runs one last-write-wins script and reads its 1 / 0 / -1 answer.
    async fn last_write_wins(
        &self,
        what: &'static str,
        call: &ScriptInvocation<'_>,
        key: String,
        timestamp_field: &'static str,
    ) -> Result<Applied, StoreError> {
        let mut con = self.con.clone();
        let reply: Value = call.invoke_async(&mut con).await?;
        match reply::int(what, &reply)? {
            1 => Ok(Applied::Applied),
            0 => Ok(Applied::Stale),
            -1 => Err(StoreError::Corrupt {
                key,
                field: timestamp_field,
                detail: "stored timestamp is not a number".into(),
            }),
            other => Err(StoreError::unexpected(what, format!("result {other}"))),
        }
    }
}

/// The settings hash field holding a conversation's receive option.
pub(crate) fn conversation_field(conversation: &str) -> String {
    format!("c:{conversation}")
}

/// The settings hash field holding the `at_ms` of a conversation's receive option.
fn conversation_at_field(conversation: &str) -> String {
    format!("ca:{conversation}")
}

fn require_id(what: &'static str, field: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::invalid(what, format!("empty {field}")));
    }
    Ok(())
}

fn exact_at_ms(what: &'static str, at_ms: i64) -> Result<i64, StoreError> {
    if !(-MAX_EXACT_AT_MS..=MAX_EXACT_AT_MS).contains(&at_ms) {
        return Err(StoreError::invalid(
            what,
            format!("at_ms {at_ms} is beyond ±2^53 and cannot be ordered exactly"),
        ));
    }
    Ok(at_ms)
}
