//! TLS for `rediss://`: the CA and client certificate of `[redis]` in the form redis-rs takes
//! them, and the crypto provider its rustls connections need.

use impush_config::ClientTls;
use redis::{ClientTlsConfig, TlsCertificates};

/// What redis-rs is given besides the URL; `None` when `tls` sets nothing, so that the
/// system's trust store is used (and a cluster of `redis://` seeds is not made TLS).
pub(crate) fn certificates(tls: &ClientTls) -> Option<TlsCertificates> {
    if tls.ca_pem.is_none() && tls.identity.is_none() {
        return None;
    }
    Some(TlsCertificates {
        client_tls: tls.identity.as_ref().map(|identity| ClientTlsConfig {
            client_cert: identity.cert_chain_pem.clone(),
            client_key: identity.key_pem().to_vec(),
        }),
        root_cert: tls.ca_pem.clone(),
    })
}

/// redis-rs builds its rustls configs with the process's default crypto provider and has none
/// of its own: make it aws-lc-rs, the provider of the AMQP and HTTPS clients, unless the
/// process chose one already.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have won the race; either way one is installed.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}
