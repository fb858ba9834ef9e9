//! Shared helpers of the integration tests: a [`Store`] on the real Redis under a fresh,
//! unique prefix, a raw connection to look at the keys, event builders, and cleanup.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use impush_proto::v1::{
    DeviceRegistered, DeviceUnregistered, OpenPush, PresenceChanged, PresenceState, PushSettings,
    Vendor,
};
use impush_store::Store;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

pub const APP: u32 = 1400000001;

pub fn redis_url() -> String {
    std::env::var("IMPUSH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct TestStore {
    pub store: Store,
    pub prefix: String,
    pub raw: MultiplexedConnection,
}

impl TestStore {
    pub async fn new() -> TestStore {
        let prefix = format!("impush-test-{}", uuid::Uuid::new_v4());
        let store = Store::connect(&redis_url(), &prefix)
            .await
            .expect("Redis must run at IMPUSH_TEST_REDIS_URL or 127.0.0.1:6379");
        let raw = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        TestStore { store, prefix, raw }
    }

    /// Every key this test wrote.
    pub async fn keys(&self) -> Vec<String> {
        let mut raw = self.raw.clone();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut raw)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys
    }

    pub async fn ttl_of_key_containing(&self, needle: &str) -> i64 {
        let key = self
            .keys()
            .await
            .into_iter()
            .find(|k| k.contains(needle))
            .unwrap_or_else(|| panic!("no key containing {needle:?}"));
        let mut raw = self.raw.clone();
        raw.ttl(key).await.unwrap()
    }

    /// Deletes every key of this test and checks none is left.
    pub async fn cleanup(self) {
        let keys = self.keys().await;
        let mut raw = self.raw.clone();
        for chunk in keys.chunks(500) {
            let _: () = raw.del(chunk).await.unwrap();
        }
        assert!(
            self.keys().await.is_empty(),
            "keys left under {}",
            self.prefix
        );
    }
}

pub fn registered(user: &str, device: &str, token: &str, at_ms: i64) -> DeviceRegistered {
    DeviceRegistered {
        sdk_app_id: APP,
        user_id: user.into(),
        device_id: device.into(),
        vendor: Vendor::Apns as i32,
        business_id: 1,
        token: token.into(),
        is_tpns_token: false,
        at_ms,
    }
}

pub fn unregistered(user: &str, device: &str, at_ms: i64) -> DeviceUnregistered {
    DeviceUnregistered {
        sdk_app_id: APP,
        user_id: user.into(),
        device_id: device.into(),
        at_ms,
    }
}

pub fn presence(
    user: &str,
    device: &str,
    state: PresenceState,
    unread: u32,
    at_ms: i64,
) -> PresenceChanged {
    PresenceChanged {
        sdk_app_id: APP,
        user_id: user.into(),
        device_id: device.into(),
        state: state as i32,
        unread,
        at_ms,
    }
}

pub fn settings(user: &str, open_push: OpenPush, c2c_sound: &str, at_ms: i64) -> PushSettings {
    PushSettings {
        sdk_app_id: APP,
        user_id: user.into(),
        open_push: open_push as i32,
        c2c_sound: c2c_sound.into(),
        group_sound: String::new(),
        at_ms,
    }
}

/// The tokens of a user's fetched devices, by device id order.
pub async fn tokens_of(store: &Store, user: &str) -> Vec<(String, String)> {
    let recipients = store
        .fetch_recipients(APP, &[user.to_owned()])
        .await
        .unwrap();
    recipients[0]
        .devices
        .iter()
        .map(|d| (d.state.device_id.clone(), d.state.token.clone()))
        .collect()
}
