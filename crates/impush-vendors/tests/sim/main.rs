//! The vendor clients against `impush-sim`: each vendor's file sends real requests (built by
//! `impush_core::build_payload`) with the local stack's credentials to a simulator spawned for
//! the test, and checks the outcome and what the simulator recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apns;
mod common;
mod fcm;
mod harmony;
mod honor;
mod hostile_tokens;
mod huawei;
mod meizu;
mod oppo;
mod tpns;
mod vivo;
mod withdraw;
mod xiaomi;
