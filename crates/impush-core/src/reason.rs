//! Why a push failed, as a label: the value of a metric's `reason` label and of a dead
//! letter's reason header must come from a small set, or every distinct error text (an OS
//! error with its port, a vendor's sentence with a token in it) makes a new time series and
//! a dead-letter reason nobody can replay by. The full text goes to the logs and to the dead
//! letter's detail header; the label keeps only what is bounded.

use std::borrow::Cow;

/// The longest vendor code kept as it is.
const MAX_CODE_LEN: usize = 48;

/// The label for a reason: a vendor's own code as it is (`BadDeviceToken`, `80300007`,
/// `InvalidRegistration`), words of codes joined by `_` (`80100000 illegal_token` →
/// `80100000_illegal_token`), a transport or auth failure by its kind (`timeout`,
/// `connect_error`, `body_error`, `transport_error`, `auth_error`), and any other text
/// `other`.
pub fn label(reason: &str) -> Cow<'_, str> {
    let reason = reason.trim();
    if is_code(reason) {
        return Cow::Borrowed(reason);
    }
    let kind = reason
        .split(|c: char| c == ':' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    let by_kind = match kind {
        "timeout" => Some("timeout"),
        "connect" => Some("connect_error"),
        "body" => Some("body_error"),
        "transport" => Some("transport_error"),
        "auth" => Some("auth_error"),
        _ => None,
    };
    if let Some(label) = by_kind.filter(|_| reason.contains(':') || reason == kind) {
        return Cow::Borrowed(label);
    }
    let words: Vec<&str> = reason.split_whitespace().collect();
    if (2..=3).contains(&words.len())
        && words.iter().all(|w| is_code(w))
        && reason.len() <= MAX_CODE_LEN
    {
        return Cow::Owned(words.join("_"));
    }
    Cow::Borrowed("other")
}

/// One token of letters, digits, `_`, `-` or `.`, short: a code, not a sentence.
fn is_code(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_CODE_LEN
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_never_becomes_a_label() {
        let cases = [
            (
                "connect: Connection refused (os error 111)",
                "connect_error",
            ),
            (
                "connect: dns error: failed to lookup address information",
                "connect_error",
            ),
            ("timeout", "timeout"),
            ("body: error decoding response body", "body_error"),
            (
                "transport: connection closed before message completed",
                "transport_error",
            ),
            ("auth: 401 {\"error\":\"invalid_client\"}", "auth_error"),
            ("apns takes one target per request, got 3", "other"),
            ("cannot sign a provider token: InvalidKeyFormat", "other"),
            ("meizu: unreadable answer", "other"),
        ];
        for (text, expected) in cases {
            assert_eq!(label(text), expected, "{text}");
        }
    }

    #[test]
    fn vendor_codes_stay_as_the_vendor_wrote_them() {
        let cases = [
            ("BadDeviceToken", "BadDeviceToken"),
            ("Unregistered", "Unregistered"),
            ("80300007", "80300007"),
            ("unknown_business_id", "unknown_business_id"),
            ("80100000 illegal_token", "80100000_illegal_token"),
            ("400 89999999", "400_89999999"),
            ("UNREGISTERED", "UNREGISTERED"),
        ];
        for (text, expected) in cases {
            assert_eq!(label(text), expected, "{text}");
        }
    }

    #[test]
    fn every_label_is_a_short_token() {
        let long = "x".repeat(200);
        for text in [
            "",
            " ",
            "a b c d e",
            &long,
            "{\"json\": true}",
            "quota exceeded today",
        ] {
            let l = label(text);
            assert!(is_code(&l), "{text:?} gave {l:?}");
        }
    }
}
