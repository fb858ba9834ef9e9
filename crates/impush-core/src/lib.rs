//! impush's functional core: no I/O, only rules.
//!
//! - [`decide`]: does this device get an offline push for this message, and if not, why.
//! - [`conversation`]: conversation receive options, @ mentions and quiet hours.
//! - [`render`]: the vendor-neutral [`Notification`] (title, body, sound, ext, expiry) and
//!   the per-device badge, following the IM offline-push rules.
//! - [`templates`]: the per-`sdk_app_id` formats and element placeholders.
//! - [`ids`]: header-safe values and stable hashes, shared by rendering and payloads.
//! - [`reason`]: failure reasons as bounded metric labels and dead-letter reasons.
//! - [`payload`]: the exact request body each vendor's server API takes, fitted to its size
//!   limits.
//!
//! Workers (router, sender) and the `impush render` preview call these functions; RabbitMQ,
//! Redis and HTTP stay at the edges.

pub mod conversation;
pub mod credential;
pub mod decide;
pub mod ids;
pub mod payload;
pub mod reason;
pub mod render;
pub mod templates;
pub mod text;
pub mod vendor;

pub use conversation::{Mention, decide_conversation, mention_of};
pub use credential::{CredentialField, CredentialProfile, Environment};
pub use decide::{Channel, DeviceState, SkipReason, UserSettings, channel, decide, decide_message};
pub use impush_proto::v1::{Notification, PushTarget, Vendor};
pub use payload::{Body, BuildError, VendorRequest, build_payload};
pub use render::{
    Renders, badge_for, recall_notification, render_for_recipient, render_notification,
};
pub use templates::{TemplateSet, Templates};
