//! The ingest side against the real Redis: device, presence and settings events are
//! applied last-write-wins by `at_ms`, whatever their order, repetition or concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use impush_proto::v1::{OpenPush, PresenceState, Vendor};
use impush_store::{Applied, Store, StoreError};
use redis::AsyncCommands;

fn pair(device: &str, token: &str) -> (String, String) {
    (device.to_owned(), token.to_owned())
}

store_test! {
    async fn a_repeated_registration_is_stale_and_changes_nothing(t) {
        let s = &t.store;
        let e = registered("alice", "iphone", "tok-1", 10);
        assert_eq!(s.register_device(&e).await.unwrap(), Applied::Applied);
        assert_eq!(s.register_device(&e).await.unwrap(), Applied::Stale);
        // Same timestamp, different content: still stale, the first one stays.
        let same_time = registered("alice", "iphone", "tok-other", 10);
        assert_eq!(s.register_device(&same_time).await.unwrap(), Applied::Stale);
        assert_eq!(tokens_of(s, "alice").await, vec![pair("iphone", "tok-1")]);
        t.cleanup().await;
    }
}

store_test! {
    async fn an_older_registration_after_an_unregistration_does_not_resurrect_the_device(t) {
        let s = &t.store;
        let reg10 = registered("alice", "iphone", "tok-10", 10);
        let reg15 = registered("alice", "iphone", "tok-15", 15);
        let reg25 = registered("alice", "iphone", "tok-25", 25);
        assert_eq!(s.register_device(&reg10).await.unwrap(), Applied::Applied);
        let unreg20 = unregistered("alice", "iphone", 20);
        assert_eq!(
            s.unregister_device(&unreg20).await.unwrap(),
            Applied::Applied
        );
        assert_eq!(s.register_device(&reg15).await.unwrap(), Applied::Stale);
        assert_eq!(tokens_of(s, "alice").await, vec![]);
        // A repeated unregistration is stale too.
        assert_eq!(s.unregister_device(&unreg20).await.unwrap(), Applied::Stale);
        // A genuinely newer registration brings the device back.
        assert_eq!(s.register_device(&reg25).await.unwrap(), Applied::Applied);
        assert_eq!(tokens_of(s, "alice").await, vec![pair("iphone", "tok-25")]);
        t.cleanup().await;
    }
}

store_test! {
    async fn an_older_registration_does_not_overwrite_a_newer_token(t) {
        let s = &t.store;
        let newer = registered("alice", "iphone", "tok-new", 20);
        let older = registered("alice", "iphone", "tok-old", 10);
        assert_eq!(s.register_device(&newer).await.unwrap(), Applied::Applied);
        assert_eq!(s.register_device(&older).await.unwrap(), Applied::Stale);
        assert_eq!(tokens_of(s, "alice").await, vec![pair("iphone", "tok-new")]);
        t.cleanup().await;
    }
}

store_test! {
    async fn an_unregistration_arriving_before_its_registration_leaves_a_tombstone(t) {
        let s = &t.store;
        let unreg = unregistered("alice", "iphone", 20);
        assert_eq!(s.unregister_device(&unreg).await.unwrap(), Applied::Applied);
        let reg = registered("alice", "iphone", "tok", 10);
        assert_eq!(s.register_device(&reg).await.unwrap(), Applied::Stale);
        assert_eq!(tokens_of(s, "alice").await, vec![]);
        t.cleanup().await;
    }
}

store_test! {
    /// Many workers apply a shuffled stream of register/unregister/presence events for the
    /// same devices at once; whatever the interleaving, each device ends in the state of its
    /// newest event, and replaying every event afterwards changes nothing.
    async fn last_write_wins_under_many_concurrent_out_of_order_writers(t) {
        const EVENTS: i64 = 300;
        const WRITERS: i64 = 16;

        // "ends-registered": newest registration event at 300. "ends-unregistered": newest is
        // an unregistration at 300.
        let task = |store: Store, writer: i64| async move {
            // A fixed permutation of 1..=EVENTS (97 is coprime with 300), dealt to the writers.
            for slot in (0..EVENTS).filter(|slot| slot % WRITERS == writer) {
                let at = (slot * 97) % EVENTS + 1;
                let reg = registered("u", "ends-registered", &format!("tok-{at}"), at);
                if at % 3 == 0 && at != EVENTS {
                    let unreg = unregistered("u", "ends-registered", at);
                    store.unregister_device(&unreg).await.unwrap();
                } else {
                    store.register_device(&reg).await.unwrap();
                }
                if at % 2 == 0 {
                    let unreg = unregistered("u", "ends-unregistered", at);
                    store.unregister_device(&unreg).await.unwrap();
                } else {
                    let reg = registered("u", "ends-unregistered", &format!("tok-{at}"), at);
                    store.register_device(&reg).await.unwrap();
                }
                let state = if at % 2 == 0 {
                    PresenceState::Background
                } else {
                    PresenceState::Foreground
                };
                let change = presence("u", "ends-registered", state, at as u32, at);
                store.set_presence(&change).await.unwrap();
            }
        };
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..WRITERS {
            writers.spawn(task(t.store.clone(), writer));
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }

        let recipients = t.store.fetch_recipients(APP, &["u".into()]).await.unwrap();
        let devices = &recipients[0].devices;
        assert_eq!(devices.len(), 1, "{devices:?}");
        assert_eq!(devices[0].state.device_id, "ends-registered");
        assert_eq!(devices[0].state.token, format!("tok-{EVENTS}"));
        assert_eq!(devices[0].state.presence, PresenceState::Background);
        assert_eq!(devices[0].state.unread, EVENTS as u32);

        // Every event again, in order: all stale.
        for at in 1..=EVENTS {
            let reg = registered("u", "ends-registered", "late", at);
            assert_eq!(t.store.register_device(&reg).await.unwrap(), Applied::Stale);
            let unreg = unregistered("u", "ends-unregistered", at);
            assert_eq!(
                t.store.unregister_device(&unreg).await.unwrap(),
                Applied::Stale
            );
        }
        t.cleanup().await;
    }
}

store_test! {
    async fn presence_before_registration_is_kept_but_the_device_is_not_a_recipient_until_registered(t) {
        let s = &t.store;
        let bg = presence("alice", "iphone", PresenceState::Background, 7, 5);
        assert_eq!(s.set_presence(&bg).await.unwrap(), Applied::Applied);
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        assert!(fetched[0].devices.is_empty());

        let reg = registered("alice", "iphone", "tok", 3);
        assert_eq!(s.register_device(&reg).await.unwrap(), Applied::Applied);
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        let device = &fetched[0].devices[0].state;
        assert_eq!(device.presence, PresenceState::Background);
        assert_eq!(device.unread, 7);
        t.cleanup().await;
    }
}

store_test! {
    async fn presence_has_its_own_timestamp_independent_of_registration(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 100))
            .await
            .unwrap();
        // Older than the registration, but the first presence: applied.
        let fg = presence("alice", "iphone", PresenceState::Foreground, 0, 50);
        assert_eq!(s.set_presence(&fg).await.unwrap(), Applied::Applied);
        let older = presence("alice", "iphone", PresenceState::Background, 3, 40);
        assert_eq!(s.set_presence(&older).await.unwrap(), Applied::Stale);
        assert_eq!(s.set_presence(&fg).await.unwrap(), Applied::Stale);
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        assert_eq!(
            fetched[0].devices[0].state.presence,
            PresenceState::Foreground
        );
        // Unregistering and registering again keeps the presence.
        s.unregister_device(&unregistered("alice", "iphone", 110))
            .await
            .unwrap();
        s.register_device(&registered("alice", "iphone", "tok2", 120))
            .await
            .unwrap();
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        assert_eq!(
            fetched[0].devices[0].state.presence,
            PresenceState::Foreground
        );
        t.cleanup().await;
    }
}

store_test! {
    async fn logout_and_kick_are_kept_as_presence_states_not_deletions(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok-a", 1))
            .await
            .unwrap();
        s.register_device(&registered("alice", "ipad", "tok-b", 1))
            .await
            .unwrap();
        s.set_presence(&presence("alice", "iphone", PresenceState::LoggedOut, 0, 2))
            .await
            .unwrap();
        s.set_presence(&presence("alice", "ipad", PresenceState::Kicked, 0, 2))
            .await
            .unwrap();
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        let states: Vec<_> = fetched[0]
            .devices
            .iter()
            .map(|d| (d.state.device_id.as_str(), d.state.presence))
            .collect();
        assert_eq!(
            states,
            vec![
                ("ipad", PresenceState::Kicked),
                ("iphone", PresenceState::LoggedOut)
            ]
        );
        t.cleanup().await;
    }
}

store_test! {
    async fn settings_last_write_wins(t) {
        let s = &t.store;
        let disabled = settings("alice", OpenPush::Disabled, "ding.caf", 20);
        let older = settings("alice", OpenPush::Enabled, "old.caf", 10);
        let newer = settings("alice", OpenPush::Enabled, "", 30);
        assert_eq!(s.set_settings(&disabled).await.unwrap(), Applied::Applied);
        assert_eq!(s.set_settings(&older).await.unwrap(), Applied::Stale);
        assert_eq!(s.set_settings(&disabled).await.unwrap(), Applied::Stale);
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        assert_eq!(fetched[0].settings, Some(disabled));
        assert_eq!(s.set_settings(&newer).await.unwrap(), Applied::Applied);
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        assert_eq!(fetched[0].settings, Some(newer));
        t.cleanup().await;
    }
}

store_test! {
    async fn bad_events_are_refused_as_non_transient_errors(t) {
        let s = &t.store;
        let mut unknown_vendor = registered("alice", "iphone", "tok", 1);
        unknown_vendor.vendor = 99;
        let mut unspecified_vendor = registered("alice", "iphone", "tok", 1);
        unspecified_vendor.vendor = Vendor::Unspecified as i32;
        let mut no_user = registered("", "iphone", "tok", 1);
        no_user.user_id.clear();
        let too_late = registered("alice", "iphone", "tok", i64::MAX);
        for event in [unknown_vendor, unspecified_vendor, no_user, too_late] {
            let err = s.register_device(&event).await.unwrap_err();
            assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
            assert!(!err.is_transient());
        }
        let unspecified_presence = presence("alice", "iphone", PresenceState::Unspecified, 0, 1);
        let err = s.set_presence(&unspecified_presence).await.unwrap_err();
        assert!(!err.is_transient());
        let mut unknown_open_push = settings("alice", OpenPush::Enabled, "", 1);
        unknown_open_push.open_push = 42;
        assert!(s.set_settings(&unknown_open_push).await.is_err());
        assert!(t.keys().await.is_empty(), "a refused event wrote something");
        t.cleanup().await;
    }
}

store_test! {
    async fn a_corrupt_stored_timestamp_is_a_typed_error_not_a_panic(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 1))
            .await
            .unwrap();
        let device_key = t.key_ending(":d:iphone").await;
        let mut raw = t.raw.clone();
        let _: () = raw.hset(&device_key, "reg_at", "yesterday").await.unwrap();
        let err = s
            .register_device(&registered("alice", "iphone", "tok2", 2))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    field: "reg_at",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_transient());
        t.cleanup().await;
    }
}

#[tokio::test]
async fn a_redis_that_cannot_be_reached_is_a_transient_error() {
    let err = Store::connect("redis://127.0.0.1:1", "impush-test-unreachable")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn a_prefix_with_braces_is_refused() {
    let err = Store::connect(&redis_url(), "im{push}").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }));
    assert!(!err.is_transient());
}
