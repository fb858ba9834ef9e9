//! The Redis key layout. Every key of one user carries the same Redis Cluster hash tag,
//! `{<sdk_app_id>:<user_id>}`, so a script may touch all of that user's keys at once:
//!
//! ```text
//! <prefix>:{<sdk_app_id>:<user>}:devs                    set of registered device ids
//! <prefix>:{<sdk_app_id>:<user>}:d:<device_id>           hash: one device (see scripts.rs)
//! <prefix>:{<sdk_app_id>:<user>}:s                       hash: the user's push settings,
//!                                                        quiet hours and conversation options
//! <prefix>:{<sdk_app_id>:<user>}:b:<msg>:<device_id>     badge number given to one push
//! <prefix>:{<sdk_app_id>:<user>}:sent:<msg>:<device_id>  the vendor accepted this push
//! ```
//!
//!
//! A recalled message has one key of its own, tagged by the message rather than a user:
//!
//! ```text
//! <prefix>:revoked:{<sdk_app_id>:<msg>}                  at_ms of the MessageRevoked
//! <prefix>:shown:{<sdk_app_id>:<msg>}                    list: devices its push reached
//! ```
//!
//! `<user>` and `<msg>` are escaped with [`escape_component`]: a `}` in a user id would
//! otherwise close the hash tag early, and a `:` in a message id would make
//! `b:<msg>:<device_id>` ambiguous. The device id is always the last component, so it is
//! written as is: nothing follows it that it could be confused with.
//!
//! A credential's fleet-wide limits (limits.rs) live under `{cred:<business_id>}`:
//!
//! ```text
//! <prefix>:{cred:<business_id>}:rate          the rate limit's theoretical arrival time, µs
//! <prefix>:{cred:<business_id>}:quota:<day>   pushes the vendor accepted that day
//! ```
//!
//! On Redis Cluster a user's keys all live in the slot of that tag ([`slot`]); the store
//! groups batches by it.

use crate::error::StoreError;

/// Redis Cluster's slots: CRC16 (XMODEM) of the hash tag, modulo 16384.
const SLOTS: u16 = 16384;

/// The cluster slot of `key`: of its hash tag (between the first `{` and the next `}`) when
/// it has a non-empty one, else of the whole key, exactly as Redis computes it.
pub(crate) fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = bytes.get(open + 1..)?;
        let close = rest.iter().position(|&b| b == b'}')?;
        rest.get(..close).filter(|tag| !tag.is_empty())
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % SLOTS
}

/// Percent-encodes the four characters that carry meaning in a key: `%` (the escape itself),
/// `{` and `}` (the hash tag) and `:` (the separator). Everything else, unicode included,
/// is kept as is, so keys stay readable in `redis-cli`.
pub(crate) fn escape_component(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            ':' => escaped.push_str("%3A"),
            '{' => escaped.push_str("%7B"),
            '}' => escaped.push_str("%7D"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The prefix every key of this deployment starts with.
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// Braces in the prefix would move the hash tag away from the user, so they are refused.
    pub(crate) fn new(prefix: &str) -> Result<KeySpace, StoreError> {
        if prefix.is_empty() {
            return Err(StoreError::invalid("key prefix", "empty"));
        }
        if prefix.contains(['{', '}']) {
            return Err(StoreError::invalid(
                "key prefix",
                format!("{prefix:?} contains a brace, which would break the hash tags"),
            ));
        }
        Ok(KeySpace {
            prefix: prefix.to_owned(),
        })
    }

    /// The record that `msg_id` was recalled.
    pub(crate) fn revoked(&self, sdk_app_id: u32, msg_id: &str) -> String {
        format!(
            "{}:revoked:{{{sdk_app_id}:{}}}",
            self.prefix,
            escape_component(msg_id)
        )
    }

    /// The devices a message's push was delivered to (`ShownPush`, protobuf), in the slot of
    /// its recall record.
    pub(crate) fn shown(&self, sdk_app_id: u32, msg_id: &str) -> String {
        format!(
            "{}:shown:{{{sdk_app_id}:{}}}",
            self.prefix,
            escape_component(msg_id)
        )
    }

    pub(crate) fn user(&self, sdk_app_id: u32, user_id: &str) -> UserKeys {
        UserKeys {
            base: format!(
                "{}:{{{sdk_app_id}:{}}}",
                self.prefix,
                escape_component(user_id)
            ),
        }
    }
}

impl KeySpace {
    /// The keys of one credential's fleet-wide limits, all under the hash tag
    /// `{cred:<business_id>}`, so one script may touch them on a cluster:
    /// `<prefix>:{cred:<id>}:rate` (the rate limit's state) and
    /// `<prefix>:{cred:<id>}:quota:<day>` (pushes accepted that day).
    pub(crate) fn credential(&self, business_id: u64) -> CredentialKeys {
        CredentialKeys {
            base: format!("{}:{{cred:{business_id}}}", self.prefix),
        }
    }
}

/// The keys of one credential's limits; all in the same cluster slot.
#[derive(Debug, Clone)]
pub(crate) struct CredentialKeys {
    base: String,
}

impl CredentialKeys {
    pub(crate) fn rate(&self) -> String {
        format!("{}:rate", self.base)
    }

    pub(crate) fn quota(&self, day: i64) -> String {
        format!("{}:quota:{day}", self.base)
    }
}

/// The keys of one user; all in the same cluster slot.
#[derive(Debug, Clone)]
pub(crate) struct UserKeys {
    base: String,
}

impl UserKeys {
    pub(crate) fn devices(&self) -> String {
        format!("{}:devs", self.base)
    }

    pub(crate) fn device(&self, device_id: &str) -> String {
        format!("{}:d:{device_id}", self.base)
    }

    pub(crate) fn settings(&self) -> String {
        format!("{}:s", self.base)
    }

    pub(crate) fn badge(&self, msg_id: &str, device_id: &str) -> String {
        format!("{}:b:{}:{device_id}", self.base, escape_component(msg_id))
    }

    pub(crate) fn sent(&self, msg_id: &str, device_id: &str) -> String {
        format!(
            "{}:sent:{}:{device_id}",
            self.base,
            escape_component(msg_id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster uses: between the first `{` and the next `}`.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        &key[open + 1..close]
    }

    fn space() -> KeySpace {
        KeySpace::new("impush").unwrap()
    }

    #[test]
    fn all_keys_of_a_user_share_one_hash_tag_whatever_the_ids_contain() {
        let user = space().user(7, "a}b{c:d%e 用户");
        let keys = [
            user.devices(),
            user.device("dev:}{1"),
            user.settings(),
            user.badge("m:{}", "dev:}{1"),
            user.sent("m:{}", "dev:}{1"),
        ];
        for key in &keys {
            assert_eq!(hash_tag(key), "7:a%7Db%7Bc%3Ad%25e 用户", "{key}");
        }
    }

    #[test]
    fn different_users_never_share_a_hash_tag() {
        let a = space().user(1, "x}:s");
        let b = space().user(1, "x");
        assert_ne!(hash_tag(&a.settings()), hash_tag(&b.settings()));
        assert_ne!(a.settings(), b.settings());
    }

    #[test]
    fn message_ids_with_separators_do_not_collide() {
        let user = space().user(1, "u");
        assert_ne!(user.badge("m:n", "d"), user.badge("m", "n:d"));
        assert_ne!(user.sent("m:n", "d"), user.sent("m", "n:d"));
    }

    #[test]
    fn an_id_that_looks_escaped_does_not_collide_with_the_escaped_one() {
        assert_eq!(escape_component("%7D"), "%257D");
        assert_ne!(escape_component("}"), escape_component("%7D"));
    }

    #[test]
    fn slots_are_the_ones_redis_computes() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot("123456789"), 0x31C3 % SLOTS);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        // An empty tag does not count: the whole key is hashed.
        let whole = crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") % SLOTS;
        assert_eq!(slot("foo{}{bar}"), whole);
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
        assert_eq!(slot("foo{bar}{zap}"), slot("bar"));
    }

    #[test]
    fn all_keys_of_a_user_are_in_one_slot() {
        let user = space().user(7, "a}b{c:d%e 用户");
        let expected = slot(&user.devices());
        for key in [
            user.device("dev:}{1"),
            user.settings(),
            user.badge("m:{}", "dev:}{1"),
            user.sent("m:{}", "dev:}{1"),
        ] {
            assert_eq!(slot(&key), expected, "{key}");
        }
    }

    #[test]
    fn a_recall_record_is_tagged_by_its_message() {
        let key = space().revoked(7, "m:{1}");
        assert_eq!(hash_tag(&key), "7:m%3A%7B1%7D");
        assert_eq!(slot(&key), slot(&space().shown(7, "m:{1}")));
        assert_ne!(key, space().revoked(8, "m:{1}"));
    }

    #[test]
    fn prefix_with_braces_is_refused() {
        assert!(KeySpace::new("im{push}").is_err());
        assert!(KeySpace::new("").is_err());
    }
}
