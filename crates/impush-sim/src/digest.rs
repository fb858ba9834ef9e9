//! The hex digests vendors sign with, for the personalities that check signatures (OPPO's
//! auth sign, vivo's auth sign, Meizu's request sign): written once so that no personality
//! imports another.

/// Lowercase hex MD5 (vivo, Meizu).
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// Lowercase hex SHA-256 (OPPO).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
