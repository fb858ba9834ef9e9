//! Events as they travel: a protobuf body named by the AMQP `type` property, or a JSON line
//! carrying its message name in `"@type"` (the form `impush publish` reads).

use prost::Message;

use crate::v1::{
    ConversationPushOption, DeviceRegistered, DeviceUnregistered, MessageRevoked, OfflineMessage,
    PresenceChanged, PushSettings, TokenInvalidated,
};

/// The package prefix a fully qualified message name may carry.
const PACKAGE_PREFIX: &str = "impush.v1.";

/// The kinds of event on exchange `impush.events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    OfflineMessage,
    DeviceRegistered,
    DeviceUnregistered,
    PresenceChanged,
    PushSettings,
    TokenInvalidated,
    ConversationPushOption,
    MessageRevoked,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::OfflineMessage,
        EventKind::DeviceRegistered,
        EventKind::DeviceUnregistered,
        EventKind::PresenceChanged,
        EventKind::PushSettings,
        EventKind::TokenInvalidated,
        EventKind::ConversationPushOption,
        EventKind::MessageRevoked,
    ];

    /// The message name, as written in the AMQP `type` property.
    pub fn type_name(self) -> &'static str {
        match self {
            EventKind::OfflineMessage => "OfflineMessage",
            EventKind::DeviceRegistered => "DeviceRegistered",
            EventKind::DeviceUnregistered => "DeviceUnregistered",
            EventKind::PresenceChanged => "PresenceChanged",
            EventKind::PushSettings => "PushSettings",
            EventKind::TokenInvalidated => "TokenInvalidated",
            EventKind::ConversationPushOption => "ConversationPushOption",
            EventKind::MessageRevoked => "MessageRevoked",
        }
    }

    /// The routing key the event is published with on `impush.events`.
    pub fn routing_key(self) -> &'static str {
        match self {
            EventKind::OfflineMessage => "message.offline",
            EventKind::DeviceRegistered | EventKind::DeviceUnregistered => "state.device",
            EventKind::PresenceChanged => "state.presence",
            EventKind::PushSettings | EventKind::ConversationPushOption => "state.settings",
            EventKind::TokenInvalidated => "feedback.token",
            EventKind::MessageRevoked => "message.revoked",
        }
    }

    /// Accepts `OfflineMessage` and `impush.v1.OfflineMessage`.
    pub fn from_type_name(name: &str) -> Result<EventKind, EventError> {
        let short = name.strip_prefix(PACKAGE_PREFIX).unwrap_or(name);
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.type_name() == short)
            .ok_or_else(|| EventError::UnknownType(name.to_owned()))
    }
}

/// One decoded event.
// Most events on the hot path are OfflineMessages: boxing that variant would cost an
// allocation per message to save stack space in the rare state events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    OfflineMessage(OfflineMessage),
    DeviceRegistered(DeviceRegistered),
    DeviceUnregistered(DeviceUnregistered),
    PresenceChanged(PresenceChanged),
    PushSettings(PushSettings),
    TokenInvalidated(TokenInvalidated),
    ConversationPushOption(ConversationPushOption),
    MessageRevoked(MessageRevoked),
}

/// Why bytes or a JSON line are not an event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("the message type is missing (AMQP `type` property or JSON \"@type\")")]
    MissingType,
    #[error("not a valid {kind} protobuf: {source}")]
    Protobuf {
        kind: &'static str,
        source: prost::DecodeError,
    },
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("not a valid {kind} in proto3 JSON: field `{field}`: {source}")]
    JsonFields {
        kind: &'static str,
        /// Where in the event the error is (`elems[0].text`, `push_info.ttl_seconds`);
        /// `.` for the event as a whole.
        field: String,
        source: serde_json::Error,
    },
    #[error("a JSON event must be an object")]
    NotAnObject,
}

macro_rules! per_kind {
    ($kind:expr, $body:ident) => {
        match $kind {
            EventKind::OfflineMessage => $body!(OfflineMessage),
            EventKind::DeviceRegistered => $body!(DeviceRegistered),
            EventKind::DeviceUnregistered => $body!(DeviceUnregistered),
            EventKind::PresenceChanged => $body!(PresenceChanged),
            EventKind::PushSettings => $body!(PushSettings),
            EventKind::TokenInvalidated => $body!(TokenInvalidated),
            EventKind::ConversationPushOption => $body!(ConversationPushOption),
            EventKind::MessageRevoked => $body!(MessageRevoked),
        }
    };
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::OfflineMessage(_) => EventKind::OfflineMessage,
            Event::DeviceRegistered(_) => EventKind::DeviceRegistered,
            Event::DeviceUnregistered(_) => EventKind::DeviceUnregistered,
            Event::PresenceChanged(_) => EventKind::PresenceChanged,
            Event::PushSettings(_) => EventKind::PushSettings,
            Event::TokenInvalidated(_) => EventKind::TokenInvalidated,
            Event::ConversationPushOption(_) => EventKind::ConversationPushOption,
            Event::MessageRevoked(_) => EventKind::MessageRevoked,
        }
    }

    /// Decodes a protobuf body whose message name came with it (AMQP `type`).
    pub fn decode(type_name: Option<&str>, body: &[u8]) -> Result<Event, EventError> {
        let kind = EventKind::from_type_name(type_name.ok_or(EventError::MissingType)?)?;
        macro_rules! decode {
            ($name:ident) => {
                $name::decode(body)
                    .map(Event::$name)
                    .map_err(|source| EventError::Protobuf {
                        kind: kind.type_name(),
                        source,
                    })
            };
        }
        per_kind!(kind, decode)
    }

    pub fn encode_to_vec(&self) -> Vec<u8> {
        match self {
            Event::OfflineMessage(m) => m.encode_to_vec(),
            Event::DeviceRegistered(m) => m.encode_to_vec(),
            Event::DeviceUnregistered(m) => m.encode_to_vec(),
            Event::PresenceChanged(m) => m.encode_to_vec(),
            Event::PushSettings(m) => m.encode_to_vec(),
            Event::TokenInvalidated(m) => m.encode_to_vec(),
            Event::ConversationPushOption(m) => m.encode_to_vec(),
            Event::MessageRevoked(m) => m.encode_to_vec(),
        }
    }

    /// Reads one JSON line: canonical proto3 JSON plus `"@type"` naming the message.
    pub fn from_json_line(line: &str) -> Result<Event, EventError> {
        let value: serde_json::Value = serde_json::from_str(line).map_err(EventError::Json)?;
        Event::from_json_value(value)
    }

    pub fn from_json_value(value: serde_json::Value) -> Result<Event, EventError> {
        let serde_json::Value::Object(mut fields) = value else {
            return Err(EventError::NotAnObject);
        };
        let type_name = match fields.remove("@type") {
            Some(serde_json::Value::String(name)) => name,
            Some(_) | None => return Err(EventError::MissingType),
        };
        let kind = EventKind::from_type_name(&type_name)?;
        let body = serde_json::Value::Object(fields);
        macro_rules! from_json {
            ($name:ident) => {
                serde_path_to_error::deserialize::<_, $name>(body)
                    .map(Event::$name)
                    .map_err(|err| EventError::JsonFields {
                        kind: kind.type_name(),
                        field: err.path().to_string(),
                        source: err.into_inner(),
                    })
            };
        }
        per_kind!(kind, from_json)
    }

    /// Canonical proto3 JSON with `"@type"` first, the inverse of [`Event::from_json_line`].
    pub fn to_json_value(&self) -> serde_json::Value {
        let body = match self {
            Event::OfflineMessage(m) => serde_json::to_value(m),
            Event::DeviceRegistered(m) => serde_json::to_value(m),
            Event::DeviceUnregistered(m) => serde_json::to_value(m),
            Event::PresenceChanged(m) => serde_json::to_value(m),
            Event::PushSettings(m) => serde_json::to_value(m),
            Event::TokenInvalidated(m) => serde_json::to_value(m),
            Event::ConversationPushOption(m) => serde_json::to_value(m),
            Event::MessageRevoked(m) => serde_json::to_value(m),
        };
        let mut out = serde_json::Map::new();
        out.insert(
            "@type".to_owned(),
            serde_json::Value::String(self.kind().type_name().to_owned()),
        );
        // pbjson's serializers only fail on non-string map keys, which this contract has none of.
        if let Ok(serde_json::Value::Object(fields)) = body {
            out.extend(fields);
        }
        serde_json::Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_event_error_names_the_field() {
        let cases = [
            (
                r#"{"@type":"OfflineMessage","msg_id":"m","send_time_ms":"soon"}"#,
                "send_time_ms",
            ),
            (
                r#"{"@type":"OfflineMessage","msg_id":"m","push_info":{"ttl_seconds":"x"}}"#,
                "push_info.ttl_seconds",
            ),
            (
                r#"{"@type":"DeviceRegistered","vendor":"VENDOR_NOKIA"}"#,
                "vendor",
            ),
        ];
        for (line, field) in cases {
            let err = Event::from_json_line(line).unwrap_err().to_string();
            assert!(err.contains(&format!("field `{field}`")), "{line}: {err}");
        }
    }
    use crate::v1::{Elem, OfflinePushInfo, PresenceState, TextElem, Vendor, elem};

    fn sample_message() -> OfflineMessage {
        OfflineMessage {
            msg_id: "m-1".into(),
            sdk_app_id: 1400000001,
            sender_id: "denny".into(),
            sender_nickname: "Denny".into(),
            receiver_id: "vinson".into(),
            elems: vec![Elem {
                content: Some(elem::Content::Text(TextElem { text: "hi".into() })),
            }],
            push_info: Some(OfflinePushInfo {
                ext: "jump to denny".into(),
                ..Default::default()
            }),
            send_time_ms: 1_700_000_000_123,
            ..Default::default()
        }
    }

    #[test]
    fn protobuf_round_trip_keeps_every_field() {
        let event = Event::OfflineMessage(sample_message());
        let decoded = Event::decode(Some("OfflineMessage"), &event.encode_to_vec()).unwrap();
        assert_eq!(decoded, event);
    }

    #[test]
    fn json_round_trip_uses_canonical_names() {
        let event = Event::PresenceChanged(PresenceChanged {
            sdk_app_id: 7,
            user_id: "u".into(),
            device_id: "d".into(),
            state: PresenceState::Background as i32,
            unread: 3,
            at_ms: 42,
        });
        let json = event.to_json_value();
        assert_eq!(json["@type"], "PresenceChanged");
        assert_eq!(json["state"], "PRESENCE_STATE_BACKGROUND");
        assert_eq!(json["atMs"], "42", "int64 is a string in proto3 JSON");
        let back = Event::from_json_line(&json.to_string()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn json_accepts_original_field_names_and_qualified_type() {
        let line = r#"{"@type":"impush.v1.DeviceRegistered","sdk_app_id":1,"user_id":"u","device_id":"d","vendor":"VENDOR_FCM","business_id":"2","token":"t","at_ms":5}"#;
        let Event::DeviceRegistered(reg) = Event::from_json_line(line).unwrap() else {
            panic!("wrong kind");
        };
        assert_eq!(reg.vendor(), Vendor::Fcm);
        assert_eq!(reg.business_id, 2);
    }

    #[test]
    fn unknown_type_and_garbage_are_typed_errors() {
        assert!(matches!(
            Event::decode(Some("Nope"), b""),
            Err(EventError::UnknownType(_))
        ));
        assert!(matches!(
            Event::decode(None, b""),
            Err(EventError::MissingType)
        ));
        assert!(matches!(
            Event::decode(Some("OfflineMessage"), &[0xff, 0xff, 0xff]),
            Err(EventError::Protobuf { .. })
        ));
        assert!(matches!(
            Event::from_json_line(r#"{"msgId":"x"}"#),
            Err(EventError::MissingType)
        ));
        assert!(matches!(
            Event::from_json_line(r#"{"@type":"OfflineMessage","msgId":5}"#),
            Err(EventError::JsonFields { .. })
        ));
        assert!(matches!(
            Event::from_json_line("[1]"),
            Err(EventError::NotAnObject)
        ));
    }

    #[test]
    fn routing_keys_follow_the_contract() {
        assert_eq!(EventKind::OfflineMessage.routing_key(), "message.offline");
        assert_eq!(EventKind::DeviceUnregistered.routing_key(), "state.device");
        assert_eq!(EventKind::PushSettings.routing_key(), "state.settings");
        assert_eq!(EventKind::TokenInvalidated.routing_key(), "feedback.token");
        assert_eq!(
            EventKind::ConversationPushOption.routing_key(),
            "state.settings"
        );
        assert_eq!(EventKind::MessageRevoked.routing_key(), "message.revoked");
    }

    #[test]
    fn conversation_options_and_recalls_read_from_json_lines() {
        let line = r#"{"@type":"ConversationPushOption","sdkAppId":1,"userId":"u","conversation":"group:g","option":"RECEIVE_OPTION_NOT_NOTIFY_EXCEPT_AT","atMs":"5"}"#;
        let Event::ConversationPushOption(option) = Event::from_json_line(line).unwrap() else {
            panic!("wrong kind");
        };
        assert_eq!(option.option(), crate::v1::ReceiveOption::NotNotifyExceptAt);
        let line = r#"{"@type":"impush.v1.MessageRevoked","sdkAppId":1,"msgId":"m","senderId":"s","atMs":"6"}"#;
        let event = Event::from_json_line(line).unwrap();
        assert_eq!(event.kind(), EventKind::MessageRevoked);
        let back = Event::decode(Some("MessageRevoked"), &event.encode_to_vec()).unwrap();
        assert_eq!(back, event);
    }
}
