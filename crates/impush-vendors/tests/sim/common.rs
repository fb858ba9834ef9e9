//! Shared setup: the local stack's config (`deploy/local/impush.toml` and its test keys)
//! with every base URL pointed at a simulator spawned on a free port.

use std::path::Path;
use std::time::Duration;

use impush_config::Config;
use impush_core::{Notification, PushTarget, Vendor, build_payload};
use impush_sim::{Fault, RunningSim, SimSettings};
use impush_vendors::{SendResult, VendorClients};

pub const APNS: u64 = 1;
pub const FCM: u64 = 2;
pub const OPPO: u64 = 5;
pub const VIVO: u64 = 6;

pub struct Stack {
    pub sim: RunningSim,
    pub config: Config,
}

impl Stack {
    /// The simulator trusting the local stack's keys, and a config pointed at it.
    pub async fn start() -> Stack {
        Stack::start_with(|_| {}, |_| {}).await
    }

    /// Like [`Stack::start`], with the simulator's settings and the config changed first.
    pub async fn start_with(
        sim: impl FnOnce(&mut SimSettings),
        config: impl FnOnce(&mut Config),
    ) -> Stack {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local");
        let mut c =
            Config::parse(impush_config::LOCAL_STACK_TOML, "deploy/local/impush.toml").unwrap();
        c.base_dir = dir;
        let mut settings = SimSettings::from_config(&c).unwrap();
        sim(&mut settings);
        let running = impush_sim::spawn(settings).await.unwrap();
        for (business_id, vendor) in [(APNS, "apns"), (FCM, "fcm")] {
            c.vendors.get_mut(&business_id).unwrap().base_url = running.base_url(vendor);
        }
        let fcm = c.vendors.get_mut(&FCM).unwrap().fcm.as_mut().unwrap();
        fcm.token_uri = Some(running.fcm_token_uri());
        config(&mut c);
        Stack {
            sim: running,
            config: c,
        }
    }

    pub fn clients(&self, vendor: Vendor) -> VendorClients {
        VendorClients::from_config(&self.config, vendor).unwrap()
    }

    /// Sends the sample notification to `token` with credential `business_id`.
    pub async fn send(&self, clients: &VendorClients, business_id: u64, token: &str) -> SendResult {
        let targets = [target(token)];
        let request = build_payload(
            &notification(),
            &self.config.credentials[&business_id],
            &targets,
        )
        .unwrap();
        clients.send(business_id, &request, &targets).await
    }

    /// The simulator's records of `vendor` for `token`.
    pub fn deliveries_to(&self, vendor: &str, token: &str) -> usize {
        self.sim
            .deliveries(Some(vendor))
            .iter()
            .filter(|d| d.token == token)
            .count()
    }

    /// Like [`Stack::start`], with the OEM credential `business_id` pointed at the
    /// simulator's `vendor` personality too, after `config` changed the config.
    pub async fn start_oem(
        business_id: u64,
        vendor: &str,
        sim: impl FnOnce(&mut SimSettings),
        config: impl FnOnce(&mut Config),
    ) -> Stack {
        let mut stack = Stack::start_with(sim, |_| {}).await;
        stack.config.vendors.get_mut(&business_id).unwrap().base_url = stack.sim.base_url(vendor);
        config(&mut stack.config);
        stack
    }

    /// Sends the sample notification to every token at once (one batch request).
    pub async fn send_many(
        &self,
        clients: &VendorClients,
        business_id: u64,
        tokens: &[String],
    ) -> SendResult {
        let targets: Vec<PushTarget> = tokens.iter().map(|t| target(t)).collect();
        let request = build_payload(
            &notification(),
            &self.config.credentials[&business_id],
            &targets,
        )
        .unwrap();
        clients.send(business_id, &request, &targets).await
    }

    /// Sends `notification` to `token` with credential `business_id`.
    pub async fn send_notification(
        &self,
        clients: &VendorClients,
        business_id: u64,
        notification: &Notification,
        token: &str,
    ) -> SendResult {
        let targets = [target(token)];
        let credential = &self.config.credentials[&business_id];
        let request = build_payload(notification, credential, &targets).unwrap();
        clients.send(business_id, &request, &targets).await
    }

    pub fn fault(&self, fault: Fault) {
        self.sim.inject_fault(fault).unwrap();
    }
}

pub fn fault(vendor: &str, token: &str) -> Fault {
    Fault {
        vendor: vendor.into(),
        token: Some(token.into()),
        status: None,
        reason: None,
        retry_after_s: None,
        times: 1,
        delay_ms: None,
        accepted: false,
    }
}

pub fn notification() -> Notification {
    Notification {
        title: "Team chat".into(),
        body: "Denny: see you at 5".into(),
        sound: "default".into(),
        ext: r#"{"chat":"c2c:denny"}"#.into(),
        send_time_ms: 1_700_000_000_000,
        ..Default::default()
    }
}

/// The sample notification in notify mode CUSTOM: a data message the app shows itself.
pub fn data_notification() -> Notification {
    let mut notification = notification();
    notification.set_android_notify_mode(impush_proto::v1::AndroidNotifyMode::Custom);
    notification
}

pub fn target(token: &str) -> PushTarget {
    PushTarget {
        user_id: "vinson".into(),
        device_id: "dev-1".into(),
        token: token.into(),
        badge: Some(2),
    }
}

/// Timeouts short enough for a test, long enough for a loaded machine.
pub const SHORT_TIMEOUT_MS: u64 = 500;
pub const LONG_DELAY: Duration = Duration::from_secs(5);

pub const MEIZU: u64 = 7;
pub const TPNS: u64 = 8;

impl Stack {
    /// [`Stack::start`] with credential `business_id` also pointed at `vendor`'s personality
    /// (the base stack points APNs and FCM only).
    pub async fn start_pointing(business_id: u64, vendor: &str) -> Stack {
        let mut stack = Stack::start().await;
        let base_url = stack.sim.base_url(vendor);
        stack.config.vendors.get_mut(&business_id).unwrap().base_url = base_url;
        stack
    }

    /// Sends the sample notification to every token in one request.
    pub async fn send_batch(
        &self,
        clients: &VendorClients,
        business_id: u64,
        tokens: &[String],
    ) -> SendResult {
        let targets: Vec<PushTarget> = tokens.iter().map(|t| target(t)).collect();
        let request = build_payload(
            &notification(),
            &self.config.credentials[&business_id],
            &targets,
        )
        .unwrap();
        clients.send(business_id, &request, &targets).await
    }
}
