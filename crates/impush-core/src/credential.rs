//! The public part of one uploaded vendor credential ("certificate"), keyed by business_id.
//!
//! Secrets (p8 keys, app secrets) are not here: payloads never need them, and keeping them
//! out of the core means nothing that renders can print them. The vendor clients hold them.

use serde::Deserialize;

use impush_proto::v1::Vendor;

use crate::vendor;

/// APNs production or sandbox; TPNS `product` or `dev`. Android vendors ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Production,
    Sandbox,
}

/// An identity field of a [`CredentialProfile`], the one a vendor's payload cannot do
/// without (`VendorPayload::IDENTITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialField {
    BundleId,
    PackageName,
    AppId,
    ProjectId,
}

impl CredentialField {
    /// The field's name in the config.
    pub fn name(self) -> &'static str {
        match self {
            CredentialField::BundleId => "bundle_id",
            CredentialField::PackageName => "package_name",
            CredentialField::AppId => "app_id",
            CredentialField::ProjectId => "project_id",
        }
    }
}

/// What a payload builder needs to know about the credential a device registered with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CredentialProfile {
    pub business_id: u64,
    #[serde(deserialize_with = "deserialize_vendor")]
    pub vendor: Vendor,
    /// iOS bundle ID: the `apns-topic` (APNs, TPNS iOS).
    #[serde(default)]
    pub bundle_id: String,
    /// Android package name (`restricted_package_name` and the like).
    #[serde(default)]
    pub package_name: String,
    /// The vendor's own app identifier: Huawei AppId, vivo appId, Meizu appId, OPPO app key,
    /// Xiaomi AppID, TPNS AccessID.
    #[serde(default)]
    pub app_id: String,
    /// FCM: the Firebase project id in the send URL.
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub environment: Environment,
    /// The page a click opens, in the form the vendor's console takes (seeds, "Configuring
    /// in the console"): an `intent://…#Intent;…;end` URI for Xiaomi, Huawei and vivo, the
    /// activity class name for OPPO, Meizu and TPNS. Empty: open the app's launcher page.
    #[serde(default)]
    pub click_action: String,
    /// The title for vendors that require one when the message has none (usually the app
    /// name).
    #[serde(default)]
    pub default_title: String,
    /// The notification channel used when the message names none (OPPO private-message
    /// channel, Xiaomi channel, FCM channel).
    #[serde(default)]
    pub default_channel_id: String,
    /// The IM app (sdk_app_id) this credential belongs to; 0: not bound. A TPNS credential
    /// bound to an app serves that app's devices registered with a TPNS token and
    /// business_id 0 (the seeds tell apps to report 0 with a TPNS token).
    #[serde(default)]
    pub sdk_app_id: u32,
    /// Where the vendor posts this credential's delivery receipts, for vendors that take
    /// the address in each push request (Xiaomi `extra.callback`, OPPO `call_back_url`, vivo
    /// `extra.callback`). Empty: no receipts asked for.
    #[serde(default)]
    pub receipt_url: String,
    /// The receipt configuration to use, for vendors whose receipt address is set in their
    /// console and picked per request by its id (Huawei and Honor `receipt_id`). Empty: the
    /// console's default, and no `bi_tag` in requests unless `receipt_url` is set.
    #[serde(default)]
    pub receipt_id: String,
}

impl CredentialProfile {
    /// Whether pushes with this credential ask the vendor for delivery receipts.
    pub fn wants_receipts(&self) -> bool {
        !self.receipt_url.is_empty() || !self.receipt_id.is_empty()
    }

    /// Whether a TPNS credential sends to iPhones: it names a bundle ID. (A TPNS AccessID
    /// belongs to one platform; a credential naming both a bundle ID and a package name
    /// serves both, the device deciding.)
    pub fn serves_ios(&self) -> bool {
        !self.bundle_id.is_empty()
    }

    /// Whether a TPNS credential sends to Android phones: it names a package name.
    pub fn serves_android(&self) -> bool {
        !self.package_name.is_empty()
    }
}

fn deserialize_vendor<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vendor, D::Error> {
    let name = String::deserialize(d)?;
    vendor::parse(&name).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown vendor {name:?}; expected one of {}",
            vendor::ALL.map(vendor::name).join(", ")
        ))
    })
}

impl CredentialProfile {
    /// The value of an identity field.
    pub fn field(&self, field: CredentialField) -> &str {
        match field {
            CredentialField::BundleId => &self.bundle_id,
            CredentialField::PackageName => &self.package_name,
            CredentialField::AppId => &self.app_id,
            CredentialField::ProjectId => &self.project_id,
        }
    }

    /// A profile with only the identity set; the builders say which other field they need.
    pub fn new(business_id: u64, vendor: Vendor) -> CredentialProfile {
        CredentialProfile {
            business_id,
            vendor,
            bundle_id: String::new(),
            package_name: String::new(),
            app_id: String::new(),
            project_id: String::new(),
            environment: Environment::Production,
            click_action: String::new(),
            default_title: String::new(),
            default_channel_id: String::new(),
            sdk_app_id: 0,
            receipt_url: String::new(),
            receipt_id: String::new(),
        }
    }
}
