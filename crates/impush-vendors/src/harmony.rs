//! HarmonyOS NEXT Push Kit client (Huawei's scenario-based REST API v3): a service-account
//! JWT as the bearer, batch sends of up to 1000 tokens, and the classification of every
//! Push Kit v3 result code.
//!
//! Sources: "Generating a JWT Based on a Service Account",
//! https://developer.huawei.com/consumer/cn/doc/harmonyos-guides/push-jwt-token; "Request
//! Body Structure", https://developer.huawei.com/consumer/en/doc/harmonyos-references/push-scenariozed-api-request-struct;
//! "Response Parameters" with the service response codes,
//! https://developer.huawei.com/consumer/en/doc/doccenter-references/api/push-scenariozed-api-response/.
//!
//! - **Endpoint**: `base_url` + the request's `/v3/<project_id>/messages:send` (empty
//!   `base_url`: `https://push-api.cloud.huawei.com`) with its `push-type` header, the JSON
//!   body as `impush-core` built it, and `Authorization: Bearer <JWT>` added here.
//! - **Auth**: no token exchange. The JWT itself is the bearer: header
//!   `{"kid": key_id, "typ": "JWT", "alg": "PS256"}` (RSASSA-PSS with SHA-256), claims
//!   `{"iss": sub_account, "aud": "https://oauth-login.cloud.huawei.com/oauth2/v3/token",
//!   "iat", "exp": iat + 3600}`, signed with the service-account key file's `private_key`
//!   (`[credentials.harmony] service_account`). Huawei advises a 3600 s JWT reused while
//!   valid, and refuses one valid for more than a day (`80300036`): one JWT per service
//!   account is kept and replaced 5 minutes before it expires.
//! - **`80200005` (JWT expired) and `80200001` (authentication error)**, or HTTP 401 without
//!   a code: a new JWT is signed (its `iat` after the refused one's) and the request sent
//!   once more through the shared "refresh once, then resend" step (`crate::auth`); a
//!   second refusal is `Rejected` (a wrong key, key id or project).
//! - **Answers** `{"code","msg","requestId"}`, classified on `code`, never on `msg`:
//!
//! | code | outcome |
//! |---|---|
//! | `80000000` | every token `Delivered` |
//! | `80100000` partial success | tokens listed as illegal in `msg` `InvalidToken`, the others `Delivered` |
//! | `80300007` all tokens invalid | every token `InvalidToken` |
//! | `80200001`, `80200005` | sign a new JWT, send once more |
//! | `80300029` test-message rate limit, `81000001` internal error | `Retry` |
//! | `80100001`, `80100003`, `80100004`, `80100022`, `80300002`, `80300008`, `80300010`, `80300030`, `80300036`, `80300037` | `Rejected` |
//! | any other code | by HTTP status: 401 new JWT; 429, 5xx `Retry` (503 is Push Kit's flow control); else `Rejected` |
//!
//! `Retry` keeps the answer's `Retry-After` when there is one. [unverified]: the shape of
//! the `80100000` details (Huawei's page shows the example collapsed); they are read as a
//! JSON string in `msg` with `illegal_tokens` (or `illegalTokens`), as Push Kit v1 answers.
//! `80300007` is Huawei's "all the tokens are invalid", whose causes also include a
//! project mismatch; impush prunes on it as Huawei's page advises re-registering the token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use impush_config::Config;
use impush_core::{CredentialProfile, PushTarget, Vendor, VendorRequest};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthFailure, AuthSource};
use crate::http;
use crate::oem::{self, Answer, Bearer, BearerSend, Reply};
use crate::util::short_token;
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://push-api.cloud.huawei.com";
/// Tokens per second per sender process by default: Push Kit's flow control, as Huawei's.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(3_000);
/// The JWT's `aud`, fixed by Huawei.
pub(crate) const AUDIENCE: &str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token";
/// How long a JWT is valid (`exp - iat`), Huawei's advice.
const JWT_LIFETIME_S: u64 = 3600;
/// A JWT is replaced this long before it expires.
const REFRESH_MARGIN_S: u64 = 5 * 60;

/// One HarmonyOS credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    auth: Arc<JwtSigner>,
}

/// The fields of Huawei's service-account key file impush uses.
#[derive(Deserialize)]
struct ServiceAccount {
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    sub_account: String,
    #[serde(default)]
    private_key: String,
}

/// Clients for every HarmonyOS credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    let mut signers = HashMap::new();
    crate::build_clients(config, Vendor::Harmony, |profile| {
        client(config, profile, &mut signers)
    })
}

fn client(
    config: &Config,
    profile: &CredentialProfile,
    signers: &mut HashMap<(String, String), Arc<JwtSigner>>,
) -> Result<Client, ClientError> {
    let business_id = profile.business_id;
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let (settings, base_url) = http::settings_and_base_url(config, business_id, DEFAULT_BASE_URL)?;
    let project_id = profile.project_id.trim();
    if project_id.is_empty() {
        return Err(fail(
            "project_id",
            "missing: the Push Kit project id is in the send URL".into(),
        ));
    }
    let secrets = settings.harmony.as_ref().ok_or_else(|| {
        fail(
            "harmony",
            "missing: a HarmonyOS credential needs [credentials.harmony] with \
             `service_account`"
                .into(),
        )
    })?;
    let json = config
        .secret(&secrets.service_account)
        .map_err(|e| fail("harmony.service_account", e.to_string()))?;
    let account: ServiceAccount = serde_json::from_str(json.expose()).map_err(|e| {
        fail(
            "harmony.service_account",
            format!("not a service-account key file: {e}"),
        )
    })?;
    for (field, value) in [
        ("harmony.service_account.key_id", &account.key_id),
        ("harmony.service_account.sub_account", &account.sub_account),
        ("harmony.service_account.private_key", &account.private_key),
    ] {
        if value.trim().is_empty() {
            return Err(fail(field, "missing from the key file".into()));
        }
    }
    if !account.project_id.is_empty() && account.project_id != project_id {
        return Err(fail(
            "harmony.service_account.project_id",
            format!(
                "{:?} is not the credential's project_id",
                account.project_id
            ),
        ));
    }
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    let id = (account.sub_account.clone(), account.key_id.clone());
    let auth = match signers.get(&id) {
        Some(signer) => Arc::clone(signer),
        None => {
            let signer = JwtSigner::new(&account)
                .map_err(|m| fail("harmony.service_account.private_key", m))?;
            let signer = Arc::new(signer);
            signers.insert(id, Arc::clone(&signer));
            signer
        }
    };
    Ok(Client {
        business_id,
        base_url,
        http,
        auth,
    })
}

impl Client {
    /// Sends one request for 1–1000 tokens.
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let send = BearerSend {
            vendor: "harmony",
            business_id: self.business_id,
            http: &self.http,
            url: format!("{}{}", self.base_url, request.path),
            content_type: "application/json",
            stamp: oem::no_stamp,
            classify,
        };
        send.send(&*self.auth, request, targets).await
    }
}

/// One service account's signing key and its current JWT.
pub(crate) struct JwtSigner {
    sub_account: String,
    key_id: String,
    key: EncodingKey,
    cache: tokio::sync::Mutex<Option<Jwt>>,
}

#[derive(Clone, PartialEq)]
pub(crate) struct Jwt {
    pub value: Arc<str>,
    pub iat: u64,
}

impl Bearer for Jwt {
    fn bearer(&self) -> &str {
        &self.value
    }
}

/// Shows the first 8 characters of the JWT only.
impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("value", &format_args!("{}…", short_token(&self.value)))
            .field("iat", &self.iat)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'static str,
    exp: u64,
    iat: u64,
    iss: &'a str,
}

impl JwtSigner {
    /// Reads the account's RSA key and checks that it signs PS256.
    fn new(account: &ServiceAccount) -> Result<JwtSigner, String> {
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| format!("not an RSA private key PEM: {e}"))?;
        let signer = JwtSigner {
            sub_account: account.sub_account.clone(),
            key_id: account.key_id.clone(),
            key,
            cache: tokio::sync::Mutex::new(None),
        };
        signer
            .sign(0)
            .map_err(|e| format!("cannot sign PS256 with this key: {e}"))?;
        Ok(signer)
    }

    /// A JWT issued at `iat`.
    pub(crate) fn sign(&self, iat: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::PS256);
        header.kid = Some(self.key_id.clone());
        header.typ = Some("JWT".into());
        let claims = Claims {
            aud: AUDIENCE,
            exp: iat + JWT_LIFETIME_S,
            iat,
            iss: &self.sub_account,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }

    /// The current JWT, or a new one when there is none or it is within 5 minutes of
    /// expiring.
    pub(crate) async fn token(&self) -> Result<Jwt, AuthFailure> {
        let mut cache = self.cache.lock().await;
        let now = http::unix_now();
        if let Some(jwt) = cache.as_ref()
            && now < jwt.iat + JWT_LIFETIME_S - REFRESH_MARGIN_S
        {
            return Ok(jwt.clone());
        }
        let jwt = self.issue(now)?;
        *cache = Some(jwt.clone());
        Ok(jwt)
    }

    /// Push Kit refused `used`: a new JWT, unless another request already made one.
    pub(crate) async fn refused(&self, used: &Jwt) -> Result<Jwt, AuthFailure> {
        let mut cache = self.cache.lock().await;
        if let Some(jwt) = cache.as_ref()
            && jwt.value != used.value
        {
            return Ok(jwt.clone());
        }
        // Issued after the refused one, even within the same second.
        let jwt = self.issue(http::unix_now().max(used.iat + 1))?;
        *cache = Some(jwt.clone());
        Ok(jwt)
    }

    fn issue(&self, iat: u64) -> Result<Jwt, AuthFailure> {
        let value = self.sign(iat).map_err(|e| AuthFailure {
            status: 0,
            outcome: Outcome::Rejected {
                reason: format!("auth: cannot sign the JWT: {e}"),
            },
        })?;
        tracing::debug!(sub_account = %self.sub_account, iat, "harmony: new JWT");
        Ok(Jwt {
            value: value.into(),
            iat,
        })
    }
}

/// The JWT plugs into the shared "refresh once, then resend" step: a refused JWT is
/// replaced by a newly signed one.
impl AuthSource for JwtSigner {
    type Token = Jwt;

    async fn current(&self) -> Result<Jwt, AuthFailure> {
        self.token().await
    }

    async fn refused(&self, used: &Jwt) -> Result<Option<Jwt>, AuthFailure> {
        JwtSigner::refused(self, used).await.map(Some)
    }
}

/// A Push Kit v3 answer for `targets`: the `code` decides (string or number), else the
/// HTTP status.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    targets: &[PushTarget],
) -> Answer {
    let reply = Reply::read(status, body, retry_after, targets);
    match reply.code.as_str() {
        "80000000" => reply.all(Outcome::Delivered),
        "80100000" => reply.partial_success("harmony"),
        "80300007" => reply.all_invalid(),
        "80200001" | "80200005" => reply.refresh_auth(),
        "80300029" | "81000001" => reply.retry(),
        "80100001" | "80100003" | "80100004" | "80100022" | "80300002" | "80300008"
        | "80300010" | "80300030" | "80300036" | "80300037" => reply.rejected(),
        _ => reply.by_status(),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::*;

    fn answer(status: u16, code: &str) -> Answer {
        let body = json!({"code": code, "msg": "whatever", "requestId": "1"}).to_string();
        classify(status, body.as_bytes(), None, &targets(&["a", "b"]))
    }

    fn both(outcome: Outcome) -> Answer {
        Answer::Done(vec![outcome.clone(), outcome])
    }

    fn local_client() -> Client {
        clients(&local_config()).unwrap().remove(&10).unwrap()
    }

    #[test]
    fn harmony_80000000_delivers_every_token() {
        assert_eq!(answer(200, "80000000"), both(Outcome::Delivered));
    }

    #[test]
    fn harmony_80100000_splits_illegal_tokens_from_delivered_ones() {
        for key in ["illegal_tokens", "illegalTokens"] {
            let msg = json!({"success": 2, "failure": 1, key: ["b"]}).to_string();
            let body = json!({"code": "80100000", "msg": msg, "requestId": "1"}).to_string();
            let answer = classify(200, body.as_bytes(), None, &targets(&["a", "b", "c"]));
            let invalid = Outcome::InvalidToken {
                reason: "80100000 illegal_token".into(),
            };
            assert_eq!(
                answer,
                Answer::Done(vec![Outcome::Delivered, invalid, Outcome::Delivered]),
                "{key}"
            );
        }
    }

    #[test]
    fn harmony_80300007_makes_every_token_invalid() {
        assert_eq!(
            answer(400, "80300007"),
            both(Outcome::InvalidToken {
                reason: "80300007".into()
            })
        );
    }

    #[test]
    fn harmony_jwt_expired_or_refused_signs_a_new_jwt() {
        for code in ["80200001", "80200005"] {
            assert_eq!(answer(401, code), Answer::RefreshAuth(code.into()));
        }
        assert_eq!(
            classify(401, b"", None, &targets(&["a"])),
            Answer::RefreshAuth("401".into())
        );
    }

    #[test]
    fn harmony_flow_control_and_internal_errors_are_retried_after_retry_after() {
        let after = Some(Duration::from_secs(9));
        for status in [429, 502, 503] {
            assert_eq!(
                classify(status, b"busy", after, &targets(&["a"])),
                Answer::Done(vec![Outcome::Retry {
                    after,
                    reason: status.to_string()
                }])
            );
        }
        for code in ["80300029", "81000001"] {
            assert_eq!(
                answer(500, code),
                both(Outcome::Retry {
                    after: None,
                    reason: code.into()
                })
            );
        }
    }

    #[test]
    fn harmony_request_and_configuration_errors_are_rejected() {
        for code in [
            "80100001", "80100003", "80100004", "80100022", "80300002", "80300008", "80300010",
            "80300030", "80300036", "80300037",
        ] {
            assert_eq!(
                answer(400, code),
                both(Outcome::Rejected {
                    reason: code.into()
                }),
                "{code}"
            );
        }
        assert_eq!(
            answer(400, "89999999"),
            both(Outcome::Rejected {
                reason: "400 89999999".into()
            })
        );
    }

    #[test]
    fn the_jwt_is_ps256_with_kid_iss_sub_account_and_huawei_audience() {
        let client = local_client();
        let jwt = client.auth.sign(1_700_000_000).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::PS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let key_id = header.kid.unwrap();
        let public =
            std::fs::read(local_dir().join("keys/harmony-test-service-account.pub.pem")).unwrap();
        let mut validation = Validation::new(Algorithm::PS256);
        validation.validate_exp = false;
        validation.set_audience(&[AUDIENCE]);
        let claims = jsonwebtoken::decode::<Value>(
            &jwt,
            &DecodingKey::from_rsa_pem(&public).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(
            claims,
            json!({"aud": AUDIENCE, "iss": client.auth.sub_account, "iat": 1_700_000_000, "exp": 1_700_003_600})
        );
        assert_eq!(key_id, client.auth.key_id);
    }

    #[tokio::test]
    async fn the_jwt_is_reused_and_a_refused_one_is_replaced_by_a_later_one() {
        let client = local_client();
        let first = client.auth.token().await.unwrap();
        assert_eq!(client.auth.token().await.unwrap(), first);
        let fresh = client.auth.refused(&first).await.unwrap();
        assert_ne!(fresh.value, first.value);
        assert!(fresh.iat > first.iat);
        assert_eq!(
            client.auth.refused(&first).await.unwrap(),
            fresh,
            "a second refusal of the old JWT takes the new one"
        );
    }

    #[test]
    fn config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("harmony-config");
        let account =
            std::fs::read_to_string(local_dir().join("keys/harmony-test-service-account.json"))
                .unwrap();
        let mut without_key: Value = serde_json::from_str(&account).unwrap();
        without_key["private_key"] = json!("");
        std::fs::write(dir.join("no-key.json"), without_key.to_string()).unwrap();
        let mut bad_key = without_key.clone();
        bad_key["private_key"] =
            json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        std::fs::write(dir.join("bad-key.json"), bad_key.to_string()).unwrap();
        std::fs::write(dir.join("account.json"), &account).unwrap();
        std::fs::write(dir.join("junk.json"), "not json").unwrap();
        let project: Value = serde_json::from_str(&account).unwrap();
        let project = project["project_id"].as_str().unwrap().to_owned();
        let cases = [
            (project.as_str(), "", "harmony"),
            (
                project.as_str(),
                "[credentials.harmony]\nservice_account = { file = \"junk.json\" }\n",
                "harmony.service_account",
            ),
            (
                project.as_str(),
                "[credentials.harmony]\nservice_account = { file = \"no-key.json\" }\n",
                "harmony.service_account.private_key",
            ),
            (
                project.as_str(),
                "[credentials.harmony]\nservice_account = { file = \"bad-key.json\" }\n",
                "harmony.service_account.private_key",
            ),
            (
                "999",
                "[credentials.harmony]\nservice_account = { file = \"account.json\" }\n",
                "harmony.service_account.project_id",
            ),
        ];
        for (project_id, rest, field) in cases {
            let text = format!(
                "[[credentials]]\nbusiness_id = 10\nvendor = \"harmony\"\nproject_id = \"{project_id}\"\n{rest}"
            );
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {rest}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 10"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
            assert!(
                !err.contains("BEGIN PRIVATE KEY"),
                "no key in errors: {err}"
            );
        }
    }
}
