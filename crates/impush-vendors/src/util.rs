//! Small helpers several vendor modules need, written once so that no vendor module imports
//! another: China time (the Chinese vendors' daily quotas restart at midnight in Beijing),
//! the hex digests vendors sign with, and token shortening for logs.

use std::time::Duration;

pub(crate) use impush_core::text::short_token;

const DAY_S: u64 = 86_400;
/// Beijing time, UTC+8 all year (China has no daylight saving time).
const CHINA_OFFSET_S: u64 = 8 * 3600;

/// The time from `now_unix_s` to the next midnight in China (at least one second), when
/// OPPO's, vivo's, Xiaomi's and Meizu's daily quotas start again.
pub fn until_china_midnight(now_unix_s: u64) -> Duration {
    let into_day = (now_unix_s + CHINA_OFFSET_S) % DAY_S;
    Duration::from_secs(DAY_S - into_day)
}

/// The number of the day in China that `now_ms` (Unix milliseconds) falls in: quota days.
pub fn china_day(now_ms: i64) -> i64 {
    const DAY_MS: i64 = DAY_S as i64 * 1000;
    const OFFSET_MS: i64 = CHINA_OFFSET_S as i64 * 1000;
    (now_ms + OFFSET_MS).div_euclid(DAY_MS)
}

/// Lowercase hex MD5 (vivo's auth sign, Meizu's request sign).
pub(crate) fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// Lowercase hex SHA-256 (OPPO's auth sign).
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_midnight_is_16_00_utc() {
        assert_eq!(until_china_midnight(16 * 3600), Duration::from_secs(86_400));
        assert_eq!(until_china_midnight(16 * 3600 - 1), Duration::from_secs(1));
        assert_eq!(until_china_midnight(0), Duration::from_secs(16 * 3600));
    }

    #[test]
    fn china_days_turn_at_16_00_utc() {
        let sixteen = 16 * 3600 * 1000;
        assert_eq!(china_day(sixteen - 1), 0);
        assert_eq!(china_day(sixteen), 1);
        assert_eq!(china_day(-8 * 3600 * 1000 - 1), -1);
    }

    #[test]
    fn digests_are_lowercase_hex() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
