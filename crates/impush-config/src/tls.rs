//! TLS to RabbitMQ and Redis beyond the system's trust store: `tls_ca_file` (the CA that
//! signed the server's certificate), and `tls_cert_file` with `tls_key_file` (the client's
//! certificate for mutual TLS), in `[amqp]` and in `[redis]`.
//!
//! The settings are checked when the config is parsed (a `tls_*` key next to a plain
//! `amqp://` or `redis://` URL, a certificate without its key); the files are read and their
//! PEM checked when a process starts ([`Config::amqp_tls`], [`Config::redis_tls`]), and every
//! error names the setting and the path. The key's bytes never print.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Config, ConfigError};

/// A TLS client's files, loaded and checked: what the AMQP and Redis clients are given.
/// The default trusts the system's store and presents no client certificate.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM certificates of the CAs to trust for the server's certificate.
    pub ca_pem: Option<Vec<u8>>,
    /// The client's certificate and key, for servers that ask for one.
    pub identity: Option<ClientIdentity>,
}

/// A client certificate (PEM, the leaf first, then any intermediates) and its private key
/// (PEM: PKCS#8, PKCS#1 or SEC1). Only [`ClientIdentity::key_pem`] gives the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert_chain_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl ClientIdentity {
    pub fn key_pem(&self) -> &[u8] {
        &self.key_pem
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field(
                "cert_chain_pem",
                &format_args!("{} bytes", self.cert_chain_pem.len()),
            )
            .field("key_pem", &format_args!("***"))
            .finish()
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field(
                "ca_pem",
                &self
                    .ca_pem
                    .as_ref()
                    .map(|pem| format!("{} bytes", pem.len())),
            )
            .field("identity", &self.identity)
            .finish()
    }
}

/// The `tls_*` settings of one section, as written in the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsSettings<'a> {
    /// `amqp` or `redis`.
    pub(crate) section: &'static str,
    pub(crate) ca_file: Option<&'a Path>,
    pub(crate) cert_file: Option<&'a Path>,
    pub(crate) key_file: Option<&'a Path>,
}

impl TlsSettings<'_> {
    fn any(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }

    /// The names of the settings that are set, for error messages.
    fn names(&self) -> String {
        [
            ("tls_ca_file", self.ca_file),
            ("tls_cert_file", self.cert_file),
            ("tls_key_file", self.key_file),
        ]
        .iter()
        .filter(|(_, path)| path.is_some())
        .map(|(name, _)| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Checks what needs no file: the settings go with TLS URLs (`tls_scheme` is `amqps` or
    /// `rediss`), and a certificate comes with its key.
    pub(crate) fn validate<'u>(
        &self,
        tls_scheme: &str,
        urls: impl IntoIterator<Item = &'u str>,
    ) -> Result<(), String> {
        if self.any() {
            for url in urls {
                let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
                if !scheme.eq_ignore_ascii_case(tls_scheme) {
                    return Err(format!(
                        "{} set, but the connection to {} is not TLS: use a {tls_scheme}:// \
                         URL, or remove the tls_* settings",
                        self.names(),
                        redacted_host(url),
                    ));
                }
            }
        }
        self.check_pairing()
    }

    /// A client certificate comes with its key, and a key with its certificate.
    fn check_pairing(&self) -> Result<(), String> {
        match (self.cert_file, self.key_file) {
            (Some(_), None) => Err("`tls_cert_file` is set without `tls_key_file`: a client \
                                    certificate needs its private key"
                .into()),
            (None, Some(_)) => Err("`tls_key_file` is set without `tls_cert_file`: a private \
                                    key needs its client certificate"
                .into()),
            _ => Ok(()),
        }
    }

    /// Reads and checks the files, relative paths against `base_dir`.
    pub(crate) fn load(&self, base_dir: &Path) -> Result<ClientTls, ConfigError> {
        let ca_pem = self
            .ca_file
            .map(|file| {
                let (path, pem) = self.read("tls_ca_file", base_dir, file)?;
                check_certificates(&pem)
                    .map_err(|message| self.error("tls_ca_file", &path, message))?;
                Ok::<_, ConfigError>(pem)
            })
            .transpose()?;
        let identity = match (self.cert_file, self.key_file) {
            (Some(cert_file), Some(key_file)) => {
                let (cert_path, cert_chain_pem) =
                    self.read("tls_cert_file", base_dir, cert_file)?;
                check_certificates(&cert_chain_pem)
                    .map_err(|message| self.error("tls_cert_file", &cert_path, message))?;
                let (key_path, key_pem) = self.read("tls_key_file", base_dir, key_file)?;
                crate::secret::warn_if_readable_by_others(&key_path);
                check_private_key(&key_pem)
                    .map_err(|message| self.error("tls_key_file", &key_path, message))?;
                Some(ClientIdentity {
                    cert_chain_pem,
                    key_pem,
                })
            }
            (None, None) => None,
            // Refused when the config was parsed; a config built in code gets the same answer.
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Parse {
                    origin: "config".into(),
                    message: format!(
                        "{}: {}",
                        self.section,
                        self.check_pairing().err().unwrap_or_default()
                    ),
                });
            }
        };
        Ok(ClientTls { ca_pem, identity })
    }

    fn read(
        &self,
        setting: &'static str,
        base_dir: &Path,
        file: &Path,
    ) -> Result<(PathBuf, Vec<u8>), ConfigError> {
        let path = base_dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => Ok((path, bytes)),
            Err(err) => Err(self.error(setting, &path, format!("cannot read it: {err}"))),
        }
    }

    fn error(&self, setting: &'static str, path: &Path, message: String) -> ConfigError {
        ConfigError::Tls {
            setting: format!("{}.{setting}", self.section),
            path: path.to_owned(),
            message,
        }
    }
}

/// At least one certificate, and nothing that is not PEM.
fn check_certificates(pem: &[u8]) -> Result<(), String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|err| format!("not valid PEM: {err}"))?;
    if certificates.is_empty() {
        return Err("no certificate in it (expected a PEM `CERTIFICATE` block)".into());
    }
    Ok(())
}

/// One private key. The parser's own error is left out: it could quote a line of the key.
fn check_private_key(pem: &[u8]) -> Result<(), String> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(_) => Ok(()),
        Err(pem::Error::NoItemsFound) => Err("no private key in it (expected a PEM `PRIVATE \
                                              KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)"
            .into()),
        Err(_) => Err("not a valid PEM private key".into()),
    }
}

/// `scheme://user:pass@host:port/path` → `host:port`, for messages that must not carry the
/// password.
fn redacted_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    format!("{scheme}://{host}")
}

impl Config {
    /// `[amqp]`'s CA and client certificate, read from their files.
    pub fn amqp_tls(&self) -> Result<ClientTls, ConfigError> {
        self.amqp.tls_settings().load(&self.base_dir)
    }

    /// `[redis]`'s CA and client certificate, read from their files (the same for every
    /// node of a cluster).
    pub fn redis_tls(&self) -> Result<ClientTls, ConfigError> {
        self.redis.tls_settings().load(&self.base_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings<'a>(
        ca: Option<&'a str>,
        cert: Option<&'a str>,
        key: Option<&'a str>,
    ) -> TlsSettings<'a> {
        TlsSettings {
            section: "redis",
            ca_file: ca.map(Path::new),
            cert_file: cert.map(Path::new),
            key_file: key.map(Path::new),
        }
    }

    #[test]
    fn tls_settings_with_a_plain_url_name_the_settings_and_the_host_not_the_password() {
        let err = settings(Some("ca.pem"), None, None)
            .validate("rediss", ["redis://:hunter2@cache:6379/0"])
            .unwrap_err();
        assert!(err.contains("`tls_ca_file`"), "{err}");
        assert!(err.contains("redis://cache:6379"), "{err}");
        assert!(err.contains("rediss://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn tls_settings_with_tls_urls_are_accepted_and_no_settings_need_no_tls() {
        let both = settings(Some("ca.pem"), Some("c.pem"), Some("k.pem"));
        assert_eq!(
            both.validate("rediss", ["rediss://a:1", "REDISS://b:2"]),
            Ok(())
        );
        let none = settings(None, None, None);
        assert_eq!(none.validate("rediss", ["redis://a:1"]), Ok(()));
    }

    #[test]
    fn a_certificate_needs_its_key_and_a_key_its_certificate() {
        let err = settings(None, Some("c.pem"), None)
            .validate("rediss", ["rediss://a:1"])
            .unwrap_err();
        assert!(err.contains("without `tls_key_file`"), "{err}");
        let err = settings(None, None, Some("k.pem"))
            .validate("rediss", ["rediss://a:1"])
            .unwrap_err();
        assert!(err.contains("without `tls_cert_file`"), "{err}");
    }

    #[test]
    fn pem_that_is_not_a_certificate_or_a_key_is_refused() {
        assert!(
            check_certificates(b"hello")
                .unwrap_err()
                .contains("no certificate")
        );
        assert!(
            check_certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        assert!(
            check_private_key(b"hello")
                .unwrap_err()
                .contains("no private key")
        );
        let broken =
            b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz!!\n-----END PRIVATE KEY-----\n";
        let err = check_private_key(broken).unwrap_err();
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn a_missing_file_names_the_setting_and_the_path() {
        let err = settings(Some("no/such/ca.pem"), None, None)
            .load(Path::new("/etc/impush"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis.tls_ca_file"), "{err}");
        assert!(err.contains("/etc/impush/no/such/ca.pem"), "{err}");
    }

    #[test]
    fn the_key_never_prints() {
        let identity = ClientIdentity {
            cert_chain_pem: b"cert".to_vec(),
            key_pem: b"super-secret-key".to_vec(),
        };
        let tls = ClientTls {
            ca_pem: None,
            identity: Some(identity),
        };
        let shown = format!("{tls:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
