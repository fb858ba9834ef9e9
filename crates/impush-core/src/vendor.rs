//! Vendor names as operators write them (`--vendor apns`, queue `impush.push.apns`).

use impush_proto::v1::Vendor;

/// Every vendor impush can send through, in a stable order.
pub const ALL: [Vendor; 8] = [
    Vendor::Apns,
    Vendor::Fcm,
    Vendor::Huawei,
    Vendor::Xiaomi,
    Vendor::Oppo,
    Vendor::Vivo,
    Vendor::Meizu,
    Vendor::Tpns,
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
    }
}

/// Parses a lower-case vendor name; `unspecified` is not a vendor one can send through.
pub fn parse(name_: &str) -> Option<Vendor> {
    ALL.into_iter().find(|v| name(*v) == name_)
}

/// True for the vendors whose devices run iOS (badge numbers apply).
pub fn is_ios(vendor: Vendor) -> bool {
    vendor == Vendor::Apns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in ALL {
            assert_eq!(parse(name(v)), Some(v));
        }
        assert_eq!(parse("unspecified"), None);
        assert_eq!(parse("APNS"), None, "names are lower case");
    }
}
