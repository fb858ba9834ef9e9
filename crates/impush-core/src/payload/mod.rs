//! The exact request each vendor's server API takes for a rendered [`Notification`].
//!
//! One module per vendor, all shaped alike: a `Payload` type implementing [`VendorPayload`]
//! (the vendor's facts: its name, platform, token rules, batch size and size limits, and
//! `build`). The [`vendors!`] line below lists every module once; it makes the registry
//! ([`REGISTRY`]) that [`build_payload`], [`max_batch`], [`limits`], [`measured_size`] and
//! [`crate::vendor`] read, so a new vendor is its module and one word in that line.
//! [`build_payload`] picks the module and fits the result to the limits: text is cut on a grapheme boundary with an ellipsis,
//! first by the vendor's per-field character limits, then (body first, title second) until
//! the measured payload fits, so the vendor never rejects it for size.
//!
//! Authentication (OAuth tokens, OPPO `auth_token`, Meizu `sign`) is added by the vendor
//! client at send time: it depends on secrets and clocks, not on the message.
//!
//! Each module serialises typed structs that borrow the notification's text. Their fields
//! are in alphabetical order, the order of the `serde_json::Value` maps they replaced, so
//! the bytes sent stay the ones reviewed: that matters most for JSON nested in a form field
//! (OPPO `message`, Meizu `messageJson`), which is text, compared and signed as such.

use impush_proto::v1::{AndroidNotifyMode, IosPushType, Notification, PushTarget, Vendor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::credential::{CredentialField, CredentialProfile};
pub use crate::ids::TokenRules;
pub use crate::ids::stable_hash;
use crate::text;

/// Declares each vendor's payload module and the registry made from their `Payload` types,
/// in the order of [`crate::vendor::ALL`].
macro_rules! vendors {
    ($($module:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// Every vendor impush sends through, one entry per payload module.
        pub const REGISTRY: &[VendorSpec] = &[$(VendorSpec::of::<$module::Payload>()),+];
    };
}

vendors! { apns, fcm, huawei, xiaomi, oppo, vivo, meizu, tpns, honor, harmony }

pub mod oem;
pub mod receipt;
pub mod withdraw;

/// One vendor's facts, read from its [`VendorPayload`] implementation.
#[derive(Debug, Clone, Copy)]
pub struct VendorSpec {
    pub vendor: Vendor,
    /// Lower case, as in `--vendor`, queue names and config.
    pub name: &'static str,
    /// Its devices run iOS (badge numbers apply).
    pub is_ios: bool,
    pub tokens: TokenRules,
    /// The credential field its payload cannot do without.
    pub identity: CredentialField,
    /// How many device tokens one request may carry.
    pub max_batch: usize,
    /// [`build_payload`] for this vendor.
    pub build:
        fn(&Notification, &CredentialProfile, &[PushTarget]) -> Result<VendorRequest, BuildError>,
    pub limits: fn(&Notification) -> Limits,
    pub measure: fn(&VendorRequest) -> usize,
}

impl VendorSpec {
    /// The entry of the vendor whose payload module is `P`.
    pub const fn of<P: VendorPayload>() -> VendorSpec {
        VendorSpec {
            vendor: P::VENDOR,
            name: P::NAME,
            is_ios: P::IS_IOS,
            tokens: P::TOKENS,
            identity: P::IDENTITY,
            max_batch: P::MAX_BATCH,
            build: fit::<P>,
            limits: P::limits,
            measure: P::measure,
        }
    }
}

/// The registry entry of `vendor`; `None` for `Unspecified`.
pub fn spec(vendor: Vendor) -> Option<&'static VendorSpec> {
    REGISTRY.iter().find(|spec| spec.vendor == vendor)
}

/// The lower-case name of `vendor` (`unspecified` when it has no entry).
fn name_of(vendor: Vendor) -> &'static str {
    spec(vendor).map_or("unspecified", |spec| spec.name)
}

/// A request body: JSON text, or form fields in order (values not yet urlencoded).
///
/// JSON is serialised once, straight from the vendor module's typed structs: sending it is a
/// copy and measuring it a length, with no tree of `Value`s built on the way.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(String),
    Form(Vec<(String, String)>),
}

impl Body {
    /// A JSON body holding `value` serialised.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Body {
        Body::Json(json_string(value))
    }

    /// The bytes on the wire (form fields urlencoded).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Body::Json(json) => json.as_bytes().to_vec(),
            Body::Form(fields) => form_urlencode(fields).into_bytes(),
        }
    }

    /// The body as JSON for previews: JSON as is, a form as an object of its fields.
    pub fn to_json_value(&self) -> Value {
        match self {
            // Text serialised by `Body::json` always parses; `Null` would only mean a body
            // built by hand from invalid text.
            Body::Json(json) => serde_json::from_str(json).unwrap_or_default(),
            Body::Form(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        }
    }

    /// The value of a form field, if this is a form that has it.
    pub fn form_field(&self, name: &str) -> Option<&str> {
        match self {
            Body::Form(fields) => fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
            Body::Json(_) => None,
        }
    }
}

/// `value` as compact JSON text, for JSON bodies and for vendors that nest JSON in a string
/// field. Serialising a struct of strings and numbers cannot fail, hence no `Result`.
pub fn json_string<T: Serialize + ?Sized>(value: &T) -> String {
    // Room for a typical vendor body at once, instead of growing from serde_json's 128 bytes.
    let mut out = Vec::with_capacity(1024);
    if serde_json::to_writer(&mut out, value).is_err() {
        return String::new();
    }
    // serde_json writes only valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// The member `key` of a JSON body this crate serialised: its value read as `T`, and its
/// text. It is found at the first `"key":`, a pattern that never matches inside a string
/// (whose quotes are escaped), so this is the member a vendor means as long as its payload
/// struct has no other `key` before it, at any depth. The value's end is parsed, not guessed.
pub fn json_member<'a, T: Deserialize<'a>>(json: &'a str, key: &str) -> Option<(T, &'a str)> {
    let start = json.match_indices(key).find_map(|(i, _)| {
        let end = i + key.len();
        (json[..i].ends_with('"') && json[end..].starts_with("\":")).then_some(end + 2)
    })?;
    let rest = &json[start..];
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<T>();
    let value = values.next()?.ok()?;
    Some((value, &rest[..values.byte_offset()]))
}

/// The `{"ext": <ext>}` object through which most vendors hand `ext` to the opened activity.
#[derive(Serialize)]
pub struct ExtMap<'a> {
    pub ext: &'a str,
}

/// The device tokens of a request as a JSON array, without collecting them first.
pub struct Tokens<'a>(pub &'a [PushTarget]);

impl Serialize for Tokens<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|target| target.token.as_str()))
    }
}

/// A duration as the string `"<seconds>s"` (Google's `Duration` JSON form), written without
/// an intermediate `String`.
#[derive(Debug, Clone, Copy)]
pub struct Seconds(pub u64);

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}s", self.0))
    }
}

/// `application/x-www-form-urlencoded` serialisation (space as `+`).
pub fn form_urlencode(fields: &[(String, String)]) -> String {
    // A byte becomes one to three; JSON in a field escapes about one in three.
    let plain: usize = fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(plain * 2);
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        urlencode_into(&mut out, k);
        out.push(b'=');
        urlencode_into(&mut out, v);
    }
    // Every byte written is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

fn urlencode_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
}

/// One HTTP request to a vendor, relative to the credential's base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorRequest {
    /// Path and query after the base URL, e.g. `/3/device/<token>`. Tokens only ever reach
    /// it after [`check_path_safe_token`].
    pub path: String,
    /// Request headers other than authentication and content type.
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl VendorRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no payload could be built. None of these is worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("no target device")]
    NoTargets,
    #[error("{count} targets exceed the vendor's batch limit of {max}")]
    TooManyTargets { count: usize, max: usize },
    #[error("credential {business_id} is for {credential_vendor}, not {vendor}")]
    VendorMismatch {
        business_id: u64,
        credential_vendor: &'static str,
        vendor: &'static str,
    },
    #[error("credential {business_id} lacks `{field}`, which {vendor} needs")]
    MissingCredentialField {
        business_id: u64,
        vendor: &'static str,
        field: &'static str,
    },
    /// `token` holds only the token's first 8 characters: this error's text reaches logs
    /// and dead-letter headers.
    #[error("token {token:?}… has characters {vendor} tokens never have")]
    InvalidToken { vendor: &'static str, token: String },
    #[error(
        "payload of {bytes} bytes exceeds the {limit}-byte limit even with empty text \
         (ext or other fixed fields too large)"
    )]
    PayloadTooLarge { bytes: usize, limit: usize },
}

/// A vendor's size rules.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest payload the vendor takes, in bytes as [`VendorPayload::measure`] counts.
    pub max_bytes: usize,
    pub max_title: Option<usize>,
    pub max_body: Option<usize>,
    /// How the vendor counts title and body length (characters by default).
    pub count: fn(&str) -> usize,
}

impl Limits {
    pub const fn bytes(max_bytes: usize) -> Limits {
        Limits {
            max_bytes,
            max_title: None,
            max_body: None,
            count: text::char_count,
        }
    }
}

/// One vendor's payload rules and facts; every vendor module has a `Payload` type
/// implementing it.
pub trait VendorPayload {
    const VENDOR: Vendor;
    /// The vendor's lower-case name (`--vendor`, queue names, config).
    const NAME: &'static str;
    /// Its devices run iOS: badges and the iOS sound rules apply.
    const IS_IOS: bool = false;
    const TOKENS: TokenRules = TokenRules::DEFAULT;
    /// The credential field the payload cannot do without, checked when the config loads.
    const IDENTITY: CredentialField = CredentialField::AppId;
    /// How many device tokens one request may carry with an identical payload.
    const MAX_BATCH: usize;
    /// The vendor rejects an empty title: `fit` then fills it in with [`fallback_title`]
    /// before cutting it to the title limit, so `build` always gets a title.
    const REQUIRES_TITLE: bool = false;

    fn limits(notification: &Notification) -> Limits;

    /// The request for these targets, with the notification's title and body as given.
    /// `fit` has checked the batch first: 1 to `MAX_BATCH` targets, each token safe in a
    /// URL path, a form field or a list ([`check_path_safe_token`]).
    fn build(
        notification: &Notification,
        credential: &CredentialProfile,
        targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError>;

    /// The size the vendor's limit applies to. By default, the whole body on the wire.
    fn measure(request: &VendorRequest) -> usize {
        match &request.body {
            Body::Json(json) => json.len(),
            Body::Form(_) => request.body.to_bytes().len(),
        }
    }
}

/// Builds the request for `credential.vendor`, with title and body cut to fit its limits.
pub fn build_payload(
    notification: &Notification,
    credential: &CredentialProfile,
    targets: &[PushTarget],
) -> Result<VendorRequest, BuildError> {
    match spec(credential.vendor) {
        Some(spec) => (spec.build)(notification, credential, targets),
        None => Err(BuildError::VendorMismatch {
            business_id: credential.business_id,
            credential_vendor: name_of(credential.vendor),
            vendor: name_of(credential.vendor),
        }),
    }
}

/// How many devices one request of this vendor may carry.
pub fn max_batch(vendor: Vendor) -> usize {
    spec(vendor).map_or(1, |spec| spec.max_batch)
}

/// The size limit a notification's payload must fit for `vendor`.
pub fn limits(vendor: Vendor, notification: &Notification) -> Option<Limits> {
    spec(vendor).map(|spec| (spec.limits)(notification))
}

/// The size of `request` as `vendor` counts it against [`Limits::max_bytes`].
pub fn measured_size(vendor: Vendor, request: &VendorRequest) -> usize {
    match spec(vendor) {
        Some(spec) => (spec.measure)(request),
        None => request.body.to_bytes().len(),
    }
}

fn fit<P: VendorPayload>(
    notification: &Notification,
    credential: &CredentialProfile,
    targets: &[PushTarget],
) -> Result<VendorRequest, BuildError> {
    if credential.vendor != P::VENDOR {
        return Err(BuildError::VendorMismatch {
            business_id: credential.business_id,
            credential_vendor: name_of(credential.vendor),
            vendor: P::NAME,
        });
    }
    if targets.is_empty() {
        return Err(BuildError::NoTargets);
    }
    if targets.len() > P::MAX_BATCH {
        return Err(BuildError::TooManyTargets {
            count: targets.len(),
            max: P::MAX_BATCH,
        });
    }
    for target in targets {
        check_path_safe_token(P::VENDOR, &target.token)?;
    }
    let limits = P::limits(notification);
    let clamp = |s, max: Option<usize>| match max {
        Some(max) => text::truncate_by(s, max, limits.count),
        None => std::borrow::Cow::Borrowed(s),
    };
    let title = if P::REQUIRES_TITLE && notification.title.is_empty() {
        fallback_title(notification, credential)?
    } else {
        &notification.title
    };
    let title = clamp(title, limits.max_title);
    let body = clamp(&notification.body, limits.max_body);
    let with_text = |title: &str, body: &str| {
        if title == notification.title && body == notification.body {
            return P::build(notification, credential, targets);
        }
        let mut n = notification.clone();
        n.title = title.to_owned();
        n.body = body.to_owned();
        P::build(&n, credential, targets)
    };

    let request = with_text(&title, &body)?;
    if limits.max_bytes == usize::MAX {
        return Ok(request);
    }
    let size = P::measure(&request);
    if size <= limits.max_bytes {
        return Ok(request);
    }
    // Too large: shorten the body (then the title) to the longest prefix that fits.
    let body_len = text::grapheme_len(&body);
    if let Some(request) = longest_fitting::<P>(body_len, limits.max_bytes, |keep| {
        with_text(&title, &text::truncate_graphemes(&body, keep))
    })? {
        return Ok(request);
    }
    let title_len = text::grapheme_len(&title);
    if let Some(request) = longest_fitting::<P>(title_len, limits.max_bytes, |keep| {
        with_text(&text::truncate_graphemes(&title, keep), "")
    })? {
        return Ok(request);
    }
    let bare = with_text("", "")?;
    Err(BuildError::PayloadTooLarge {
        bytes: P::measure(&bare),
        limit: limits.max_bytes,
    })
}

/// Binary search for the largest `keep` in `0..=len` whose request fits `max_bytes`.
fn longest_fitting<P: VendorPayload>(
    len: usize,
    max_bytes: usize,
    build: impl Fn(usize) -> Result<VendorRequest, BuildError>,
) -> Result<Option<VendorRequest>, BuildError> {
    let mut best = None;
    let (mut lo, mut hi) = (0usize, len);
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        let request = build(mid)?;
        if P::measure(&request) <= max_bytes {
            best = Some(request);
            lo = mid + 1;
        } else if mid == 0 {
            break;
        } else {
            hi = mid - 1;
        }
    }
    Ok(best)
}

/// Rejects tokens that could change a URL path, a form field or a delimited list: the
/// rules of [`crate::vendor::check_token`], as a build error.
pub fn check_path_safe_token(vendor: Vendor, token: &str) -> Result<(), BuildError> {
    let rules = spec(vendor).map_or(TokenRules::DEFAULT, |spec| spec.tokens);
    rules.check(token).map_err(|_| BuildError::InvalidToken {
        vendor: name_of(vendor),
        token: text::short_token(token).to_owned(),
    })
}

/// The title for vendors that require one when the message has none: the app's name from
/// the credential, else who sent the message, else the group's name. With none of them the
/// error names `default_title`, the field an operator can always set.
pub fn fallback_title<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
) -> Result<&'a str, BuildError> {
    [
        &credential.default_title,
        &notification.sender_name,
        &notification.group_name,
    ]
    .into_iter()
    .find(|t| !t.is_empty())
    .map(String::as_str)
    .map_or_else(
        || required(credential, "default_title", &credential.default_title),
        Ok,
    )
}

/// An Android `res/raw` resource is named without its extension (`ring.mp3` → `ring`).
pub fn raw_resource_name(file: &str) -> &str {
    match file.rsplit_once('.') {
        Some((name, _)) if !name.is_empty() => name,
        _ => file,
    }
}

/// The credential field `value`, or the error naming it when empty.
pub fn required<'a>(
    credential: &CredentialProfile,
    field: &'static str,
    value: &'a str,
) -> Result<&'a str, BuildError> {
    if value.is_empty() {
        Err(BuildError::MissingCredentialField {
            business_id: credential.business_id,
            vendor: name_of(credential.vendor),
            field,
        })
    } else {
        Ok(value)
    }
}

/// Seconds left until `expires_at_ms` when the request leaves (`request_at_ms`, set by the
/// sender; `send_time_ms` in previews), for vendors that take a relative TTL: a call push
/// sent 10 s into a 30 s ring carries 20 s. `None` when the notification never expires.
/// Never less than `min`.
pub fn ttl_seconds(notification: &Notification, min: u64) -> Option<u64> {
    if notification.expires_at_ms <= 0 {
        return None;
    }
    let left_ms = notification.expires_at_ms - request_at_ms(notification);
    Some(((left_ms.max(0) as u64).div_ceil(1000)).max(min))
}

/// When the request leaves: `request_at_ms`, or `send_time_ms` before a sender set it.
pub fn request_at_ms(notification: &Notification) -> i64 {
    if notification.request_at_ms > 0 {
        notification.request_at_ms
    } else {
        notification.send_time_ms
    }
}

/// Whether the sender asked for a silent iOS push (`ios_content_available`): a background
/// notification with no alert, sound or badge. A VoIP push stays one: it always rings.
pub fn is_silent(notification: &Notification) -> bool {
    notification.ios_content_available && notification.ios_push_type() != IosPushType::Voip
}

/// Whether the sender asked for a pass-through (data) message the app shows itself
/// (`android_notify_mode` CUSTOM) instead of a system notification.
pub fn is_pass_through(notification: &Notification) -> bool {
    notification.android_notify_mode() == AndroidNotifyMode::Custom
}

/// The vendor idempotency or replacement key of one message, optionally for one device:
/// derived from the message's `collapse_id` (its `msg_id`, or a digest of it), so two
/// different messages never share one, whatever their conversation and send time, and a
/// repeat of the same message always gets the same one.
pub fn message_key(notification: &Notification, token: Option<&str>) -> u64 {
    match token {
        Some(token) => stable_hash(&[notification.collapse_id.as_bytes(), token.as_bytes()]),
        None => stable_hash(&[notification.collapse_id.as_bytes()]),
    }
}

/// What a pass-through (data) message carries for the app to show: the rendered text and
/// `ext`, as string values (every vendor's data map takes strings).
#[derive(Serialize)]
pub struct PassThrough<'a> {
    pub body: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub ext: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub title: &'a str,
}

impl<'a> PassThrough<'a> {
    pub fn of(notification: &'a Notification) -> PassThrough<'a> {
        PassThrough {
            body: &notification.body,
            ext: &notification.ext,
            title: &notification.title,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared fixtures for the vendor modules' tests.
    use super::*;

    pub fn notification() -> Notification {
        Notification {
            title: "Team chat".into(),
            body: "Denny: see you at 5".into(),
            sound: "default".into(),
            ext: r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#.into(),
            send_time_ms: 1_700_000_000_000,
            conversation: "c2c:denny".into(),
            sender_name: "Denny".into(),
            ..Default::default()
        }
    }

    /// The sample notification of message `msg-1` (its collapse id).
    pub fn keyed_notification() -> Notification {
        Notification {
            collapse_id: "msg-1".into(),
            ..notification()
        }
    }

    /// The rule of every vendor key derived from `msg_id`: two messages of one conversation
    /// sent in the same millisecond get different keys, a later repeat of one message the
    /// same key, and a notification without a collapse id none.
    pub fn key_follows_msg_id<K: PartialEq + std::fmt::Debug>(
        key: impl Fn(&Notification) -> Option<K>,
    ) {
        let first = keyed_notification();
        let second_same_time = Notification {
            collapse_id: "msg-2".into(),
            ..first.clone()
        };
        let repeat_later = Notification {
            request_at_ms: first.send_time_ms + 60_000,
            ..first.clone()
        };
        let first_key = key(&first);
        assert!(
            first_key.is_some(),
            "a message with a collapse id has a key"
        );
        // (other notification, same key?)
        let table = [
            (&first, true),
            (&second_same_time, false),
            (&repeat_later, true),
        ];
        for (other, same) in table {
            assert_eq!(first_key == key(other), same, "{other:?}");
        }
        assert_eq!(key(&notification()), None, "no collapse id, no key");
    }

    pub fn target(token: &str) -> PushTarget {
        PushTarget {
            user_id: "vinson".into(),
            device_id: "dev-1".into(),
            token: token.into(),
            badge: Some(4),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn form_bodies_are_urlencoded() {
        let body = Body::Form(vec![
            ("a b".into(), "x&y=z".into()),
            ("t".into(), "你".into()),
        ]);
        assert_eq!(
            String::from_utf8(body.to_bytes()).unwrap(),
            "a+b=x%26y%3Dz&t=%E4%BD%A0"
        );
    }

    #[test]
    fn tokens_with_url_metacharacters_are_refused() {
        for bad in ["", "../x", "a/b", "a?b", "a#b", "a%2f", "a b", "a,b", "a&b"] {
            assert!(
                check_path_safe_token(Vendor::Apns, bad).is_err(),
                "{bad:?} accepted"
            );
        }
        for good in ["0a1b2c", "invalid-abc", "fcm:APA91b_x-y.z"] {
            assert!(check_path_safe_token(Vendor::Fcm, good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_refused_token_is_named_by_its_first_8_characters_only() {
        let token = "0123456789abcdef/../secret-rest";
        let err = check_path_safe_token(Vendor::Apns, token).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"01234567\""), "{text}");
        assert!(
            !text.contains("89abcdef"),
            "the rest of the token leaked: {text}"
        );
    }

    #[test]
    fn a_credential_of_another_vendor_is_refused() {
        let cred = CredentialProfile::new(9, Vendor::Fcm);
        let err = fit::<apns::Payload>(&notification(), &cred, &[target("ab")]).unwrap_err();
        assert!(matches!(err, BuildError::VendorMismatch { .. }));
    }

    #[test]
    fn ttl_is_relative_to_send_time() {
        let mut n = notification();
        assert_eq!(ttl_seconds(&n, 0), None);
        n.expires_at_ms = n.send_time_ms + 30_500;
        assert_eq!(ttl_seconds(&n, 0), Some(31));
        assert_eq!(ttl_seconds(&n, 60), Some(60));
    }

    #[test]
    fn ttl_is_what_is_left_when_the_request_leaves() {
        // (ms since send when the request leaves, ring or TTL in ms, seconds sent)
        let table = [
            (0, 30_000, 30),
            (10_000, 30_000, 20),
            (29_500, 30_000, 1),
            (60_000, 3_600_000, 3_540),
        ];
        for (after_ms, ttl_ms, expected) in table {
            let mut n = notification();
            n.expires_at_ms = n.send_time_ms + ttl_ms;
            n.request_at_ms = n.send_time_ms + after_ms;
            assert_eq!(
                ttl_seconds(&n, 0),
                Some(expected),
                "{after_ms} ms into {ttl_ms} ms"
            );
        }
    }

    #[test]
    fn message_keys_come_from_the_message_id_not_its_conversation_or_time() {
        let first = Notification {
            collapse_id: "msg-1".into(),
            ..notification()
        };
        let second = Notification {
            collapse_id: "msg-2".into(),
            ..notification()
        };
        let repeat = first.clone();
        assert_ne!(message_key(&first, None), message_key(&second, None));
        assert_eq!(message_key(&first, None), message_key(&repeat, None));
        assert_ne!(
            message_key(&first, Some("token-a")),
            message_key(&first, Some("token-b"))
        );
        assert_eq!(
            message_key(&first, Some("token-a")),
            message_key(&repeat, Some("token-a"))
        );
    }
}
