//! The router and sender side against the real Redis: fetching recipients, counting badges,
//! deduplicating pushes, pruning dead tokens, and keys that survive any user id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use impush_proto::v1::{OpenPush, PresenceState, Vendor};
use impush_store::{Applied, DeviceRef, SendClaim, Store, StoreError};
use redis::AsyncCommands;

fn dev<'a>(user_id: &'a str, device_id: &'a str) -> DeviceRef<'a> {
    DeviceRef { user_id, device_id }
}

store_test! {
    async fn fetch_returns_several_users_in_request_order_with_only_registered_devices_with_a_token(t) {
        let s = &t.store;
        // alice: an APNs phone in the background and an FCM phone with a TPNS token; settings.
        s.register_device(&registered("alice", "iphone", "apns-tok", 1))
            .await
            .unwrap();
        s.set_presence(&presence(
            "alice",
            "iphone",
            PresenceState::Background,
            4,
            1,
        ))
        .await
        .unwrap();
        let mut android = registered("alice", "pixel", "tpns-tok", 1);
        android.vendor = Vendor::Fcm as i32;
        android.business_id = 2;
        android.is_tpns_token = true;
        s.register_device(&android).await.unwrap();
        let alice_settings = settings("alice", OpenPush::Disabled, "ding.caf", 1);
        s.set_settings(&alice_settings).await.unwrap();
        // bob: one good device, one unregistered, one without token, one known only by presence.
        s.register_device(&registered("bob", "good", "bob-tok", 1))
            .await
            .unwrap();
        s.register_device(&registered("bob", "gone", "old-tok", 1))
            .await
            .unwrap();
        s.unregister_device(&unregistered("bob", "gone", 2))
            .await
            .unwrap();
        s.register_device(&registered("bob", "tokenless", "", 1))
            .await
            .unwrap();
        s.set_presence(&presence("bob", "ghost", PresenceState::Foreground, 0, 1))
            .await
            .unwrap();
        // carol: nothing at all.

        let users = ["carol".to_owned(), "alice".to_owned(), "bob".to_owned()];
        let fetched = s.fetch_recipients(APP, &users).await.unwrap();
        let order: Vec<_> = fetched.iter().map(|r| r.user_id.as_str()).collect();
        assert_eq!(order, ["carol", "alice", "bob"]);

        assert!(fetched[0].devices.is_empty());
        assert_eq!(fetched[0].settings, None);

        let alice = &fetched[1];
        assert_eq!(alice.settings, Some(alice_settings));
        assert_eq!(alice.devices.len(), 2);
        let iphone = &alice.devices[0];
        assert_eq!(iphone.state.device_id, "iphone");
        assert_eq!(iphone.state.vendor, Vendor::Apns);
        assert_eq!(iphone.state.business_id, 1);
        assert_eq!(iphone.state.token, "apns-tok");
        assert_eq!(iphone.state.presence, PresenceState::Background);
        assert_eq!(iphone.state.unread, 4);
        assert!(!iphone.is_tpns_token);
        let pixel = &alice.devices[1];
        assert_eq!(pixel.state.vendor, Vendor::Fcm);
        assert_eq!(pixel.state.business_id, 2);
        assert_eq!(pixel.state.presence, PresenceState::Unspecified);
        assert!(pixel.is_tpns_token);

        let bob: Vec<_> = fetched[2]
            .devices
            .iter()
            .map(|d| d.state.device_id.as_str())
            .collect();
        assert_eq!(bob, ["good"]);
        t.cleanup().await;
    }
}

store_test! {
    async fn badge_counts_pushes_since_the_last_background_report(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 1))
            .await
            .unwrap();
        s.set_presence(&presence(
            "alice",
            "iphone",
            PresenceState::Background,
            2,
            1,
        ))
        .await
        .unwrap();
        let phone = [dev("alice", "iphone")];
        for (msg, expected) in [("m1", 1), ("m2", 2), ("m3", 3)] {
            assert_eq!(
                s.bump_badges(APP, msg, &phone, 60).await.unwrap(),
                [expected]
            );
        }
        // DISCONNECTED keeps counting.
        s.set_presence(&presence(
            "alice",
            "iphone",
            PresenceState::Disconnected,
            0,
            2,
        ))
        .await
        .unwrap();
        assert_eq!(s.bump_badges(APP, "m4", &phone, 60).await.unwrap(), [4]);
        // A new BACKGROUND report restarts from its own unread count.
        s.set_presence(&presence(
            "alice",
            "iphone",
            PresenceState::Background,
            9,
            3,
        ))
        .await
        .unwrap();
        assert_eq!(s.bump_badges(APP, "m5", &phone, 60).await.unwrap(), [1]);
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        assert_eq!(fetched[0].devices[0].state.unread, 9);
        // FOREGROUND also restarts the count.
        s.set_presence(&presence(
            "alice",
            "iphone",
            PresenceState::Foreground,
            0,
            4,
        ))
        .await
        .unwrap();
        assert_eq!(s.bump_badges(APP, "m6", &phone, 60).await.unwrap(), [1]);
        // A stale BACKGROUND report resets nothing.
        let stale = presence("alice", "iphone", PresenceState::Background, 1, 3);
        assert_eq!(s.set_presence(&stale).await.unwrap(), Applied::Stale);
        assert_eq!(s.bump_badges(APP, "m7", &phone, 60).await.unwrap(), [2]);
        t.cleanup().await;
    }
}

store_test! {
    async fn bump_badges_is_idempotent_for_a_redelivered_message(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 1))
            .await
            .unwrap();
        let phone = [dev("alice", "iphone")];
        assert_eq!(s.bump_badges(APP, "m1", &phone, 60).await.unwrap(), [1]);
        assert_eq!(s.bump_badges(APP, "m2", &phone, 60).await.unwrap(), [2]);
        // m1 redelivered: same number as the first time, and m3 is the third push, not fourth.
        assert_eq!(s.bump_badges(APP, "m1", &phone, 60).await.unwrap(), [1]);
        assert_eq!(s.bump_badges(APP, "m3", &phone, 60).await.unwrap(), [3]);
        // The same device twice in one call counts once.
        let twice = [dev("alice", "iphone"), dev("alice", "iphone")];
        assert_eq!(s.bump_badges(APP, "m4", &twice, 60).await.unwrap(), [4, 4]);
        let ttl = t.ttl_of_key_containing(":b:m1:iphone").await;
        assert!((1..=60).contains(&ttl), "badge record ttl {ttl}");
        t.cleanup().await;
    }
}

store_test! {
    async fn a_badge_counter_that_is_not_an_integer_restarts_from_zero(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 1))
            .await
            .unwrap();
        let phone = [dev("alice", "iphone")];
        assert_eq!(s.bump_badges(APP, "m1", &phone, 60).await.unwrap(), [1]);
        let device_key = t.key_ending(":d:iphone").await;
        let mut raw = t.raw.clone();
        let _: () = raw.hset(&device_key, "since", "lots").await.unwrap();
        // Restarted, not an error: this push is the first one counted again.
        assert_eq!(s.bump_badges(APP, "m2", &phone, 60).await.unwrap(), [1]);
        assert_eq!(s.bump_badges(APP, "m3", &phone, 60).await.unwrap(), [2]);
        let since: String = raw.hget(&device_key, "since").await.unwrap();
        assert_eq!(since, "2");
        t.cleanup().await;
    }
}

store_test! {
    async fn bump_badges_covers_several_users_in_one_call_in_the_callers_order(t) {
        let s = &t.store;
        for (user, device) in [("alice", "a1"), ("alice", "a2"), ("bob", "b1")] {
            s.register_device(&registered(user, device, "tok", 1))
                .await
                .unwrap();
        }
        let first = [dev("bob", "b1")];
        assert_eq!(s.bump_badges(APP, "m0", &first, 60).await.unwrap(), [1]);
        // Interleaved users, plus a device that does not exist (counts as a first push and
        // leaves no device record behind).
        let batch = [
            dev("alice", "a1"),
            dev("bob", "b1"),
            dev("carol", "unknown"),
            dev("alice", "a2"),
        ];
        assert_eq!(
            s.bump_badges(APP, "m1", &batch, 60).await.unwrap(),
            [1, 2, 1, 1]
        );
        assert!(!t.keys().await.iter().any(|k| k.ends_with(":d:unknown")));
        assert!(s.bump_badges(APP, "m1", &[], 60).await.unwrap().is_empty());
        let err = s.bump_badges(APP, "m1", &batch, 0).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }));
        t.cleanup().await;
    }
}

store_test! {
    async fn a_device_gets_a_message_once_until_the_dedupe_record_expires(t) {
        let s = &t.store;
        let devices = [
            dev("alice", "iphone"),
            dev("alice", "ipad"),
            dev("bob", "b1"),
        ];
        assert_eq!(
            s.already_sent(APP, "m1", &devices).await.unwrap(),
            [false, false, false]
        );
        s.mark_sent(APP, "m1", &devices[..2], 1).await.unwrap();
        assert_eq!(
            s.already_sent(APP, "m1", &devices).await.unwrap(),
            [true, true, false]
        );
        // Per message: another message to the same devices is not deduplicated.
        assert_eq!(
            s.already_sent(APP, "m2", &devices).await.unwrap(),
            [false, false, false]
        );
        // Per app: the same ids under another sdk_app_id are someone else.
        assert_eq!(
            s.already_sent(APP + 1, "m1", &devices).await.unwrap(),
            [false, false, false]
        );
        let ttl = t.ttl_of_key_containing(":sent:m1:iphone").await;
        assert!((0..=1).contains(&ttl), "dedupe ttl {ttl}");
        let mut expired = false;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.already_sent(APP, "m1", &devices).await.unwrap() == [false, false, false] {
                expired = true;
                break;
            }
        }
        assert!(expired, "dedupe records did not expire");
        assert!(s.already_sent(APP, "m1", &[]).await.unwrap().is_empty());
        s.mark_sent(APP, "m3", &[], 60).await.unwrap();
        t.cleanup().await;
    }
}

store_test! {
    async fn a_dead_token_removes_the_device_only_while_it_still_holds_that_token(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok-a", 10))
            .await
            .unwrap();
        assert!(
            !s.remove_device_if_token(APP, "alice", "iphone", "tok-other")
                .await
                .unwrap()
        );
        assert!(
            !s.remove_device_if_token(APP, "alice", "iphone", "")
                .await
                .unwrap()
        );
        assert_eq!(tokens_of(s, "alice").await.len(), 1);
        assert!(
            s.remove_device_if_token(APP, "alice", "iphone", "tok-a")
                .await
                .unwrap()
        );
        assert!(tokens_of(s, "alice").await.is_empty());
        // Removing again: nothing left to remove.
        assert!(
            !s.remove_device_if_token(APP, "alice", "iphone", "tok-a")
                .await
                .unwrap()
        );
        // An older registration arriving late cannot bring the dead token back...
        let older = registered("alice", "iphone", "tok-a", 5);
        assert_eq!(s.register_device(&older).await.unwrap(), Applied::Stale);
        // ...a newer one registers normally.
        let newer = registered("alice", "iphone", "tok-b", 20);
        assert_eq!(s.register_device(&newer).await.unwrap(), Applied::Applied);
        assert_eq!(tokens_of(s, "alice").await[0].1, "tok-b");
        t.cleanup().await;
    }
}

store_test! {
    async fn a_newer_registration_survives_the_removal_of_the_old_token(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok-old", 10))
            .await
            .unwrap();
        s.register_device(&registered("alice", "iphone", "tok-new", 20))
            .await
            .unwrap();
        assert!(
            !s.remove_device_if_token(APP, "alice", "iphone", "tok-old")
                .await
                .unwrap()
        );
        assert_eq!(tokens_of(s, "alice").await[0].1, "tok-new");
        t.cleanup().await;
    }
}

store_test! {
    async fn user_ids_with_braces_colons_and_unicode_stay_separate_and_in_one_hash_tag(t) {
        let s = &t.store;
        let users = [
            "a",
            "a{b}c",
            "a}",
            "{",
            "}",
            "}:s",
            "x:y",
            "%7D",
            "用户🙂",
            "a}:d:dev",
        ];
        for (i, user) in users.iter().enumerate() {
            let device = format!("dev:{{{i}}}");
            s.register_device(&registered(user, &device, &format!("tok-{i}"), 1))
                .await
                .unwrap();
            s.set_settings(&settings(user, OpenPush::Enabled, &format!("s{i}"), 1))
                .await
                .unwrap();
            s.bump_badges(APP, "m:{1}", &[dev(user, &device)], 60)
                .await
                .unwrap();
            s.mark_sent(APP, "m:{1}", &[dev(user, &device)], 60)
                .await
                .unwrap();
        }
        let ids: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        let fetched = s.fetch_recipients(APP, &ids).await.unwrap();
        for (i, recipient) in fetched.iter().enumerate() {
            assert_eq!(recipient.user_id, users[i]);
            assert_eq!(recipient.devices.len(), 1, "{}", users[i]);
            assert_eq!(recipient.devices[0].state.device_id, format!("dev:{{{i}}}"));
            assert_eq!(recipient.devices[0].state.token, format!("tok-{i}"));
            assert_eq!(
                recipient.settings.as_ref().unwrap().c2c_sound,
                format!("s{i}")
            );
        }
        // Five keys per user (devs, device, settings, badge, sent), and each user's keys share
        // exactly one hash tag, distinct from every other user's.
        let keys = t.keys().await;
        assert_eq!(keys.len(), users.len() * 5, "{keys:#?}");
        let mut tags: Vec<&str> = keys
            .iter()
            .map(|k| {
                let open = k.find('{').unwrap();
                let close = open + k[open..].find('}').unwrap();
                &k[open + 1..close]
            })
            .collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), users.len(), "{tags:#?}");
        t.cleanup().await;
    }
}

store_test! {
    async fn scripts_forgotten_by_redis_are_loaded_again(t) {
        let s = &t.store;
        s.register_device(&registered("alice", "iphone", "tok", 1))
            .await
            .unwrap();
        // What a Redis restart does to the script cache.
        let mut raw = t.raw.clone();
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut raw)
            .await
            .unwrap();
        let fetched = s.fetch_recipients(APP, &["alice".into()]).await.unwrap();
        assert_eq!(fetched[0].devices.len(), 1);
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut raw)
            .await
            .unwrap();
        let phone = [dev("alice", "iphone")];
        assert_eq!(s.bump_badges(APP, "m1", &phone, 60).await.unwrap(), [1]);
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut raw)
            .await
            .unwrap();
        let unreg = unregistered("alice", "iphone", 2);
        assert_eq!(s.unregister_device(&unreg).await.unwrap(), Applied::Applied);
        t.cleanup().await;
    }
}

store_test! {
    async fn ping_answers_when_redis_is_up(t) {
        t.store.ping().await.unwrap();
        assert!(t.store.fetch_recipients(APP, &[]).await.unwrap().is_empty());
        t.cleanup().await;
    }
}

store_test! {
    async fn only_one_sender_at_a_time_may_send_a_message_to_a_device(t) {
        let other = t.connect_another().await;
        let s = &t.store;
        let devices = [dev("alice", "iphone"), dev("bob", "b1")];
        assert_eq!(
            s.claim_for_send(APP, "m1", &devices, 30).await.unwrap(),
            [SendClaim::Claimed, SendClaim::Claimed]
        );
        // A second job for the same message (published twice, or redelivered) meanwhile.
        assert_eq!(
            other.claim_for_send(APP, "m1", &devices, 30).await.unwrap(),
            [SendClaim::InProgress, SendClaim::InProgress]
        );
        assert_eq!(
            s.already_sent(APP, "m1", &devices).await.unwrap(),
            [false, false],
            "a claim is not a delivery"
        );
        // Alice's push was delivered; Bob's must be retried.
        s.mark_sent(APP, "m1", &devices[..1], 60).await.unwrap();
        s.release_claims(APP, "m1", &devices[1..]).await.unwrap();
        assert_eq!(
            other.claim_for_send(APP, "m1", &devices, 30).await.unwrap(),
            [SendClaim::AlreadySent, SendClaim::Claimed]
        );
        // Releasing is only for the claim's owner: the other store's claim stays.
        s.release_claims(APP, "m1", &devices[1..]).await.unwrap();
        assert_eq!(
            s.claim_for_send(APP, "m1", &devices[1..], 30)
                .await
                .unwrap(),
            [SendClaim::InProgress]
        );
        t.cleanup().await;
    }
}

store_test! {
    async fn the_claim_of_a_sender_that_died_expires(t) {
        let other = t.connect_another().await;
        let devices = [dev("alice", "iphone")];
        assert_eq!(
            t.store
                .claim_for_send(APP, "m1", &devices, 1)
                .await
                .unwrap(),
            [SendClaim::Claimed]
        );
        let mut claimed = false;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if other.claim_for_send(APP, "m1", &devices, 1).await.unwrap() == [SendClaim::Claimed] {
                claimed = true;
                break;
            }
        }
        assert!(claimed, "the dead claim never expired");
        t.cleanup().await;
    }
}

store_test! {
    /// A group's chunk of recipients lands on every primary of a cluster; each batch call
    /// still answers for all of them, in the caller's order, and reloads scripts that every
    /// node forgot.
    async fn batches_spanning_every_primary_answer_in_the_callers_order(t) {
        let s = &t.store;
        let users: Vec<String> = (0..40).map(|i| format!("member-{i}")).collect();
        for (i, user) in users.iter().enumerate() {
            s.register_device(&registered(user, "phone", &format!("tok-{i}"), 1))
                .await
                .unwrap();
            s.set_presence(&presence(user, "phone", PresenceState::Background, i as u32, 1))
                .await
                .unwrap();
        }
        if t.target == Target::Cluster {
            let per_node = t.keys_per_node().await;
            assert_eq!(per_node.len(), 3);
            assert!(
                per_node.iter().all(|keys| !keys.is_empty()),
                "40 users should spread over all three primaries: {:?}",
                per_node.iter().map(Vec::len).collect::<Vec<_>>()
            );
        }

        let fetched = s.fetch_recipients(APP, &users).await.unwrap();
        let seen: Vec<(&str, &str, u32)> = fetched
            .iter()
            .map(|r| {
                assert_eq!(r.devices.len(), 1, "{r:?}");
                let d = &r.devices[0].state;
                (r.user_id.as_str(), d.token.as_str(), d.unread)
            })
            .collect();
        let expected: Vec<(String, String, u32)> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), format!("tok-{i}"), i as u32))
            .collect();
        let expected: Vec<(&str, &str, u32)> = expected
            .iter()
            .map(|(u, tok, n)| (u.as_str(), tok.as_str(), *n))
            .collect();
        assert_eq!(seen, expected);

        // Every node forgets the scripts, as after a restart of the whole cluster.
        let mut raw = t.raw.clone();
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut raw)
            .await
            .unwrap();
        let devices: Vec<DeviceRef> = users.iter().map(|u| dev(u, "phone")).collect();
        assert_eq!(
            s.bump_badges(APP, "m1", &devices, 60).await.unwrap(),
            vec![1; users.len()]
        );
        let mut once_more = devices.clone();
        once_more.reverse();
        assert_eq!(
            s.bump_badges(APP, "m2", &once_more, 60).await.unwrap(),
            vec![2; users.len()]
        );

        let claims = s.claim_for_send(APP, "m1", &devices, 30).await.unwrap();
        assert!(claims.iter().all(|c| *c == SendClaim::Claimed), "{claims:?}");
        let (delivered, failed) = devices.split_at(users.len() / 2);
        s.mark_sent(APP, "m1", delivered, 60).await.unwrap();
        s.release_claims(APP, "m1", failed).await.unwrap();
        let sent = s.already_sent(APP, "m1", &devices).await.unwrap();
        let expected: Vec<bool> = (0..users.len()).map(|i| i < users.len() / 2).collect();
        assert_eq!(sent, expected);
        let again = t
            .connect_another()
            .await
            .claim_for_send(APP, "m1", &devices, 30)
            .await
            .unwrap();
        let expected: Vec<SendClaim> = (0..users.len())
            .map(|i| {
                if i < users.len() / 2 {
                    SendClaim::AlreadySent
                } else {
                    SendClaim::Claimed
                }
            })
            .collect();
        assert_eq!(again, expected);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn a_cluster_that_cannot_be_reached_is_a_transient_error() {
    let err = Store::connect_cluster(&["redis://127.0.0.1:1".to_owned()], "impush-test")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}
