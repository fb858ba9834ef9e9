//! impush-receipts: the HTTP endpoint that takes the delivery receipts Huawei, Honor,
//! Xiaomi, OPPO and vivo send after a push (`POST /receipts/<vendor>/<business_id>`).
//!
//! A process of its own rather than a part of the sender: receipts arrive from the
//! internet, long after the send, at their own pace, and need a public listener behind a
//! load balancer, which the queue workers do not have; it scales and restarts apart from
//! them, and a flood of receipts never takes CPU from sending.
//!
//! - [`formats`]: each vendor's receipt format and signature check (pure).
//! - [`server`]: the endpoint: check, count, publish outcomes, prune dead tokens.

pub mod formats;
pub mod server;
