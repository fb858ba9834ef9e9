//! What every fuzz target checks of a vendor request, whatever the input: a body of valid
//! UTF-8 that is JSON or a form (with JSON where a form field nests it), within the vendor's
//! size limit, and a URL path no token could have changed.

use impush_core::payload::{self, Body, BuildError, VendorRequest};
use impush_core::{CredentialProfile, Environment, Notification, PushTarget, Vendor, vendor};

/// Form fields whose value is JSON that impush wrote.
const JSON_FORM_FIELDS: [&str; 3] = ["message", "messages", "messageJson"];

/// A credential of `vendor` with every identity field its payload needs.
pub fn credential(vendor: Vendor, default_title: &str, click_action: &str) -> CredentialProfile {
    let mut credential = CredentialProfile::new(1, vendor);
    credential.bundle_id = "com.example.im".into();
    credential.package_name = "com.example.im".into();
    credential.app_id = "100200300".into();
    credential.project_id = "impush-fuzz".into();
    credential.environment = Environment::Sandbox;
    credential.default_title = default_title.into();
    credential.click_action = click_action.into();
    credential.default_channel_id = "im".into();
    credential
}

/// Checks the outcome of `build_payload` for these inputs; panics (a fuzz finding) when a
/// rule does not hold.
pub fn check_request(
    vendor: Vendor,
    notification: &Notification,
    targets: &[PushTarget],
    result: &Result<VendorRequest, BuildError>,
) {
    let request = match result {
        Ok(request) => request,
        Err(BuildError::InvalidToken { .. }) => {
            assert!(
                targets
                    .iter()
                    .any(|t| vendor::check_token(vendor, &t.token).is_err()),
                "{vendor:?}: a token was refused that check_token accepts"
            );
            return;
        }
        // An ext too large on its own, or a title no field can supply: refused, not sent.
        Err(BuildError::PayloadTooLarge { .. } | BuildError::MissingCredentialField { .. }) => {
            return;
        }
        Err(err) => panic!("{vendor:?}: unexpected build error {err}"),
    };
    let bytes = request.body.to_bytes();
    let text = std::str::from_utf8(&bytes).expect("the body is UTF-8");
    match &request.body {
        Body::Json(json) => {
            serde_json::from_str::<serde_json::Value>(json).expect("a JSON body parses");
        }
        Body::Form(fields) => {
            assert!(text.is_ascii(), "a form body is urlencoded ASCII");
            assert_eq!(
                text.split('&').count(),
                fields.len(),
                "no value adds a form field"
            );
            // The fields impush serialises as JSON (OPPO `message`/`messages`, Meizu
            // `messageJson`); others, such as Xiaomi's `extra.ext`, carry ext as given.
            for (name, value) in fields {
                if JSON_FORM_FIELDS.contains(&name.as_str()) {
                    serde_json::from_str::<serde_json::Value>(value)
                        .unwrap_or_else(|e| panic!("form field {name} nests valid JSON: {e}"));
                }
            }
        }
    }
    let limit = payload::limits(vendor, notification)
        .expect("a real vendor")
        .max_bytes;
    let size = payload::measured_size(vendor, request);
    assert!(size <= limit, "{vendor:?}: {size} bytes > limit {limit}");
    assert!(
        request
            .path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric()
                || matches!(b, b'/' | b'-' | b'_' | b'.' | b':' | b'~')),
        "{vendor:?}: the path has a character a token smuggled in: {:?}",
        request.path
    );
    assert!(
        !request
            .path
            .split('/')
            .any(|segment| segment == ".." || segment == "."),
        "{vendor:?}: a dot segment in the path: {:?}",
        request.path
    );
    for (name, value) in &request.headers {
        assert!(
            !value.contains(['\r', '\n']),
            "{vendor:?}: header {name} holds a line break"
        );
    }
}
