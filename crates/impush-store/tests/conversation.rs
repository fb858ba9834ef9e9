//! Conversation options, quiet hours and recalls against the real Redis (one server and the
//! cluster): options are last-write-wins per conversation and live in the user's slot; the
//! router reads them, and whether a message was recalled, in the same round trips as the
//! rest of a chunk; a sender claiming a recalled message's pushes gets nothing to send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use impush_proto::v1::{
    ConversationPushOption, OpenPush, PushSettings, PushTarget, ReceiveOption, Vendor,
};
use impush_store::{Applied, DeviceRef, SendClaim};

fn option(
    user: &str,
    conversation: &str,
    option: ReceiveOption,
    at_ms: i64,
) -> ConversationPushOption {
    ConversationPushOption {
        sdk_app_id: APP,
        user_id: user.into(),
        conversation: conversation.into(),
        option: option as i32,
        at_ms,
    }
}

fn quiet_settings(user: &str, start_s: u32, duration_s: u32, at_ms: i64) -> PushSettings {
    PushSettings {
        quiet_start_s: start_s,
        quiet_duration_s: duration_s,
        quiet_option: ReceiveOption::NotNotifyExceptAt as i32,
        ..settings(user, OpenPush::Enabled, "", at_ms)
    }
}

store_test! {
    async fn conversation_options_are_last_write_wins_per_conversation(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 1)).await.unwrap();
        let newer = option("alice", "group:g1", ReceiveOption::NotNotify, 20);
        let older = option("alice", "group:g1", ReceiveOption::Notify, 10);
        assert_eq!(s.set_conversation_option(&newer).await.unwrap(), Applied::Applied);
        assert_eq!(s.set_conversation_option(&newer).await.unwrap(), Applied::Stale, "repeated");
        assert_eq!(s.set_conversation_option(&older).await.unwrap(), Applied::Stale, "out of order");
        // Another conversation keeps its own timestamp: an older event there still applies.
        let peer = option("alice", "c2c:bob", ReceiveOption::NotNotifyExceptAt, 5);
        assert_eq!(s.set_conversation_option(&peer).await.unwrap(), Applied::Applied);

        let read = |conversation: &'static str| async move {
            let chunk = s
                .fetch_chunk(APP, "m-1", conversation, &["alice".to_owned()])
                .await
                .unwrap();
            assert!(!chunk.revoked);
            chunk.recipients[0].conversation_option
        };
        assert_eq!(read("group:g1").await, ReceiveOption::NotNotify);
        assert_eq!(read("c2c:bob").await, ReceiveOption::NotNotifyExceptAt);
        assert_eq!(read("group:other").await, ReceiveOption::Unspecified);
        t.cleanup().await;
    }
}

store_test! {
    async fn settings_and_conversation_options_do_not_overwrite_each_other(t) {
        let s = &t.store;
        let muted = option("alice", "group:g1", ReceiveOption::NotNotify, 50);
        assert_eq!(s.set_conversation_option(&muted).await.unwrap(), Applied::Applied);
        // Settings with an older at_ms than the option still apply: separate timestamps.
        let quiet = quiet_settings("alice", 22 * 3600, 8 * 3600, 10);
        assert_eq!(s.set_settings(&quiet).await.unwrap(), Applied::Applied);
        let older_quiet = quiet_settings("alice", 0, 60, 5);
        assert_eq!(s.set_settings(&older_quiet).await.unwrap(), Applied::Stale);

        let chunk = s
            .fetch_chunk(APP, "m-1", "group:g1", &["alice".to_owned()])
            .await
            .unwrap();
        let alice = &chunk.recipients[0];
        assert_eq!(alice.conversation_option, ReceiveOption::NotNotify);
        let stored = alice.settings.as_ref().unwrap();
        assert_eq!(stored.quiet_start_s, 22 * 3600);
        assert_eq!(stored.quiet_duration_s, 8 * 3600);
        assert_eq!(stored.quiet_option(), ReceiveOption::NotNotifyExceptAt);
        assert_eq!(stored.open_push(), OpenPush::Enabled);
        // The plain read has no conversation and the same settings.
        let plain = s.fetch_recipients(APP, &["alice".to_owned()]).await.unwrap();
        assert_eq!(plain[0].conversation_option, ReceiveOption::Unspecified);
        assert_eq!(plain[0].settings.as_ref(), Some(stored));
        t.cleanup().await;
    }
}

store_test! {
    async fn a_user_s_options_live_in_the_user_s_slot(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 1)).await.unwrap();
        s.set_conversation_option(&option("alice", "group:{g}", ReceiveOption::NotNotify, 2))
            .await
            .unwrap();
        // One settings hash and the device keys, all under alice's hash tag.
        let keys = t.keys().await;
        assert!(!keys.is_empty());
        for key in &keys {
            assert!(key.contains(&format!("{{{APP}:alice}}")), "{key}");
        }
        t.cleanup().await;
    }
}

store_test! {
    async fn a_recalled_message_reads_as_recalled_and_its_claims_are_refused(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 1)).await.unwrap();
        let devices = [DeviceRef { user_id: "alice", device_id: "iphone" }];
        let before = s.claim_unless_revoked(APP, "m-1", &devices, 30).await.unwrap();
        assert_eq!(before, Some(vec![SendClaim::Claimed]), "not recalled yet");
        s.release_claims(APP, "m-1", &devices).await.unwrap();

        let first = s.remember_revoked(APP, "m-1", 100, 60).await.unwrap();
        assert_eq!(first.applied, Applied::Applied);
        assert!(first.shown.is_empty());
        let again = s.remember_revoked(APP, "m-1", 101, 60).await.unwrap();
        assert_eq!(again.applied, Applied::Stale);
        assert!(s.is_revoked(APP, "m-1").await.unwrap());
        assert!(!s.is_revoked(APP, "m-2").await.unwrap());
        assert!(!s.is_revoked(APP + 1, "m-1").await.unwrap(), "per sdk_app_id");
        let ttl = t.ttl_of_key_containing(":revoked:").await;
        assert!((1..=60).contains(&ttl), "ttl {ttl}");

        let chunk = s
            .fetch_chunk(APP, "m-1", "c2c:bob", &["alice".to_owned()])
            .await
            .unwrap();
        assert!(chunk.revoked);
        assert!(chunk.recipients.is_empty());

        assert_eq!(s.claim_unless_revoked(APP, "m-1", &devices, 30).await.unwrap(), None);
        // The claim that call took was given back: no dedupe record is left behind.
        assert!(
            !t.keys().await.iter().any(|k| k.contains(":sent:")),
            "a recalled push leaves no claim"
        );
        t.cleanup().await;
    }
}

store_test! {
    async fn a_recall_finds_the_devices_the_message_reached(t) {
        let s = &t.store;
        let target = |user: &str, token: &str| PushTarget {
            user_id: user.into(),
            device_id: "phone".into(),
            token: token.into(),
            badge: Some(3),
        };
        let delivered = [target("alice", "tok-a"), target("bob", "tok-b")];
        s.mark_sent_and_shown(APP, "m-1", Vendor::Fcm, 2, &delivered, 60, Some(120))
            .await
            .unwrap();
        // Delivery records too: a redelivery is a duplicate.
        let devices = [DeviceRef { user_id: "alice", device_id: "phone" }];
        assert_eq!(s.already_sent(APP, "m-1", &devices).await.unwrap(), vec![true]);
        let ttl = t.ttl_of_key_containing(":shown:").await;
        assert!((61..=120).contains(&ttl), "ttl {ttl}");

        let taken = s.remember_revoked(APP, "m-1", 5, 60).await.unwrap();
        assert_eq!(taken.applied, Applied::Applied);
        let tokens: Vec<(i32, u64, String)> = taken
            .shown
            .iter()
            .map(|p| (p.vendor, p.business_id, p.target.clone().unwrap().token))
            .collect();
        assert_eq!(
            tokens,
            vec![
                (Vendor::Fcm as i32, 2, "tok-a".to_owned()),
                (Vendor::Fcm as i32, 2, "tok-b".to_owned()),
            ]
        );
        assert_eq!(taken.shown[0].target.as_ref().unwrap().badge, None, "no badge kept");
        t.cleanup().await;
    }
}
