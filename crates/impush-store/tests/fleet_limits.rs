//! A credential's rate limit and daily quota count are the fleet's, not a process's: two
//! connections (two sender processes) draw from one allowance and add to one count, on one
//! Redis server and on a Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

store_test! {
    async fn two_processes_share_one_rate_allowance(t) {
        let one = &t.store;
        let two = t.connect_another().await;
        // 1 token a second, a burst of 10: the first process takes the whole burst…
        assert_eq!(one.take_rate(77, 10, 1, 10).await.unwrap(), Duration::ZERO);
        // …and the second must wait for the next token: up to the second one token takes
        // (the test would need to stall a whole second between the two calls to see less).
        let wait = two.take_rate(77, 1, 1, 10).await.unwrap();
        assert!(wait > Duration::ZERO, "the second process got a token past the rate");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        // Another credential has its own allowance.
        assert_eq!(two.take_rate(78, 10, 1, 10).await.unwrap(), Duration::ZERO);
        // More than the burst waits for a full allowance (ten seconds from empty), then
        // passes as a whole burst.
        let wait = one.take_rate(77, 50, 1, 10).await.unwrap();
        assert!(wait > Duration::from_secs(8), "{wait:?}");
        t.cleanup().await;
    }
}

store_test! {
    async fn two_processes_add_to_one_daily_quota_count(t) {
        let one = &t.store;
        let two = t.connect_another().await;
        assert_eq!(one.count_quota(5, 20_000, 3).await.unwrap(), 3);
        assert_eq!(two.count_quota(5, 20_000, 4).await.unwrap(), 7);
        assert_eq!(one.count_quota(5, 20_000, 0).await.unwrap(), 7, "a read adds nothing");
        assert_eq!(one.count_quota(5, 20_001, 0).await.unwrap(), 0, "a new day starts at 0");
        t.cleanup().await;
    }
}
