//! The vendors impush sends through, by the facts operators and workers need: the
//! lower-case names (`--vendor apns`, queue `impush.push.apns`), the platform, and the token
//! format. Everything here is read from the one registry of payload modules
//! ([`crate::payload::REGISTRY`]), so a vendor is listed once.

use impush_proto::v1::Vendor;

pub use crate::ids::TokenFormatError;
use crate::payload::{REGISTRY, TokenRules, spec};

/// How many vendors there are.
pub const COUNT: usize = REGISTRY.len();

/// Every vendor impush can send through, in a stable order (the registry's).
pub const ALL: [Vendor; COUNT] = {
    let mut all = [Vendor::Unspecified; COUNT];
    let mut i = 0;
    while i < COUNT {
        all[i] = REGISTRY[i].vendor;
        i += 1;
    }
    all
};

/// The lower-case name used in CLI flags, queue names and config.
pub fn name(vendor: Vendor) -> &'static str {
    spec(vendor).map_or("unspecified", |spec| spec.name)
}

/// Parses a lower-case vendor name; `unspecified` is not a vendor one can send through.
pub fn parse(name_: &str) -> Option<Vendor> {
    REGISTRY
        .iter()
        .find(|spec| spec.name == name_)
        .map(|spec| spec.vendor)
}

/// Checks a device token before it is stored and before it goes into a request: vendor
/// tokens are hex (APNs), base64url with `:` (FCM), standard base64 with `+`, `/`, `=`
/// (Xiaomi regids, Huawei tokens: they travel in form and JSON bodies, never in a path), or
/// alphanumeric with `-`, `_`, `.` (the other channels), within a vendor-sized length. No
/// vendor's token has a comma, space, `&`, `?`, `#` or `%`, so none can change a URL, a form
/// field or a comma-separated token list. Exact per-vendor formats are left to the vendors,
/// which answer "invalid token" and get the registration pruned.
pub fn check_token(vendor: Vendor, token: &str) -> Result<(), TokenFormatError> {
    spec(vendor)
        .map_or(TokenRules::DEFAULT, |spec| spec.tokens)
        .check(token)
}

/// True for the vendors whose devices run iOS (badge numbers apply).
pub fn is_ios(vendor: Vendor) -> bool {
    spec(vendor).is_some_and(|spec| spec.is_ios)
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
    fn every_proto_vendor_has_a_registry_entry() {
        // The proto enum's values, `Unspecified` aside, are exactly the registry's.
        let mut from_proto: Vec<Vendor> =
            (1..=255).filter_map(|n| Vendor::try_from(n).ok()).collect();
        let mut registered = ALL.to_vec();
        from_proto.sort();
        registered.sort();
        assert_eq!(
            registered, from_proto,
            "a vendor of the proto enum has no payload module"
        );
        let mut names: Vec<&str> = ALL.iter().map(|v| name(*v)).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COUNT, "vendor names are unique");
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
