//! The impush contract: the events IM core publishes, the feedback impush publishes back,
//! and the router -> sender `PushJob`, generated from `proto/impush/v1/*.proto`.
//!
//! Every message is also readable and writable as canonical proto3 JSON (pbjson): enum
//! values by their full names (`VENDOR_APNS`), int64 as strings, lowerCamelCase field names
//! on output, both spellings accepted on input.

pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/impush.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/impush.v1.serde.rs"));
}

mod envelope;

/// The AMQP `type` of a router -> sender message holding one `PushJob`.
pub const PUSH_JOB_TYPE: &str = "PushJob";
/// The AMQP `type` of a router -> sender message holding several (`PushJobs`).
pub const PUSH_JOBS_TYPE: &str = "PushJobs";

pub use envelope::{Event, EventError, EventKind};

/// The AMQP `type` of a `feedback.push` message (a batch of `PushOutcome`s).
pub const PUSH_OUTCOMES_TYPE: &str = "PushOutcomes";
/// The routing key of push outcomes on `impush.events`.
pub const FEEDBACK_PUSH_KEY: &str = "feedback.push";
