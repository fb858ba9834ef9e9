//! PLACEHOLDER: being written; see the module docs of apns.rs for the shape.

use impush_proto::v1::{Notification, PushTarget, Vendor};

use super::{BuildError, Limits, VendorPayload, VendorRequest};
use crate::credential::CredentialProfile;

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Fcm;
    const MAX_BATCH: usize = 1;

    fn limits(_notification: &Notification) -> Limits {
        Limits::bytes(4096)
    }

    fn build(
        _notification: &Notification,
        credential: &CredentialProfile,
        _targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError> {
        Err(BuildError::MissingCredentialField {
            business_id: credential.business_id,
            vendor: "fcm",
            field: "unimplemented",
        })
    }
}
