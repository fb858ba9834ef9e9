//! Apple APNs client: HTTP/2 provider API
//! (<https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns>),
//! provider-token (p8) or
//! certificate (p12) authentication, and the classification of every APNs reason.
//!
//! - **Connection**: HTTP/2 only. `https://…` negotiates h2 by ALPN (TLS); `http://…` (the
//!   simulator) speaks h2c with prior knowledge. An empty `base_url` means Apple's host of
//!   the credential's `environment`. Each credential has its own connections, so tokens of
//!   different teams never share one (Apple's `UnrelatedKeyIdInToken`).
//! - **Provider tokens** (ES256 JWT, header `{alg, kid}`, claims `{iss: team_id, iat}`): one
//!   [`ProviderKey`] per (team_id, key_id), shared by every credential using that key, holds
//!   one token for all of them. It is reused until [`ROTATE_AFTER`] (50 min) old; Apple
//!   expires tokens at 60 min and answers 429 `TooManyProviderTokenUpdates` to tokens replaced
//!   more often than every 20 min ([`MIN_REFRESH_INTERVAL`]).
//! - **403 `ExpiredProviderToken`**: the request is sent once more with a fresh token, then
//!   `Rejected`. If another request already replaced the token, the new one is used. Else a
//!   token at least 20 min old is replaced. A younger one means Apple's clock and ours
//!   disagree: Apple's verdict wins once (the token is useless to us either way), but such
//!   early replacements happen at most once per 20 min per key, so a skewed clock cannot
//!   make us churn tokens; past that budget the answer is `Rejected("ExpiredProviderToken")`.
//! - **Certificates**: the `.p12` is opened with `p12-keystore` (pure Rust, also the legacy
//!   3DES/RC2 files Keychain exports) and handed to rustls as a PEM identity. It needs TLS,
//!   so an `http://` base URL with a p12 is a start-up error.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use impush_config::{ApnsSecrets, Config, Secret, SecretRef};
use impush_core::{CredentialProfile, Environment, PushTarget, Vendor, VendorRequest};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Attempt, AuthFailure, AuthSource};
use crate::http::{self, Answer};
use crate::util::short_token;
use crate::{ClientError, Outcome, SendResult};

pub(crate) const PRODUCTION_URL: &str = "https://api.push.apple.com";
/// Tokens per second per sender process by default: Apple publishes no rate limit; HTTP/2 concurrency is the limit.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = None;
pub(crate) const SANDBOX_URL: &str = "https://api.sandbox.push.apple.com";
/// A provider token is replaced once it is this old (Apple: after 20, before 60 minutes).
pub(crate) const ROTATE_AFTER: Duration = Duration::from_secs(50 * 60);
/// Apple answers 429 `TooManyProviderTokenUpdates` to tokens replaced more often.
pub(crate) const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(20 * 60);
/// HTTP/2 PING on idle connections, to notice dead ones before a push does.
const KEEP_ALIVE: Duration = Duration::from_secs(10 * 60);
/// Apple asks providers to keep connections open; it closes idle ones itself after about
/// an hour (`IdleTimeout`).
const POOL_IDLE: Duration = Duration::from_secs(55 * 60);

/// One APNs credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    auth: Auth,
}

enum Auth {
    Token(Arc<ProviderKey>),
    /// The TLS client certificate authenticates; no `authorization` header. It works until
    /// the earliest notAfter of its chain (Unix seconds), if that could be read.
    Certificate {
        expires_at_s: Option<i64>,
    },
}

impl Client {
    /// When the credential stops working: a p12 certificate's expiry. p8 keys do not expire
    /// (they are revoked, which no file shows).
    pub(crate) fn certificate_expiry_s(&self) -> Option<i64> {
        match self.auth {
            Auth::Certificate { expires_at_s } => expires_at_s,
            Auth::Token(_) => None,
        }
    }
}

/// A p8 key already read for an earlier credential.
struct SharedKey {
    key: Arc<ProviderKey>,
    pem: Secret,
    first_business_id: u64,
}

/// Clients for every APNs credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    let mut keys = HashMap::new();
    crate::build_clients(config, Vendor::Apns, |profile| {
        client(config, profile, &mut keys)
    })
}

fn client(
    config: &Config,
    profile: &CredentialProfile,
    keys: &mut HashMap<(String, String), SharedKey>,
) -> Result<Client, ClientError> {
    let business_id = profile.business_id;
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let default_url = match profile.environment {
        Environment::Production => PRODUCTION_URL,
        Environment::Sandbox => SANDBOX_URL,
    };
    let (settings, base_url) = http::settings_and_base_url(config, business_id, default_url)?;
    let secrets = settings.apns.as_ref().ok_or_else(|| {
        fail(
            "apns",
            "missing: an APNs credential needs [credentials.apns] with a p8 `private_key` \
             (and `team_id`, `key_id`) or a `p12`"
                .into(),
        )
    })?;
    let builder = http::builder(crate::request_timeout(config))
        .http2_prior_knowledge()
        .http2_keep_alive_interval(KEEP_ALIVE)
        .http2_keep_alive_while_idle(true)
        .pool_idle_timeout(POOL_IDLE);
    let (builder, auth, tls_field) = match (&secrets.private_key, &secrets.p12) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "apns.p12",
                "give either a p8 `private_key` or a `p12`, not both".into(),
            ));
        }
        (None, None) => {
            return Err(fail(
                "apns.private_key",
                "missing: give a p8 `private_key` (with `team_id` and `key_id`) or a `p12`".into(),
            ));
        }
        (Some(key), None) => {
            let key = provider_key(config, business_id, secrets, key, keys)?;
            (builder, Auth::Token(key), "base_url")
        }
        (None, Some(p12)) => {
            if !base_url.starts_with("https://") {
                return Err(fail(
                    "apns.p12",
                    format!("certificate auth needs TLS, but base_url is {base_url}"),
                ));
            }
            let (identity, expires_at_s) =
                p12_identity(config, business_id, p12, secrets.p12_password.as_ref())?;
            (
                builder.identity(identity),
                Auth::Certificate { expires_at_s },
                "apns.p12",
            )
        }
    };
    let http = builder
        .build()
        .map_err(|e| fail(tls_field, format!("cannot build the HTTP/2 client: {e}")))?;
    Ok(Client {
        business_id,
        base_url,
        http,
        auth,
    })
}

/// The shared key of `secrets`' (team_id, key_id), read and checked the first time.
fn provider_key(
    config: &Config,
    business_id: u64,
    secrets: &ApnsSecrets,
    key: &SecretRef,
    keys: &mut HashMap<(String, String), SharedKey>,
) -> Result<Arc<ProviderKey>, ClientError> {
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let team_id = secrets.team_id.trim();
    if team_id.is_empty() {
        return Err(fail(
            "apns.team_id",
            "missing: the Team ID the p8 key belongs to".into(),
        ));
    }
    let key_id = secrets.key_id.trim();
    if key_id.is_empty() {
        return Err(fail(
            "apns.key_id",
            "missing: the Key ID of the p8 key".into(),
        ));
    }
    let pem = config
        .secret(key)
        .map_err(|e| fail("apns.private_key", e.to_string()))?;
    let id = (team_id.to_owned(), key_id.to_owned());
    if let Some(shared) = keys.get(&id) {
        if shared.pem != pem {
            return Err(fail(
                "apns.private_key",
                format!(
                    "differs from the key of credential {} with the same team_id and key_id",
                    shared.first_business_id
                ),
            ));
        }
        return Ok(Arc::clone(&shared.key));
    }
    let provider = ProviderKey::new(team_id, key_id, pem.expose().as_bytes())
        .map(Arc::new)
        .map_err(|m| fail("apns.private_key", m))?;
    keys.insert(
        id,
        SharedKey {
            key: Arc::clone(&provider),
            pem,
            first_business_id: business_id,
        },
    );
    Ok(provider)
}

/// The client identity (certificate chain and key) of a `.p12` file, and the earliest expiry
/// of its certificates.
fn p12_identity(
    config: &Config,
    business_id: u64,
    p12: &Path,
    password: Option<&SecretRef>,
) -> Result<(reqwest::Identity, Option<i64>), ClientError> {
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let file = config.path(p12);
    let der = std::fs::read(&file)
        .map_err(|e| fail("apns.p12", format!("cannot read {}: {e}", file.display())))?;
    let password = match password {
        Some(reference) => config
            .secret(reference)
            .map_err(|e| fail("apns.p12_password", e.to_string()))?,
        None => Secret::new(""),
    };
    let store = p12_keystore::KeyStore::from_pkcs12(&der, password.expose()).map_err(|e| {
        fail(
            "apns.p12",
            format!("cannot open {} (wrong p12_password?): {e}", file.display()),
        )
    })?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| {
        fail(
            "apns.p12",
            format!(
                "{} holds no private key with its certificate",
                file.display()
            ),
        )
    })?;
    let mut pem = pem_block("PRIVATE KEY", chain.key());
    let mut expires_at_s: Option<i64> = None;
    for certificate in chain.chain() {
        pem.push_str(&pem_block("CERTIFICATE", certificate.as_der()));
        if let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate.as_der()) {
            let not_after = parsed.validity().not_after.timestamp();
            expires_at_s = Some(expires_at_s.map_or(not_after, |e| e.min(not_after)));
        }
    }
    let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| {
        fail(
            "apns.p12",
            format!("unusable key or certificate in {}: {e}", file.display()),
        )
    })?;
    Ok((identity, expires_at_s))
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

impl Client {
    /// Sends one notification (APNs takes exactly one device per request).
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let [target] = targets else {
            return http::all(
                0,
                targets.len(),
                Outcome::Rejected {
                    reason: format!("apns takes one target per request, got {}", targets.len()),
                },
            );
        };
        let url = format!("{}{}", self.base_url, request.path);
        let body = request.body.to_bytes();
        let sent = auth::send_refreshing(&self.auth, "apns", self.business_id, |token| {
            self.send_with(&url, request, body.clone(), token)
        })
        .await;
        let (status, outcome) = sent.unwrap_or_else(|failure| (failure.status, failure.outcome));
        http::log_outcome("apns", self.business_id, &target.token, status, &outcome);
        SendResult {
            status,
            outcomes: vec![outcome],
        }
    }

    /// One request, with `token` as its bearer when the credential signs with a p8 key.
    async fn send_with(
        &self,
        url: &str,
        request: &VendorRequest,
        body: Vec<u8>,
        token: Option<ProviderToken>,
    ) -> Attempt<(u16, Outcome)> {
        let authorization = token.map(|t| format!("bearer {}", t.jwt));
        match http::post(
            &self.http,
            url,
            "application/json",
            &request.headers,
            authorization.as_deref(),
            body,
        )
        .await
        {
            Ok(exchange) => classify(exchange.status, &exchange.body, exchange.retry_after)
                .into_attempt(exchange.status),
            Err(reason) => Attempt::Done((
                0,
                Outcome::Retry {
                    after: None,
                    reason,
                },
            )),
        }
    }
}

/// A p8 key signs a provider token per request; a p12 certificate authenticates the
/// connection and needs none.
impl AuthSource for Auth {
    type Token = Option<ProviderToken>;

    async fn current(&self) -> Result<Option<ProviderToken>, AuthFailure> {
        match self {
            Auth::Token(key) => key
                .token(Instant::now(), http::unix_now())
                .map(Some)
                .map_err(sign_failure),
            Auth::Certificate { .. } => Ok(None),
        }
    }

    async fn refused(
        &self,
        used: &Option<ProviderToken>,
    ) -> Result<Option<Option<ProviderToken>>, AuthFailure> {
        let (Auth::Token(key), Some(used)) = (self, used) else {
            return Ok(None);
        };
        match key.expired(used, Instant::now(), http::unix_now()) {
            Ok(Some(fresh)) => Ok(Some(Some(fresh))),
            Ok(None) => {
                tracing::warn!(
                    team_id = %key.team_id,
                    key_id = %key.key_id,
                    "apns: ExpiredProviderToken for a token replaced less than 20 min ago; \
                     is the clock right?"
                );
                Ok(None)
            }
            Err(e) => Err(sign_failure(e)),
        }
    }
}

fn sign_failure(error: String) -> AuthFailure {
    AuthFailure {
        status: 0,
        outcome: Outcome::Rejected {
            reason: format!("cannot sign a provider token: {error}"),
        },
    }
}

/// One signing key (team_id, key_id) and the provider token all its credentials share.
pub(crate) struct ProviderKey {
    team_id: String,
    key_id: String,
    key: EncodingKey,
    state: Mutex<KeyState>,
}

#[derive(Default)]
struct KeyState {
    current: Option<ProviderToken>,
    /// When the token was last replaced early (younger than 20 min) on Apple's word.
    last_early_refresh: Option<Instant>,
}

#[derive(Clone, PartialEq)]
pub(crate) struct ProviderToken {
    pub jwt: Arc<str>,
    /// The `iat` claim.
    pub iat: u64,
    /// When it was made, by the monotonic clock its age is measured with.
    pub issued: Instant,
}

/// Shows the first 8 characters of the token only.
impl std::fmt::Debug for ProviderToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderToken")
            .field("jwt", &format_args!("{}…", short_token(&self.jwt)))
            .field("iat", &self.iat)
            .field("issued", &self.issued)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    iat: u64,
}

impl ProviderKey {
    /// Reads a PKCS#8 P-256 PEM key and checks that it signs.
    pub(crate) fn new(team_id: &str, key_id: &str, pem: &[u8]) -> Result<ProviderKey, String> {
        let key = EncodingKey::from_ec_pem(pem)
            .map_err(|e| format!("not a PKCS#8 P-256 (ES256) PEM key: {e}"))?;
        let provider = ProviderKey {
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            key,
            state: Mutex::default(),
        };
        provider
            .sign(0)
            .map_err(|e| format!("cannot sign ES256 with this key: {e}"))?;
        Ok(provider)
    }

    fn sign(&self, iat: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: self.team_id.clone(),
            iat,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }

    /// A new token issued at `unix`, or one second after the token it replaces if that is
    /// later: a deterministic ES256 signer (RFC 6979) would re-sign the very token being
    /// replaced within the same second, so the replacement always differs in its claims.
    fn issue(
        &self,
        now: Instant,
        unix: u64,
        replaces: Option<&ProviderToken>,
    ) -> Result<ProviderToken, String> {
        let iat = replaces.map_or(unix, |old| unix.max(old.iat + 1));
        let jwt = self.sign(iat).map_err(|e| e.to_string())?;
        Ok(ProviderToken {
            jwt: jwt.into(),
            iat,
            issued: now,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token to send with at `now` (`unix` seconds): the shared one until it is
    /// [`ROTATE_AFTER`] old.
    pub(crate) fn token(&self, now: Instant, unix: u64) -> Result<ProviderToken, String> {
        let mut state = self.lock();
        if let Some(current) = &state.current
            && now.saturating_duration_since(current.issued) < ROTATE_AFTER
        {
            return Ok(current.clone());
        }
        let token = self.issue(now, unix, state.current.as_ref())?;
        tracing::debug!(
            team_id = %self.team_id,
            key_id = %self.key_id,
            "apns: new provider token"
        );
        state.current = Some(token.clone());
        Ok(token)
    }

    /// Apple answered `ExpiredProviderToken` to a request signed with `used`: the token to
    /// send once more with, or `None` when it must not be replaced yet (see the module doc).
    pub(crate) fn expired(
        &self,
        used: &ProviderToken,
        now: Instant,
        unix: u64,
    ) -> Result<Option<ProviderToken>, String> {
        let mut state = self.lock();
        if let Some(current) = &state.current
            && current.jwt != used.jwt
        {
            return Ok(Some(current.clone()));
        }
        let old_enough = state
            .current
            .as_ref()
            .is_none_or(|c| now.saturating_duration_since(c.issued) >= MIN_REFRESH_INTERVAL);
        if !old_enough {
            let budget_left = state
                .last_early_refresh
                .is_none_or(|t| now.saturating_duration_since(t) >= MIN_REFRESH_INTERVAL);
            if !budget_left {
                return Ok(None);
            }
            state.last_early_refresh = Some(now);
        }
        let token = self.issue(now, unix, state.current.as_ref())?;
        tracing::info!(
            team_id = %self.team_id,
            key_id = %self.key_id,
            early = !old_enough,
            "apns: provider token replaced after ExpiredProviderToken"
        );
        state.current = Some(token.clone());
        Ok(Some(token))
    }
}

/// Every reason APNs documents
/// (<https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    // 400
    BadCollapseId,
    BadDeviceToken,
    BadExpirationDate,
    BadMessageId,
    BadPriority,
    BadTopic,
    DeviceTokenNotForTopic,
    DuplicateHeaders,
    IdleTimeout,
    InvalidPushType,
    MissingDeviceToken,
    MissingTopic,
    PayloadEmpty,
    TopicDisallowed,
    // 403
    BadCertificate,
    BadCertificateEnvironment,
    ExpiredProviderToken,
    Forbidden,
    InvalidProviderToken,
    MissingProviderToken,
    UnrelatedKeyIdInToken,
    BadEnvironmentKeyIdInToken,
    // 404, 405
    BadPath,
    MethodNotAllowed,
    // 410
    ExpiredToken,
    Unregistered,
    // 413
    PayloadTooLarge,
    // 429
    TooManyProviderTokenUpdates,
    TooManyRequests,
    // 500, 503
    InternalServerError,
    ServiceUnavailable,
    Shutdown,
}

impl Reason {
    pub(crate) const ALL: [Reason; 32] = {
        use Reason::*;
        [
            BadCollapseId,
            BadDeviceToken,
            BadExpirationDate,
            BadMessageId,
            BadPriority,
            BadTopic,
            DeviceTokenNotForTopic,
            DuplicateHeaders,
            IdleTimeout,
            InvalidPushType,
            MissingDeviceToken,
            MissingTopic,
            PayloadEmpty,
            TopicDisallowed,
            BadCertificate,
            BadCertificateEnvironment,
            ExpiredProviderToken,
            Forbidden,
            InvalidProviderToken,
            MissingProviderToken,
            UnrelatedKeyIdInToken,
            BadEnvironmentKeyIdInToken,
            BadPath,
            MethodNotAllowed,
            ExpiredToken,
            Unregistered,
            PayloadTooLarge,
            TooManyProviderTokenUpdates,
            TooManyRequests,
            InternalServerError,
            ServiceUnavailable,
            Shutdown,
        ]
    };

    pub(crate) fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            BadCollapseId => "BadCollapseId",
            BadDeviceToken => "BadDeviceToken",
            BadExpirationDate => "BadExpirationDate",
            BadMessageId => "BadMessageId",
            BadPriority => "BadPriority",
            BadTopic => "BadTopic",
            DeviceTokenNotForTopic => "DeviceTokenNotForTopic",
            DuplicateHeaders => "DuplicateHeaders",
            IdleTimeout => "IdleTimeout",
            InvalidPushType => "InvalidPushType",
            MissingDeviceToken => "MissingDeviceToken",
            MissingTopic => "MissingTopic",
            PayloadEmpty => "PayloadEmpty",
            TopicDisallowed => "TopicDisallowed",
            BadCertificate => "BadCertificate",
            BadCertificateEnvironment => "BadCertificateEnvironment",
            ExpiredProviderToken => "ExpiredProviderToken",
            Forbidden => "Forbidden",
            InvalidProviderToken => "InvalidProviderToken",
            MissingProviderToken => "MissingProviderToken",
            UnrelatedKeyIdInToken => "UnrelatedKeyIdInToken",
            BadEnvironmentKeyIdInToken => "BadEnvironmentKeyIdInToken",
            BadPath => "BadPath",
            MethodNotAllowed => "MethodNotAllowed",
            ExpiredToken => "ExpiredToken",
            Unregistered => "Unregistered",
            PayloadTooLarge => "PayloadTooLarge",
            TooManyProviderTokenUpdates => "TooManyProviderTokenUpdates",
            TooManyRequests => "TooManyRequests",
            InternalServerError => "InternalServerError",
            ServiceUnavailable => "ServiceUnavailable",
            Shutdown => "Shutdown",
        }
    }

    pub(crate) fn parse(reason: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == reason)
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    reason: String,
}

/// An APNs answer: 2xx is delivered; otherwise the `reason` of the JSON body decides, and an
/// unknown or missing reason goes by the status (5xx `Retry`, else `Rejected`).
pub(crate) fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> Answer {
    if (200..300).contains(&status) {
        return Answer::Done(Outcome::Delivered);
    }
    let reason = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.reason)
        .unwrap_or_default();
    if let Some(known) = Reason::parse(&reason) {
        return classify_reason(known, retry_after);
    }
    let reason = format!("{status} {reason}").trim_end().to_owned();
    Answer::Done(if status >= 500 {
        Outcome::Retry {
            after: retry_after,
            reason,
        }
    } else {
        Outcome::Rejected { reason }
    })
}

/// What each documented reason means for us. Every reason is listed: adding one to
/// [`Reason`] does not compile until it is classified here.
fn classify_reason(reason: Reason, retry_after: Option<Duration>) -> Answer {
    use Reason::*;
    let name = reason.as_str().to_owned();
    let outcome = match reason {
        // The token is dead, or belongs to another app. (BadDeviceToken also answers a
        // token of the other environment; the environment is the credential's, so such a
        // token cannot work with it either.)
        Unregistered | ExpiredToken | BadDeviceToken | DeviceTokenNotForTopic => {
            Outcome::InvalidToken { reason: name }
        }
        // Transient: too many pushes to this device, or APNs trouble. APNs documents no
        // Retry-After; one is honoured if it ever comes. IdleTimeout is a connection-level
        // reason (normally in a GOAWAY): the notification itself was never judged.
        TooManyRequests | InternalServerError | ServiceUnavailable | Shutdown | IdleTimeout => {
            Outcome::Retry {
                after: retry_after,
                reason: name,
            }
        }
        ExpiredProviderToken => return Answer::RefreshAuth(name),
        // Will never work as sent: the request, the credential, or our token handling
        // (TooManyProviderTokenUpdates) is wrong.
        BadCollapseId
        | BadExpirationDate
        | BadMessageId
        | BadPriority
        | BadTopic
        | DuplicateHeaders
        | InvalidPushType
        | MissingDeviceToken
        | MissingTopic
        | PayloadEmpty
        | TopicDisallowed
        | BadCertificate
        | BadCertificateEnvironment
        | Forbidden
        | InvalidProviderToken
        | MissingProviderToken
        | UnrelatedKeyIdInToken
        | BadEnvironmentKeyIdInToken
        | BadPath
        | MethodNotAllowed
        | PayloadTooLarge
        | TooManyProviderTokenUpdates => Outcome::Rejected { reason: name },
    };
    Answer::Done(outcome)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;
    use crate::testing::*;

    fn answer(status: u16, reason: &str) -> Answer {
        let body = format!(r#"{{"reason":"{reason}","timestamp":1700000000000}}"#);
        classify(status, body.as_bytes(), None)
    }

    fn invalid(reason: &str) -> Answer {
        Answer::Done(Outcome::InvalidToken {
            reason: reason.into(),
        })
    }

    fn retry(reason: &str) -> Answer {
        Answer::Done(Outcome::Retry {
            after: None,
            reason: reason.into(),
        })
    }

    fn rejected(reason: &str) -> Answer {
        Answer::Done(Outcome::Rejected {
            reason: reason.into(),
        })
    }

    #[test]
    fn apns_200_is_delivered() {
        assert_eq!(classify(200, b"", None), Answer::Done(Outcome::Delivered));
    }

    #[test]
    fn apns_410_unregistered_is_an_invalid_token() {
        assert_eq!(answer(410, "Unregistered"), invalid("Unregistered"));
    }

    #[test]
    fn apns_410_expired_token_is_an_invalid_token() {
        assert_eq!(answer(410, "ExpiredToken"), invalid("ExpiredToken"));
    }

    #[test]
    fn apns_400_bad_device_token_is_an_invalid_token() {
        assert_eq!(answer(400, "BadDeviceToken"), invalid("BadDeviceToken"));
    }

    #[test]
    fn apns_400_device_token_not_for_topic_is_an_invalid_token() {
        assert_eq!(
            answer(400, "DeviceTokenNotForTopic"),
            invalid("DeviceTokenNotForTopic")
        );
    }

    #[test]
    fn apns_429_too_many_requests_is_retried_without_delay() {
        assert_eq!(answer(429, "TooManyRequests"), retry("TooManyRequests"));
    }

    #[test]
    fn apns_500_internal_server_error_is_retried() {
        assert_eq!(
            answer(500, "InternalServerError"),
            retry("InternalServerError")
        );
    }

    #[test]
    fn apns_503_service_unavailable_is_retried() {
        assert_eq!(
            answer(503, "ServiceUnavailable"),
            retry("ServiceUnavailable")
        );
    }

    #[test]
    fn apns_503_shutdown_is_retried() {
        assert_eq!(answer(503, "Shutdown"), retry("Shutdown"));
    }

    #[test]
    fn apns_400_idle_timeout_is_retried() {
        assert_eq!(answer(400, "IdleTimeout"), retry("IdleTimeout"));
    }

    #[test]
    fn apns_retry_after_is_honoured_if_ever_sent() {
        let after = Some(Duration::from_secs(9));
        assert_eq!(
            classify(503, br#"{"reason":"ServiceUnavailable"}"#, after),
            Answer::Done(Outcome::Retry {
                after,
                reason: "ServiceUnavailable".into()
            })
        );
    }

    #[test]
    fn apns_403_expired_provider_token_refreshes_the_token() {
        assert_eq!(
            answer(403, "ExpiredProviderToken"),
            Answer::RefreshAuth("ExpiredProviderToken".into())
        );
    }

    #[test]
    fn apns_429_too_many_provider_token_updates_is_rejected() {
        assert_eq!(
            answer(429, "TooManyProviderTokenUpdates"),
            rejected("TooManyProviderTokenUpdates")
        );
    }

    #[test]
    fn apns_413_payload_too_large_is_rejected() {
        assert_eq!(answer(413, "PayloadTooLarge"), rejected("PayloadTooLarge"));
    }

    #[test]
    fn apns_403_invalid_provider_token_is_rejected() {
        assert_eq!(
            answer(403, "InvalidProviderToken"),
            rejected("InvalidProviderToken")
        );
    }

    #[test]
    fn apns_every_other_documented_reason_is_rejected_with_it() {
        let table = [
            (400, "BadCollapseId"),
            (400, "BadExpirationDate"),
            (400, "BadMessageId"),
            (400, "BadPriority"),
            (400, "BadTopic"),
            (400, "DuplicateHeaders"),
            (400, "InvalidPushType"),
            (400, "MissingDeviceToken"),
            (400, "MissingTopic"),
            (400, "PayloadEmpty"),
            (400, "TopicDisallowed"),
            (403, "BadCertificate"),
            (403, "BadCertificateEnvironment"),
            (403, "Forbidden"),
            (403, "InvalidProviderToken"),
            (403, "MissingProviderToken"),
            (403, "UnrelatedKeyIdInToken"),
            (403, "BadEnvironmentKeyIdInToken"),
            (404, "BadPath"),
            (405, "MethodNotAllowed"),
            (413, "PayloadTooLarge"),
            (429, "TooManyProviderTokenUpdates"),
        ];
        for (status, reason) in table {
            assert_eq!(
                answer(status, reason),
                rejected(reason),
                "{status} {reason}"
            );
        }
        let classified: HashSet<&str> = table.iter().map(|(_, r)| *r).collect();
        let others = Reason::ALL
            .iter()
            .filter(|r| !classified.contains(r.as_str()))
            .count();
        assert_eq!(others, 10, "the ten reasons with their own tests");
    }

    #[test]
    fn apns_reason_names_round_trip() {
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Reason::parse("unregistered"), None, "names are exact");
    }

    #[test]
    fn apns_unknown_4xx_reason_is_rejected_with_status_and_reason() {
        assert_eq!(answer(400, "SomethingNew"), rejected("400 SomethingNew"));
        assert_eq!(classify(404, b"not json", None), rejected("404"));
    }

    #[test]
    fn apns_unknown_5xx_is_retried() {
        assert_eq!(answer(502, "BadGateway"), retry("502 BadGateway"));
        assert_eq!(classify(504, b"<html>", None), retry("504"));
    }

    fn key() -> ProviderKey {
        ProviderKey::new(
            "IMPUSHTEAM",
            "IMPUSHKEY1",
            read_key("apns-test-key.p8").as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn provider_token_is_es256_with_kid_and_team_claims() {
        let token = key().token(Instant::now(), 1_700_000_000).unwrap();
        assert!(
            !format!("{token:?}").contains(&*token.jwt),
            "Debug shows 8 characters only"
        );
        let header = jsonwebtoken::decode_header(&*token.jwt).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("IMPUSHKEY1"));
        assert_eq!(header.typ, None, "Apple's header is {{alg, kid}}");
        let public = read_key("apns-test-key.pub.pem");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &*token.jwt,
            &DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(
            claims,
            serde_json::json!({"iss": "IMPUSHTEAM", "iat": 1_700_000_000})
        );
    }

    #[test]
    fn provider_token_is_reused_until_50_minutes_old() {
        let key = key();
        let t0 = Instant::now();
        let first = key.token(t0, 1000).unwrap();
        for minutes in [0, 1, 19, 20, 21, 49] {
            let at = t0 + Duration::from_secs(minutes * 60);
            assert_eq!(
                key.token(at, 1000 + minutes * 60).unwrap(),
                first,
                "{minutes} min"
            );
        }
        let later = key.token(t0 + ROTATE_AFTER, 4000).unwrap();
        assert_ne!(later, first);
        assert_eq!(later.issued, t0 + ROTATE_AFTER);
    }

    #[test]
    fn expired_provider_token_is_replaced_when_20_minutes_old() {
        let key = key();
        let t0 = Instant::now();
        let first = key.token(t0, 1000).unwrap();
        let at = t0 + MIN_REFRESH_INTERVAL;
        let fresh = key.expired(&first, at, 2200).unwrap().unwrap();
        assert_ne!(fresh, first);
        assert_eq!(
            key.token(at, 2200).unwrap(),
            fresh,
            "the fresh one is shared"
        );
        // That was not an early replacement: one early replacement is still allowed.
        let early = key
            .expired(&fresh, at + Duration::from_secs(60), 2260)
            .unwrap();
        assert!(early.is_some());
    }

    #[test]
    fn expired_provider_token_is_replaced_early_at_most_once_per_20_minutes() {
        let key = key();
        let t0 = Instant::now();
        let first = key.token(t0, 1000).unwrap();
        // Apple says a 1-minute-old token expired: its word wins, once.
        let second = key
            .expired(&first, t0 + Duration::from_secs(60), 1060)
            .unwrap()
            .unwrap();
        assert_ne!(second, first);
        // And again 5 minutes later: the clock is off, stop replacing.
        let at = t0 + Duration::from_secs(6 * 60);
        assert_eq!(key.expired(&second, at, 1360).unwrap(), None);
        assert_eq!(key.token(at, 1360).unwrap(), second);
        // 20 minutes after the early replacement the token is old enough again.
        let at = t0 + Duration::from_secs(60) + MIN_REFRESH_INTERVAL;
        assert!(key.expired(&second, at, 2260).unwrap().is_some());
    }

    #[test]
    fn a_replacement_made_within_the_same_second_has_a_later_iat() {
        let key = key();
        let t0 = Instant::now();
        let first = key.token(t0, 1000).unwrap();
        let fresh = key.expired(&first, t0, 1000).unwrap().unwrap();
        assert_eq!(fresh.iat, 1001);
        assert_ne!(
            fresh.jwt, first.jwt,
            "a deterministic ES256 signer gives the same token for the same iat"
        );
    }

    #[test]
    fn a_token_already_replaced_by_another_request_is_reused() {
        let key = key();
        let t0 = Instant::now();
        let first = key.token(t0, 1000).unwrap();
        let at = t0 + Duration::from_secs(30);
        let fresh = key.expired(&first, at, 1030).unwrap().unwrap();
        // A request that was in flight with `first` comes back expired too.
        assert_eq!(key.expired(&first, at, 1030).unwrap(), Some(fresh));
    }

    #[test]
    fn default_hosts_follow_the_environment() {
        let text = |environment: &str| {
            format!(
                "[[credentials]]\nbusiness_id = 11\nvendor = \"apns\"\nbundle_id = \"b\"\n\
                 environment = \"{environment}\"\n[credentials.apns]\nteam_id = \"T\"\n\
                 key_id = \"K\"\nprivate_key = {{ file = \"keys/apns-test-key.p8\" }}\n"
            )
        };
        let production = clients(&config_in(&local_dir(), &text("production"))).unwrap();
        assert_eq!(production[&11].base_url, PRODUCTION_URL);
        let sandbox = clients(&config_in(&local_dir(), &text("sandbox"))).unwrap();
        assert_eq!(sandbox[&11].base_url, SANDBOX_URL);
    }

    #[test]
    fn credentials_with_the_same_key_share_one_token() {
        let mut text = String::new();
        for id in [21, 22] {
            text.push_str(&format!(
                "[[credentials]]\nbusiness_id = {id}\nvendor = \"apns\"\nbundle_id = \"b{id}\"\n\
                 [credentials.apns]\nteam_id = \"IMPUSHTEAM\"\nkey_id = \"IMPUSHKEY1\"\n\
                 private_key = {{ file = \"keys/apns-test-key.p8\" }}\n"
            ));
        }
        let clients = clients(&config_in(&local_dir(), &text)).unwrap();
        let (Auth::Token(a), Auth::Token(b)) = (&clients[&21].auth, &clients[&22].auth) else {
            panic!("token auth expected");
        };
        assert!(Arc::ptr_eq(a, b));
    }

    /// The error of a one-credential config (business_id 9) with this `[credentials.apns]`.
    fn config_error(dir: &Path, apns: &str) -> String {
        let text = format!(
            "[[credentials]]\nbusiness_id = 9\nvendor = \"apns\"\nbundle_id = \"b\"\n\
             base_url = \"https://127.0.0.1:1\"\n{apns}"
        );
        match clients(&config_in(dir, &text)) {
            Ok(_) => panic!("accepted: {apns}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_names(err: &str, field: &str) {
        assert!(err.contains("credential 9"), "{err}");
        assert!(err.contains(&format!("`{field}`")), "{err}");
    }

    #[test]
    fn config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("apns-config");
        std::fs::write(
            dir.join("bad.p8"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("rsa.pem"),
            read_key("fcm-test-service-account.pub.pem"),
        )
        .unwrap();
        std::fs::write(dir.join("good.p8"), read_key("apns-test-key.p8")).unwrap();
        let cases = [
            ("", "apns"),
            (
                "[credentials.apns]\nteam_id = \"T\"\nkey_id = \"K\"\n",
                "apns.private_key",
            ),
            (
                "[credentials.apns]\nkey_id = \"K\"\nprivate_key = { file = \"good.p8\" }\n",
                "apns.team_id",
            ),
            (
                "[credentials.apns]\nteam_id = \"T\"\nprivate_key = { file = \"good.p8\" }\n",
                "apns.key_id",
            ),
            (
                "[credentials.apns]\nteam_id = \"T\"\nkey_id = \"K\"\nprivate_key = { file = \"missing.p8\" }\n",
                "apns.private_key",
            ),
            (
                "[credentials.apns]\nteam_id = \"T\"\nkey_id = \"K\"\nprivate_key = { file = \"bad.p8\" }\n",
                "apns.private_key",
            ),
            (
                "[credentials.apns]\nteam_id = \"T\"\nkey_id = \"K\"\nprivate_key = { file = \"rsa.pem\" }\n",
                "apns.private_key",
            ),
            (
                "[credentials.apns]\nteam_id = \"T\"\nkey_id = \"K\"\nprivate_key = { file = \"good.p8\" }\np12 = \"x.p12\"\n",
                "apns.p12",
            ),
            ("[credentials.apns]\np12 = \"missing.p12\"\n", "apns.p12"),
        ];
        for (apns, field) in cases {
            let err = config_error(&dir, apns);
            assert_names(&err, field);
            assert!(!err.contains("BEGIN"), "no key material in errors: {err}");
        }
    }

    #[test]
    fn a_different_key_under_the_same_ids_is_refused() {
        let dir = temp_dir("apns-same-ids");
        std::fs::write(dir.join("a.p8"), read_key("apns-test-key.p8")).unwrap();
        std::fs::write(dir.join("b.p8"), fixture("other-ec-key.p8")).unwrap();
        let mut text = String::new();
        for (id, file) in [(31, "a.p8"), (32, "b.p8")] {
            text.push_str(&format!(
                "[[credentials]]\nbusiness_id = {id}\nvendor = \"apns\"\nbundle_id = \"b\"\n\
                 [credentials.apns]\nteam_id = \"T\"\nkey_id = \"K\"\n\
                 private_key = {{ file = \"{file}\" }}\n"
            ));
        }
        let err = clients(&config_in(&dir, &text)).err().unwrap().to_string();
        assert!(
            err.contains("credential 32") && err.contains("credential 31"),
            "{err}"
        );
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap()
    }

    fn p12_config(dir: &Path, file: &str, password: &str, base_url: &str) -> Config {
        std::fs::write(dir.join("pw"), password).unwrap();
        config_in(
            dir,
            &format!(
                "[[credentials]]\nbusiness_id = 9\nvendor = \"apns\"\nbundle_id = \"b\"\n\
                 base_url = \"{base_url}\"\n[credentials.apns]\np12 = \"{file}\"\n\
                 p12_password = {{ file = \"pw\" }}\n"
            ),
        )
    }

    #[test]
    fn p12_certificates_become_a_tls_identity() {
        let dir = temp_dir("apns-p12");
        for file in ["apns-test-cert.p12", "apns-test-cert-legacy.p12"] {
            std::fs::write(dir.join(file), fixture(file)).unwrap();
            let clients = clients(&p12_config(
                &dir,
                file,
                "impush-test",
                "https://127.0.0.1:1",
            ))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
            // The fixture's certificate: notAfter=Oct 29 00:46:34 2126 GMT (see the fixtures README).
            assert_eq!(
                clients[&9].certificate_expiry_s(),
                Some(4_948_908_394),
                "{file}"
            );
        }
    }

    #[test]
    fn a_p12_with_the_wrong_password_is_a_config_error() {
        let dir = temp_dir("apns-p12-password");
        std::fs::write(dir.join("c.p12"), fixture("apns-test-cert.p12")).unwrap();
        let err = clients(&p12_config(&dir, "c.p12", "wrong", "https://127.0.0.1:1"))
            .err()
            .unwrap()
            .to_string();
        assert_names(&err, "apns.p12");
        assert!(err.contains("p12_password"), "{err}");
    }

    #[test]
    fn a_p12_needs_tls() {
        let dir = temp_dir("apns-p12-h2c");
        std::fs::write(dir.join("c.p12"), fixture("apns-test-cert.p12")).unwrap();
        let err = clients(&p12_config(
            &dir,
            "c.p12",
            "impush-test",
            "http://127.0.0.1:1",
        ))
        .err()
        .unwrap()
        .to_string();
        assert_names(&err, "apns.p12");
    }
}
