//! How a dead letter is shown to people and scripts: its headers and properties, and its
//! body decoded (a PushJob or an event as canonical proto3 JSON), with every device token
//! cut to its first characters.

use base64::Engine;
use impush_amqp::{AMQPValue, BasicProperties, Delivery, FieldTable};
use impush_core::text::short_token;
use impush_proto::Event;
use impush_proto::v1::PushJob;
use prost::Message;
use serde_json::{Map, Value, json};

use super::filter::{Target, format_instant};

/// The body of a dead letter, decoded as what its queue holds.
pub enum Body {
    Job(Box<PushJob>),
    Event(Box<Event>),
    Undecodable(String),
}

impl Body {
    pub fn decode(target: Target, delivery: &Delivery) -> Body {
        match target {
            Target::Vendor(_) => match PushJob::decode(delivery.data.as_slice()) {
                Ok(job) => Body::Job(Box::new(job)),
                Err(err) => Body::Undecodable(format!("not a PushJob: {err}")),
            },
            Target::Events => {
                let type_name = delivery.properties.kind().as_ref().map(|t| t.as_str());
                match Event::decode(type_name, &delivery.data) {
                    Ok(event) => Body::Event(Box::new(event)),
                    Err(err) => Body::Undecodable(format!("not an event: {err}")),
                }
            }
        }
    }

    /// The message's idempotency key, when the body or the properties name one.
    pub fn msg_id(&self, properties: &BasicProperties) -> Option<String> {
        match self {
            Body::Job(job) => Some(job.msg_id.clone()),
            Body::Event(event) => match event.as_ref() {
                Event::OfflineMessage(message) => Some(message.msg_id.clone()),
                _ => None,
            },
            Body::Undecodable(_) => None,
        }
        .filter(|id| !id.is_empty())
        .or_else(|| properties.message_id().as_ref().map(|id| id.to_string()))
    }
}

/// One line of `impush dlq inspect`.
pub fn inspect_line(queue: &str, position: u32, delivery: &Delivery, body: &Body) -> Value {
    let properties = &delivery.properties;
    let headers = properties
        .headers()
        .as_ref()
        .map_or_else(|| Value::Object(Map::new()), table_json);
    let dead_at =
        impush_amqp::header_u64(properties, impush_amqp::headers::DEAD_AT_MS).map(format_instant);
    let mut line = json!({
        "queue": queue,
        "position": position,
        "msg_id": body.msg_id(properties),
        "dead_at": dead_at,
        "headers": headers,
        "properties": {
            "type": properties.kind().as_ref().map(|v| v.as_str()),
            "content_type": properties.content_type().as_ref().map(|v| v.as_str()),
            "message_id": properties.message_id().as_ref().map(|v| v.as_str()),
            "timestamp": properties.timestamp(),
        },
    });
    let decoded = match body {
        Body::Job(job) => ("job", serde_json::to_value(job.as_ref()).ok()),
        Body::Event(event) => ("event", Some(event.to_json_value())),
        Body::Undecodable(note) => {
            line["note"] = Value::String(note.clone());
            (
                "body_base64",
                Some(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(&delivery.data),
                )),
            )
        }
    };
    line[decoded.0] = decoded.1.unwrap_or(Value::Null);
    shorten_tokens(&mut line);
    line
}

/// Cuts every string under a `token` key, at any depth, to its first characters.
pub fn shorten_tokens(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match inner {
                    Value::String(token) if key == "token" => {
                        *token = short_token(token).to_owned();
                    }
                    _ => shorten_tokens(inner),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(shorten_tokens),
        _ => {}
    }
}

fn table_json(table: &FieldTable) -> Value {
    Value::Object(
        table
            .inner()
            .iter()
            .map(|(key, value)| (key.to_string(), amqp_json(value)))
            .collect(),
    )
}

fn amqp_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::DecimalValue(d) => json!({"scale": d.scale, "value": d.value}),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(amqp_json).collect())
        }
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(table) => table_json(table),
        AMQPValue::ByteArray(bytes) => {
            json!(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
        }
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_cut_to_eight_characters_at_any_depth() {
        let mut value = json!({
            "targets": [{"token": "0123456789abcdef", "deviceId": "d1"}],
            "event": {"token": "短い短い短い短い短い"},
            "tokenCount": "0123456789abcdef",
        });
        shorten_tokens(&mut value);
        assert_eq!(value["targets"][0]["token"], "01234567");
        assert_eq!(value["targets"][0]["deviceId"], "d1");
        assert_eq!(value["event"]["token"], "短い短い短い短い");
        assert_eq!(value["tokenCount"], "0123456789abcdef", "only `token` keys");
    }

    #[test]
    fn headers_become_json_of_their_own_types() {
        let mut table = FieldTable::default();
        table.insert(
            "x-impush-reason".into(),
            AMQPValue::LongString("BadTopic".into()),
        );
        table.insert("x-impush-status".into(), AMQPValue::LongLongInt(400));
        table.insert("flag".into(), AMQPValue::Boolean(true));
        assert_eq!(
            table_json(&table),
            json!({"x-impush-reason": "BadTopic", "x-impush-status": 400, "flag": true})
        );
    }
}
