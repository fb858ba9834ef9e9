//! impush-sim: the phone vendors' real push APIs on loopback, for tests, the demo and the bench.
//!
//! One listener serves every vendor under its own prefix (`/apns`, `/fcm`, …), each a
//! "personality" module that checks requests the way that vendor does (authentication,
//! headers, body) and answers with that vendor's own success and error bodies, so pointing a
//! client at the real vendor is only a change of base URL and secrets. `/sim` is the control
//! API of the tests: what was delivered, faults to inject, auth to expire ([`control`]).
//!
//! Every personality has the same shape ([`Personality`]): a name, its routes, how it answers
//! an injected fault, and how the notification a device would show is read from its payload.
//!
//! `SimSettings::vendor_latency` holds every vendor answer for a round trip's time, as a
//! vendor across the internet would: a sender's throughput is then bound by how many
//! requests it keeps in flight, not by the simulator's speed on loopback.

mod control;
mod digest;
mod oem;
pub mod receipts;
mod stats;
mod tray;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use control::{Delivery, Fault, FaultError};
/// The vendors' sign hashes, for tests that sign by hand.
pub use digest::{md5_hex, sha256_hex};
pub use stats::{Percentiles, SENT_MS_MARKER, StatsReport, VendorReport};
pub use tray::TrayNotification;

/// An APNs provider-token key the simulator trusts (the public half of a `.p8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsKey {
    pub team_id: String,
    pub key_id: String,
    /// PEM of the P-256 public key (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
}

/// An FCM service account the simulator trusts (the public half of its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcmAccount {
    pub client_email: String,
    /// PEM of the RSA public key (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
}

/// A HarmonyOS Push Kit service account the simulator trusts (the public half of its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarmonyAccount {
    pub sub_account: String,
    pub key_id: String,
    /// The project it may send for.
    pub project_id: String,
    /// PEM of the RSA public key (`-----BEGIN PUBLIC KEY-----`).
    pub public_pem: String,
}

/// An OPPO app the simulator trusts: its AppKey (the credential's `app_id`) and MasterSecret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OppoApp {
    pub app_key: String,
    pub master_secret: String,
}

/// A vivo app the simulator trusts: the credential's `app_id`, its AppKey and AppSecret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VivoApp {
    pub app_id: String,
    pub app_key: String,
    pub app_secret: String,
}

/// An app the simulator trusts, read from a config credential with a
/// `[credentials.<vendor>]` app-secret section: its public id (Huawei AppId, Xiaomi AppID,
/// Meizu appId, TPNS AccessID…), its `app_key` (vivo AppKey, Honor OAuth client ID), its
/// secret (`app_secret`, else `master_secret`) and its package.
#[derive(Clone, PartialEq, Eq)]
pub struct OemApp {
    pub app_id: String,
    pub app_key: String,
    pub app_secret: String,
    pub package_name: String,
}

/// Shows the app, never its secret.
impl std::fmt::Debug for OemApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OemApp")
            .field("app_id", &self.app_id)
            .field("package_name", &self.package_name)
            .finish_non_exhaustive()
    }
}

/// What the simulators trust and how long what they issue lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSettings {
    pub apns_keys: Vec<ApnsKey>,
    pub fcm_accounts: Vec<FcmAccount>,
    /// HarmonyOS service accounts: the config's `[sim] harmony_accounts`.
    pub harmony_accounts: Vec<HarmonyAccount>,
    /// The apps of every vendor whose credentials have an app-secret section, by the
    /// vendor's lower-case name (`huawei`, `xiaomi`, `meizu`, `tpns`, …).
    pub oem_apps: BTreeMap<String, Vec<OemApp>>,
    /// Lifetime of the OAuth2 access tokens the FCM personality issues.
    pub fcm_token_lifetime: Duration,
    /// OPPO apps, from the config's OPPO credentials.
    pub oppo_apps: Vec<OppoApp>,
    /// vivo apps, from the config's vivo credentials.
    pub vivo_apps: Vec<VivoApp>,
    /// Lifetime of the OAuth2 access tokens the Huawei personality issues.
    pub huawei_token_lifetime: Duration,
    /// Keep every accepted push for `GET /sim/deliveries`; off, they are only counted in
    /// `GET /sim/stats`, so memory stays flat on long benchmark runs.
    pub record_deliveries: bool,
    /// How long every vendor request waits before it is handled (`impush-sim
    /// --latency-ms`): a vendor's round trip. Requests wait side by side; `/sim` does not.
    pub vendor_latency: Duration,
    /// Vendors that send delivery receipts ([`receipts`]).
    pub receipts: Vec<impush_config::SimReceipts>,
}

impl Default for SimSettings {
    fn default() -> SimSettings {
        SimSettings {
            apns_keys: Vec::new(),
            fcm_accounts: Vec::new(),
            harmony_accounts: Vec::new(),
            oem_apps: BTreeMap::new(),
            fcm_token_lifetime: Duration::from_secs(3600),
            oppo_apps: Vec::new(),
            vivo_apps: Vec::new(),
            huawei_token_lifetime: Duration::from_secs(3600),
            record_deliveries: true,
            vendor_latency: Duration::ZERO,
            receipts: Vec::new(),
        }
    }
}

impl SimSettings {
    /// The `[sim]` section of the config, with the public key files read (relative paths
    /// against the config's directory).
    pub fn from_config(config: &impush_config::Config) -> Result<SimSettings, SimError> {
        let read = |path: &Path| {
            let path = config.path(path);
            std::fs::read_to_string(&path).map_err(|source| SimError::ReadKey { path, source })
        };
        let apns_keys = config
            .sim
            .apns_keys
            .iter()
            .map(|key| {
                Ok(ApnsKey {
                    team_id: key.team_id.clone(),
                    key_id: key.key_id.clone(),
                    public_pem: read(&key.public_key)?,
                })
            })
            .collect::<Result<_, SimError>>()?;
        let fcm_accounts = config
            .sim
            .fcm_accounts
            .iter()
            .map(|account| {
                Ok(FcmAccount {
                    client_email: account.client_email.clone(),
                    public_pem: read(&account.public_key)?,
                })
            })
            .collect::<Result<_, SimError>>()?;
        let harmony_accounts = config
            .sim
            .harmony_accounts
            .iter()
            .map(|account| {
                Ok(HarmonyAccount {
                    sub_account: account.sub_account.clone(),
                    key_id: account.key_id.clone(),
                    project_id: account.project_id.clone(),
                    public_pem: read(&account.public_key)?,
                })
            })
            .collect::<Result<_, SimError>>()?;
        let oppo_apps = oem_credentials(config, |v| v.oppo.as_ref())
            .map(|(app_id, secrets, owner)| {
                Ok(OppoApp {
                    app_key: app_id,
                    master_secret: oem_secret(config, secrets.master_secret.as_ref(), &owner)?,
                })
            })
            .collect::<Result<_, SimError>>()?;
        let vivo_apps = oem_credentials(config, |v| v.vivo.as_ref())
            .map(|(app_id, secrets, owner)| {
                Ok(VivoApp {
                    app_id,
                    app_key: secrets.app_key.clone(),
                    app_secret: oem_secret(config, secrets.app_secret.as_ref(), &owner)?,
                })
            })
            .collect::<Result<_, SimError>>()?;
        Ok(SimSettings {
            apns_keys,
            fcm_accounts,
            harmony_accounts,
            oppo_apps,
            vivo_apps,
            oem_apps: oem_apps(config)?,
            receipts: config.sim.receipts.clone(),
            ..SimSettings::default()
        })
    }

    /// The apps of `vendor` (lower case) in [`SimSettings::oem_apps`].
    pub fn apps_of(&self, vendor: &str) -> &[OemApp] {
        self.oem_apps.get(vendor).map_or(&[], Vec::as_slice)
    }
}

/// The credentials with `vendor`'s secrets section, lowest business_id first: the public
/// `app_id`, the secrets, and a name for errors (`credential 5 oppo`).
fn oem_credentials<'a>(
    config: &'a impush_config::Config,
    vendor: impl Fn(&'a impush_config::VendorSettings) -> Option<&'a impush_config::OemSecrets>,
) -> impl Iterator<Item = (String, &'a impush_config::OemSecrets, String)> {
    let mut ids: Vec<u64> = config.vendors.keys().copied().collect();
    ids.sort_unstable();
    ids.into_iter().filter_map(move |id| {
        let secrets = vendor(config.vendors.get(&id)?)?;
        let app_id = config.credentials.get(&id)?.app_id.clone();
        Some((app_id, secrets, format!("credential {id}")))
    })
}

/// A secret of an OEM credential, resolved; missing or unreadable is an error naming it.
fn oem_secret(
    config: &impush_config::Config,
    secret: Option<&impush_config::SecretRef>,
    owner: &str,
) -> Result<String, SimError> {
    let secret = secret.ok_or_else(|| SimError::BadKey {
        owner: owner.to_owned(),
        message: "secret missing".into(),
    })?;
    config
        .secret(secret)
        .map(|s| s.expose().to_owned())
        .map_err(|e| SimError::BadKey {
            owner: owner.to_owned(),
            message: e.to_string(),
        })
}

/// The apps of every vendor the config has credentials with an app-secret section for
/// (`[credentials.<vendor>]`), their secret read, by business_id order.
fn oem_apps(config: &impush_config::Config) -> Result<BTreeMap<String, Vec<OemApp>>, SimError> {
    let mut ids: Vec<u64> = config.vendors.keys().copied().collect();
    ids.sort_unstable();
    let mut apps: BTreeMap<String, Vec<OemApp>> = BTreeMap::new();
    for business_id in ids {
        let (Some(settings), Some(profile)) = (
            config.vendors.get(&business_id),
            config.credentials.get(&business_id),
        ) else {
            continue;
        };
        for (vendor, secrets) in settings.oem_secrets() {
            let bad = |message: String| SimError::BadKey {
                owner: format!("{vendor} credential {business_id}"),
                message,
            };
            let reference = secrets
                .app_secret
                .as_ref()
                .or(secrets.master_secret.as_ref())
                .ok_or_else(|| bad("no `app_secret`".into()))?;
            let secret = config
                .secret(reference)
                .map_err(|e| bad(format!("`app_secret`: {e}")))?;
            apps.entry(vendor.to_owned()).or_default().push(OemApp {
                app_id: profile.app_id.clone(),
                app_key: secrets.app_key.clone(),
                app_secret: secret.expose().trim().to_owned(),
                package_name: profile.package_name.clone(),
            });
        }
    }
    Ok(apps)
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read key file {path}: {source}")]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{owner}: {message}")]
    BadKey { owner: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("server task failed: {0}")]
    Task(String),
}

/// The notification a device would show, read from a vendor payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shown {
    pub title: Option<String>,
    pub body: Option<String>,
    pub badge: Option<u64>,
    pub sound: Option<String>,
    pub ext: Option<String>,
}

/// The shape every vendor personality has.
pub(crate) trait Personality {
    /// The vendor's name in lower case, as `--vendor` and `/sim` write it; also its prefix.
    const NAME: &'static str;

    /// Its routes, under `/<NAME>`.
    fn routes() -> Router<Arc<Sim>>;

    /// The answer to a request an injected fault makes fail, in the vendor's own error shape.
    fn fault_response(fault: &control::FaultReply) -> Response;

    /// What a device would show for an accepted payload.
    fn shown(payload: &Value) -> Shown;

    /// The personality with what it trusts from `settings`.
    fn from_settings(settings: &SimSettings) -> Result<Self, SimError>
    where
        Self: Sized;
}

/// Declares each vendor's personality module and the simulator state holding one of each,
/// one `module::Type` per vendor: [`VENDORS`], [`Sim`], its constructor and the routes.
macro_rules! personalities {
    ($($module:ident :: $personality:ident),+ $(,)?) => {
        $(mod $module;)+

        /// The names of the vendors simulated here.
        pub(crate) const VENDORS: &[&str] = &[$(<$module::$personality as Personality>::NAME),+];

        /// The state of one running simulator, shared by every request.
        pub(crate) struct Sim {
            pub control: control::Control,
            $(pub $module: $module::$personality,)+
            /// Turns true when the server shuts down, so hanging (delayed) answers end at
            /// once.
            pub shutdown: watch::Receiver<bool>,
            pub vendor_latency: Duration,
        }

        impl Sim {
            fn new(settings: &SimSettings, shutdown: watch::Receiver<bool>) -> Result<Sim, SimError> {
                Ok(Sim {
                    control: control::Control::new(settings.record_deliveries)
                        .with_receipts(&settings.receipts),
                    $($module: <$module::$personality as Personality>::from_settings(settings)?,)+
                    shutdown,
                    vendor_latency: settings.vendor_latency,
                })
            }
        }

        /// Every personality's routes.
        fn vendor_routes() -> Router<Arc<Sim>> {
            Router::new()$(.merge(<$module::$personality as Personality>::routes()))+
        }
    };
}

personalities! {
    apns::Apns,
    fcm::Fcm,
    oppo::Oppo,
    vivo::Vivo,
    huawei::Huawei,
    xiaomi::Xiaomi,
    meizu::Meizu,
    tpns::Tpns,
    honor::Honor,
    harmony::Harmony,
}

fn router(sim: Arc<Sim>) -> Router {
    let vendors = vendor_routes().route_layer(middleware::from_fn_with_state(
        Arc::clone(&sim),
        answer_accepted_late,
    ));
    let vendors = if sim.vendor_latency.is_zero() {
        vendors
    } else {
        vendors.route_layer(middleware::from_fn_with_state(
            Arc::clone(&sim),
            vendor_round_trip,
        ))
    };
    vendors
        .merge(control::routes())
        .merge(receipts::routes())
        .with_state(sim)
}

/// Holds a vendor request for the simulated round trip before handling it. Each request
/// waits on its own timer, so requests in flight overlap; a stopping server cuts it short.
async fn vendor_round_trip(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    let mut shutdown = sim.shutdown.clone();
    tokio::select! {
        () = tokio::time::sleep(sim.vendor_latency) => {}
        _ = shutdown.wait_for(|stopped| *stopped) => {}
    }
    next.run(request).await
}

/// The largest vendor request body read while an `accepted` fault waits.
const MAX_HELD_BODY_BYTES: usize = 16 << 20;

/// An `accepted` fault ([`Fault`]): the request is handled as usual, so the vendor accepts
/// and records the push, and only a successful answer is held back for the fault's delay,
/// past the client's timeout. Bodies are read here only while such a fault waits for the
/// request's vendor; a fault's token matches a request naming it in its path or body.
async fn answer_accepted_late(
    State(sim): State<Arc<Sim>>,
    request: Request,
    next: Next,
) -> Response {
    let vendor = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .and_then(|first| VENDORS.iter().find(|v| **v == first));
    let Some(vendor) = vendor.filter(|v| sim.control.has_accepted_fault(v)) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_HELD_BODY_BYTES).await else {
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path().to_owned();
    let is_form = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let response = next
        .run(Request::from_parts(
            parts,
            axum::body::Body::from(bytes.clone()),
        ))
        .await;
    if !response.status().is_success() {
        return response;
    }
    let named = NamedTokens::of(&path, &bytes, is_form);
    if let Some(delay) = sim.control.hold_answer(vendor, |token| named.names(token)) {
        tracing::debug!(vendor, ?delay, "accepted; answering late");
        let mut shutdown = sim.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => {}
        }
    }
    response
}

/// What a request says, for matching a fault's token: its path and body, and a form body's
/// values decoded as well, since a token with `+`, `/` or `=` (Xiaomi's base64 regids)
/// travels percent-encoded in OPPO's, vivo's, Meizu's and Xiaomi's forms.
struct NamedTokens<'a> {
    path: &'a str,
    body: &'a [u8],
    form_values: Vec<String>,
}

impl<'a> NamedTokens<'a> {
    fn of(path: &'a str, body: &'a [u8], is_form: bool) -> NamedTokens<'a> {
        let form_values = if is_form {
            form_urlencoded::parse(body)
                .map(|(_, value)| value.into_owned())
                .collect()
        } else {
            Vec::new()
        };
        NamedTokens {
            path,
            body,
            form_values,
        }
    }

    fn names(&self, token: &str) -> bool {
        self.path.contains(token)
            || self
                .body
                .windows(token.len().max(1))
                .any(|window| window == token.as_bytes())
            || self.form_values.iter().any(|value| value.contains(token))
    }
}

/// Serves the simulators on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    settings: SimSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SimError> {
    let (stop, stopped) = watch::channel(false);
    let sim = Arc::new(Sim::new(&settings, stopped)?);
    serve_sim(listener, sim, async move {
        shutdown.await;
        stop.send_replace(true);
    })
    .await
}

async fn serve_sim(
    listener: TcpListener,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SimError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, vendors = ?VENDORS, "impush-sim listening");
    }
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(SimError::Serve)
}

/// Starts the simulators on a free loopback port, in the background.
pub async fn spawn(settings: SimSettings) -> Result<RunningSim, SimError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| SimError::Bind {
            addr: "127.0.0.1:0".into(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: "127.0.0.1:0".into(),
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let sim = Arc::new(Sim::new(&settings, stopped.clone())?);
    let mut signal = stopped;
    let task = tokio::spawn(serve_sim(listener, Arc::clone(&sim), async move {
        // An error means the sender is gone, which is a stop too.
        let _ = signal.wait_for(|stopped| *stopped).await;
    }));
    Ok(RunningSim {
        addr,
        sim,
        stop,
        task: Some(task),
    })
}

/// Simulators running in the background ([`spawn`]); they stop when this is dropped or
/// [`RunningSim::shutdown`] is called.
pub struct RunningSim {
    pub addr: SocketAddr,
    sim: Arc<Sim>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), SimError>>>,
}

impl RunningSim {
    /// The base URL of one vendor's personality (`http://127.0.0.1:PORT/apns`), what a
    /// credential's `base_url` points at.
    pub fn base_url(&self, vendor: &str) -> String {
        format!("http://{}/{vendor}", self.addr)
    }

    /// The OAuth2 token URI of the FCM personality (a service account's `token_uri`).
    pub fn fcm_token_uri(&self) -> String {
        format!("http://{}/fcm/token", self.addr)
    }

    /// What was accepted so far, oldest first, of one vendor or all.
    pub fn deliveries(&self, vendor: Option<&str>) -> Vec<Delivery> {
        self.sim.control.deliveries(vendor, None)
    }

    /// What the devices' trays show (`GET /sim/notifications`).
    pub fn notifications(&self, vendor: Option<&str>) -> Vec<TrayNotification> {
        self.sim.control.notifications(vendor, None)
    }

    pub fn clear_deliveries(&self) {
        self.sim.control.clear_deliveries();
    }

    /// Delivery counts and latency per vendor (`GET /sim/stats`).
    pub fn stats(&self) -> StatsReport {
        self.sim.control.stats()
    }

    /// Makes the next `fault.times` matching requests fail (`POST /sim/faults`).
    pub fn inject_fault(&self, fault: Fault) -> Result<(), FaultError> {
        self.sim.control.add_fault(fault)
    }

    pub fn clear_faults(&self) {
        self.sim.control.clear_faults();
    }

    /// Every access token and provider token issued so far counts as expired.
    pub fn expire_auth(&self) {
        self.sim.control.expire_auth();
    }

    /// Stops accepting, lets requests in flight finish and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.stop.send_replace(true);
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| SimError::Task(e.to_string()))
                .and_then(|result| result),
            None => Ok(()),
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::body::Body;
    use tokio::time::Instant;
    use tower::ServiceExt;

    #[test]
    fn a_fault_token_matches_a_request_naming_it_in_path_body_or_url_encoded_form() {
        let regid = "abc+def/ghi=";
        let form = b"registration_id=abc%2Bdef%2Fghi%3D%2Cother&title=T";
        // (path, body, is form, names the regid?)
        let table: [(&str, &[u8], bool, bool); 5] = [
            ("/xiaomi/v3/message/regid", form, true, true),
            ("/xiaomi/v3/message/regid", form, false, false),
            ("/apns/3/device/abc+def/ghi=", b"", false, true),
            ("/fcm/v1/send", br#"{"token":"abc+def/ghi="}"#, false, true),
            (
                "/xiaomi/v3/message/regid",
                b"registration_id=zzz",
                true,
                false,
            ),
        ];
        for (path, body, is_form, names) in table {
            let named = NamedTokens::of(path, body, is_form);
            assert_eq!(named.names(regid), names, "{path} {body:?}");
        }
    }

    /// When the answer to `GET uri` came, on the (paused) clock.
    async fn answered_at(app: Router, uri: String) -> (String, Instant) {
        let request = Request::get(&uri).body(Body::empty()).unwrap();
        app.oneshot(request).await.unwrap();
        (uri, Instant::now())
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn every_vendor_answer_waits_the_latency_side_by_side_and_sim_answers_at_once() {
        let latency = Duration::from_millis(40);
        let (_stop, stopped) = watch::channel(false);
        let settings = SimSettings {
            vendor_latency: latency,
            ..SimSettings::default()
        };
        let app = router(Arc::new(Sim::new(&settings, stopped).unwrap()));

        // One request to every vendor and three to APNs, all at once: if one waited for
        // another, the last would answer several round trips after the start.
        let started = Instant::now();
        let mut requests = tokio::task::JoinSet::new();
        let uris = VENDORS
            .iter()
            .map(|vendor| format!("/{vendor}/any"))
            .chain((0..3).map(|i| format!("/apns/3/device/{i}")));
        for uri in uris {
            requests.spawn(answered_at(app.clone(), uri));
        }
        let control = answered_at(app.clone(), "/sim/stats".into()).await;
        assert_eq!(control.1, started, "the control API is not delayed");
        let mut answers = 0;
        while let Some(answer) = requests.join_next().await {
            let (uri, at) = answer.unwrap();
            assert_eq!(at - started, latency, "{uri} answered after one round trip");
            answers += 1;
        }
        assert_eq!(answers, VENDORS.len() + 3);
    }

    #[test]
    fn every_vendor_has_a_personality() {
        let mut simulated = VENDORS.to_vec();
        simulated.sort_unstable();
        let mut vendors: Vec<&str> = impush_core::vendor::ALL
            .iter()
            .map(|v| impush_core::vendor::name(*v))
            .collect();
        vendors.sort_unstable();
        assert_eq!(
            simulated, vendors,
            "a vendor of impush_core::vendor::ALL has no simulator personality"
        );
    }

    #[tokio::test]
    async fn every_personality_is_built_from_the_local_stack_config() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local");
        let config = impush_config::Config::load(&dir.join("impush.toml")).unwrap();
        let settings = SimSettings::from_config(&config).unwrap();
        let (_stop, stopped) = watch::channel(false);
        Sim::new(&settings, stopped).unwrap();
        for vendor in ["huawei", "xiaomi", "meizu", "tpns"] {
            assert!(!settings.apps_of(vendor).is_empty(), "{vendor}");
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn without_latency_vendors_answer_at_once() {
        let (_stop, stopped) = watch::channel(false);
        let app = router(Arc::new(
            Sim::new(&SimSettings::default(), stopped).unwrap(),
        ));
        let started = Instant::now();
        let (_, at) = answered_at(app, "/apns/3/device/x".into()).await;
        assert_eq!(at, started);
    }
}
