//! Identifiers that travel to the vendors: values safe in an HTTP header, a hash that stays
//! the same across processes and releases, and the checks device tokens pass before they
//! are stored or put in a request. Shared by rendering (the collapse id), the payload
//! builders (vendors' message ids) and the vendor registry, so none imports another for them.

/// Whether `value` can be an HTTP header value as is: visible ASCII only, so nothing in
/// it can end the header or start another.
pub fn is_header_safe(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic())
}

/// A hash that is the same in every process and release (FNV-1a, 64 bits), for ids vendors
/// use to recognise a message again. Parts are separated by 0xFF, which UTF-8 never holds.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (i, part) in parts.iter().enumerate() {
        let separator: &[u8] = if i == 0 { &[] } else { &[0xFF] };
        for &byte in separator.iter().chain(part.iter()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
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

/// What a vendor's device tokens look like, as far as impush checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRules {
    pub max_len: usize,
    /// Standard base64 (`+`, `/`, `=`) besides the URL-safe characters: such tokens travel
    /// in form and JSON bodies, never in a path.
    pub base64: bool,
}

impl TokenRules {
    /// Alphanumeric with `-`, `_`, `.`, `:`, `~`, up to 4096 bytes.
    pub const DEFAULT: TokenRules = TokenRules {
        max_len: 4096,
        base64: false,
    };

    /// Checks a device token before it is stored and before it goes into a request: vendor
    /// tokens are hex (APNs), base64url with `:` (FCM), standard base64 with `+`, `/`, `=`
    /// (Xiaomi regids, Huawei tokens: they travel in form and JSON bodies, never in a path), or
    /// alphanumeric with `-`, `_`, `.` (the other channels), within a vendor-sized length. No
    /// vendor's token has a comma, space, `&`, `?`, `#` or `%`, so none can change a URL, a form
    /// field or a comma-separated token list. Exact per-vendor formats are left to the vendors,
    /// which answer "invalid token" and get the registration pruned.
    pub fn check(&self, token: &str) -> Result<(), TokenFormatError> {
        let max = self.max_len;
        if token.is_empty() {
            return Err(TokenFormatError::Empty);
        }
        if token.len() > max {
            return Err(TokenFormatError::TooLong { max });
        }
        let base64 = self.base64;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_safe_values_are_visible_ascii_only() {
        assert!(is_header_safe("msg-1_a.b~c"));
        for bad in ["a b", "a\r\nb", "é", "a\tb"] {
            assert!(!is_header_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn stable_hash_separates_parts() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_eq!(stable_hash(&[b"x"]), stable_hash(&[b"x"]));
    }
}
