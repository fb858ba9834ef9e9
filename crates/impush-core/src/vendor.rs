//! Vendor names as operators write them (`--vendor apns`, queue `impush.push.apns`).

use impush_proto::v1::Vendor;

/// Every vendor impush can send through, in a stable order.
pub const ALL: [Vendor; 10] = [
    Vendor::Apns,
    Vendor::Fcm,
    Vendor::Huawei,
    Vendor::Xiaomi,
    Vendor::Oppo,
    Vendor::Vivo,
    Vendor::Meizu,
    Vendor::Tpns,
    Vendor::Honor,
    Vendor::Harmony,
];

/// The lower-case name used in CLI flags, queue names and config.
pub fn name(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Unspecified => "unspecified",
        Vendor::Apns => "apns",
        Vendor::Fcm => "fcm",
        Vendor::Huawei => "huawei",
        Vendor::Xiaomi => "xiaomi",
        Vendor::Oppo => "oppo",
        Vendor::Vivo => "vivo",
        Vendor::Meizu => "meizu",
        Vendor::Tpns => "tpns",
        Vendor::Honor => "honor",
        Vendor::Harmony => "harmony",
    }
}

/// Parses a lower-case vendor name; `unspecified` is not a vendor one can send through.
pub fn parse(name_: &str) -> Option<Vendor> {
    ALL.into_iter().find(|v| name(*v) == name_)
}

/// Why a token is refused at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormatError {
    Empty,
    TooLong {
        max: usize,
    },
    /// A character no vendor token has; it could also change a URL path or a form list.
    BadCharacter,
    /// Only dots and the like, no letter or digit: `.` or `..` as the last segment of a URL
    /// path (APNs `/3/device/<token>`) would be resolved away and send elsewhere.
    NoAlphanumeric,
}

impl std::fmt::Display for TokenFormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenFormatError::Empty => f.write_str("empty token"),
            TokenFormatError::TooLong { max } => write!(f, "token longer than {max} characters"),
            TokenFormatError::BadCharacter => {
                f.write_str("token has a character vendor tokens never have")
            }
            TokenFormatError::NoAlphanumeric => f.write_str("token has no letter or digit"),
        }
    }
}

/// Checks a device token before it is stored and before it goes into a request: vendor
/// tokens are hex (APNs), base64url with `:` (FCM), standard base64 with `+`, `/`, `=`
/// (Xiaomi regids, Huawei, Honor and HarmonyOS tokens: they travel in form and JSON bodies,
/// never in a path), or
/// alphanumeric with `-`, `_`, `.` (the other channels), within a vendor-sized length. No
/// vendor's token has a comma, space, `&`, `?`, `#` or `%`, so none can change a URL, a form
/// field or a comma-separated token list. Exact per-vendor formats are left to the vendors,
/// which answer "invalid token" and get the registration pruned.
pub fn check_token(vendor: Vendor, token: &str) -> Result<(), TokenFormatError> {
    let max = match vendor {
        Vendor::Apns => 200,
        Vendor::Tpns => 256,
        _ => 4096,
    };
    if token.is_empty() {
        return Err(TokenFormatError::Empty);
    }
    if token.len() > max {
        return Err(TokenFormatError::TooLong { max });
    }
    let base64 = matches!(
        vendor,
        Vendor::Xiaomi | Vendor::Huawei | Vendor::Honor | Vendor::Harmony
    );
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b':' | b'~')
            || (base64 && matches!(b, b'+' | b'/' | b'='))
    };
    if !token.bytes().all(allowed) {
        return Err(TokenFormatError::BadCharacter);
    }
    if !token.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return Err(TokenFormatError::NoAlphanumeric);
    }
    Ok(())
}

/// True for the vendors whose devices run iOS (badge numbers apply).
pub fn is_ios(vendor: Vendor) -> bool {
    vendor == Vendor::Apns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_before_they_are_stored() {
        assert_eq!(check_token(Vendor::Apns, &"ab".repeat(32)), Ok(()));
        assert_eq!(check_token(Vendor::Fcm, "fcm:APA91b-x_y.z"), Ok(()));
        assert_eq!(check_token(Vendor::Apns, ""), Err(TokenFormatError::Empty));
        assert_eq!(
            check_token(Vendor::Apns, &"a".repeat(201)),
            Err(TokenFormatError::TooLong { max: 200 })
        );
        for bad in ["a,b", "a b", "a%2F", "a?b", "a&b", "a#b", "\u{0}"] {
            assert_eq!(
                check_token(Vendor::Xiaomi, bad),
                Err(TokenFormatError::BadCharacter),
                "{bad}"
            );
        }
        assert_eq!(
            check_token(Vendor::Xiaomi, "ZBfL1d4rX6y/RW+x="),
            Ok(()),
            "base64 regids"
        );
        assert_eq!(
            check_token(Vendor::Apns, "ab/cd"),
            Err(TokenFormatError::BadCharacter),
            "an APNs token goes into the URL path"
        );
        assert_eq!(
            check_token(Vendor::Oppo, "ab/cd"),
            Err(TokenFormatError::BadCharacter),
            "OPPO registration ids are not base64"
        );
    }

    #[test]
    fn a_token_that_is_a_url_dot_segment_is_refused() {
        for vendor in ALL {
            for dots in [".", "..", "...", "-", ".:~"] {
                assert_eq!(
                    check_token(vendor, dots),
                    Err(TokenFormatError::NoAlphanumeric),
                    "{vendor:?} {dots:?}"
                );
            }
        }
        assert_eq!(check_token(Vendor::Apns, "a..b"), Ok(()));
    }

    #[test]
    fn names_round_trip() {
        for v in ALL {
            assert_eq!(parse(name(v)), Some(v));
        }
        assert_eq!(parse("unspecified"), None);
        assert_eq!(parse("APNS"), None, "names are lower case");
    }
}
