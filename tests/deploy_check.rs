//! The deployment files (deploy/, Dockerfile) agree with the code: every metric the
//! dashboard and the alert rules query is one the workers export, every vendor has its
//! sender pool and autoscaler, every worker is probed on its admin endpoints, every command
//! the manifests run is a real binary with real flags, and every alert leads to its runbook
//! section. A rename on either side fails here instead of in production.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = workspace().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml_documents(relative: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"))
}

fn vendors() -> Vec<&'static str> {
    impush_core::vendor::ALL
        .into_iter()
        .map(impush_core::vendor::name)
        .collect()
}

fn str_list(node: &Yaml) -> Vec<String> {
    node.as_vec()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ---- metric names ------------------------------------------------------------------------

const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// The `impush_…` metric names mentioned in `text`, with the series suffixes of a
/// histogram taken off so they compare with the name the code registers.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (start, _) in text.match_indices("impush_") {
        let glued = text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| is_name_char(c) || c == ':');
        if glued {
            continue;
        }
        let name: String = text[start..]
            .chars()
            .take_while(|c| is_name_char(*c))
            .collect();
        let base = HISTOGRAM_SUFFIXES
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        names.insert(base.to_owned());
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every Rust source of crates/, concatenated.
fn code() -> String {
    let mut files = Vec::new();
    rust_files(&workspace().join("crates"), &mut files);
    files
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap_or_default())
        .collect()
}

/// Every `"impush_…"` string literal in crates/**/*.rs: the names the workers register.
fn exported_metric_names() -> BTreeSet<String> {
    let code = code();
    let mut names = BTreeSet::new();
    for (start, _) in code.match_indices("\"impush_") {
        let rest = &code[start + 1..];
        let name: String = rest.chars().take_while(|c| is_name_char(*c)).collect();
        if rest[name.len()..].starts_with('"') {
            names.insert(name);
        }
    }
    names
}

/// The metric names `text` queries that the code does not export.
fn unexported(text: &str, exported: &BTreeSet<String>) -> Vec<String> {
    metric_names(text)
        .into_iter()
        .filter(|name| !exported.contains(name))
        .collect()
}

const QUERYING_FILES: [&str; 3] = [
    "deploy/grafana/impush-dashboard.json",
    "deploy/prometheus/alerts.yml",
    "deploy/prometheus/alerts_test.yml",
];

#[test]
fn every_metric_the_dashboard_and_alerts_query_is_exported_by_the_code() {
    let exported = exported_metric_names();
    let mut missing = BTreeMap::new();
    for file in QUERYING_FILES {
        let text = read(file);
        assert!(
            !metric_names(&text).is_empty(),
            "{file} names no impush metric: the extraction is broken"
        );
        for name in unexported(&text, &exported) {
            missing.entry(name).or_insert_with(Vec::new).push(file);
        }
    }
    assert!(
        missing.is_empty(),
        "metrics queried by the deployment files but registered nowhere in crates/ \
         (no \"name\" string literal): {missing:#?}"
    );
}

#[test]
fn histograms_queried_by_bucket_are_exported_with_buckets() {
    // metrics-exporter-prometheus renders a histogram as a summary (quantiles, no _bucket
    // series) unless buckets are configured; the latency panels and
    // ImpushEndToEndLatencyHigh compute quantiles from _bucket and would then show nothing.
    let queried_by_bucket = QUERYING_FILES
        .iter()
        .any(|file| read(file).contains("_seconds_bucket"));
    assert!(queried_by_bucket);
    assert!(
        code().contains("set_buckets"),
        "no PrometheusBuilder::set_buckets / set_buckets_for_metric in crates/: the \
         histograms are exported as summaries, without the _bucket series the dashboard \
         and alerts query"
    );
}

#[test]
fn a_misspelled_metric_is_reported_and_histogram_series_are_not() {
    let exported = exported_metric_names();
    let query = "sum(rate(impush_pushes_totl[5m])) \
         / histogram_quantile(0.99, rate(impush_end_to_end_latency_seconds_bucket[5m])) \
         + impush:recorded_rule + not_impush_a_metric";
    assert_eq!(unexported(query, &exported), vec!["impush_pushes_totl"]);
}

// ---- Kubernetes ----------------------------------------------------------------------------

struct Manifests {
    objects: Vec<(String, Yaml)>,
}

impl Manifests {
    /// Every object of the files kustomization.yaml lists, with the file it came from.
    fn load() -> Manifests {
        let kustomization = &yaml_documents("deploy/k8s/kustomization.yaml")[0];
        let mut objects = Vec::new();
        for file in str_list(&kustomization["resources"]) {
            let relative = format!("deploy/k8s/{file}");
            for doc in yaml_documents(&relative) {
                if !doc.is_null() {
                    objects.push((relative.clone(), doc));
                }
            }
        }
        Manifests { objects }
    }

    fn of_kind(&self, kind: &str) -> impl Iterator<Item = &Yaml> {
        self.objects
            .iter()
            .map(|(_, object)| object)
            .filter(move |object| object["kind"].as_str() == Some(kind))
    }

    fn deployment_running(&self, argv_prefix: &[&str]) -> Option<&Yaml> {
        self.of_kind("Deployment").find(|deployment| {
            containers(deployment)
                .iter()
                .any(|container| runs(container, argv_prefix))
        })
    }

    fn scaled_object_for(&self, deployment: &str) -> Option<&Yaml> {
        self.of_kind("ScaledObject")
            .find(|object| object["spec"]["scaleTargetRef"]["name"].as_str() == Some(deployment))
    }
}

/// Whether a container's argv begins with `prefix` (binary, then subcommand or flags).
fn runs(container: &Yaml, prefix: &[&str]) -> bool {
    let argv = str_list(&container["args"]);
    argv.len() >= prefix.len() && argv.iter().zip(prefix).all(|(arg, want)| arg == want)
}

fn name_of(object: &Yaml) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("<unnamed>")
}

fn containers(workload: &Yaml) -> Vec<Yaml> {
    workload["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .cloned()
        .unwrap_or_default()
}

/// The value following `flag` in `argv`.
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter()
        .position(|arg| arg == flag)
        .and_then(|at| argv.get(at + 1))
        .map(String::as_str)
}

/// Asserts the ScaledObject scales on `queue`'s length through the shared authentication.
fn assert_scales_on_queue(scaled: &Yaml, queue: &str) {
    let name = name_of(scaled);
    let triggers = scaled["spec"]["triggers"]
        .as_vec()
        .cloned()
        .unwrap_or_default();
    let trigger = triggers
        .iter()
        .find(|t| t["type"].as_str() == Some("rabbitmq"))
        .unwrap_or_else(|| panic!("ScaledObject {name} has no rabbitmq trigger"));
    assert_eq!(
        trigger["metadata"]["queueName"].as_str(),
        Some(queue),
        "ScaledObject {name}"
    );
    assert_eq!(
        trigger["metadata"]["mode"].as_str(),
        Some("QueueLength"),
        "ScaledObject {name}"
    );
    assert!(
        trigger["metadata"]["value"]
            .as_str()
            .is_some_and(|v| v.parse::<u32>().is_ok_and(|v| v > 0)),
        "ScaledObject {name} needs a positive target queue length"
    );
    assert!(
        scaled["spec"]["minReplicaCount"]
            .as_i64()
            .is_some_and(|min| min >= 1),
        "ScaledObject {name} must keep a consumer (minReplicaCount >= 1)"
    );
}

#[test]
fn every_vendor_has_a_sender_deployment_scaled_on_its_own_queue() {
    let manifests = Manifests::load();
    let auth_names: Vec<&str> = manifests
        .of_kind("TriggerAuthentication")
        .map(name_of)
        .collect();
    for vendor in vendors() {
        let deployment = manifests
            .deployment_running(&["impush-sender", "--vendor", vendor])
            .unwrap_or_else(|| panic!("no Deployment runs `impush-sender --vendor {vendor}`"));
        let name = name_of(deployment);
        let scaled = manifests
            .scaled_object_for(name)
            .unwrap_or_else(|| panic!("no ScaledObject targets {name}"));
        assert_scales_on_queue(scaled, &format!("impush.push.{vendor}"));
        let auth = scaled["spec"]["triggers"][0]["authenticationRef"]["name"].as_str();
        assert!(
            auth.is_some_and(|auth| auth_names.contains(&auth)),
            "ScaledObject {} authenticates with {auth:?}, not one of {auth_names:?}",
            name_of(scaled)
        );
    }
}

#[test]
fn router_scales_on_the_messages_queue_and_ingest_runs() {
    let manifests = Manifests::load();
    let router = manifests
        .deployment_running(&["impush-router"])
        .expect("a Deployment running impush-router");
    let scaled = manifests
        .scaled_object_for(name_of(router))
        .expect("a ScaledObject for the router");
    assert_scales_on_queue(scaled, "impush.messages");
    assert!(manifests.deployment_running(&["impush-ingest"]).is_some());
    assert!(manifests.deployment_running(&["impush-receipts"]).is_some());
    let setup = manifests.of_kind("Job").find(|job| {
        containers(job)
            .iter()
            .any(|c| runs(c, &["impush", "setup"]))
    });
    assert!(setup.is_some(), "a Job running `impush setup`");
}

/// The admin port a worker container listens on, from its `--metrics-addr`.
fn admin_port(deployment: &str, container: &Yaml) -> i64 {
    let argv = str_list(&container["args"]);
    let addr = flag_value(&argv, "--metrics-addr")
        .unwrap_or_else(|| panic!("{deployment}: no --metrics-addr (the default is loopback)"));
    let (host, port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{deployment}: --metrics-addr {addr} has no port"));
    assert_eq!(
        host, "0.0.0.0",
        "{deployment}: the kubelet and Prometheus cannot reach a loopback admin listener"
    );
    port.parse()
        .unwrap_or_else(|_| panic!("{deployment}: bad port in {addr}"))
}

/// The port number a probe targets, resolving a named port through the container's ports.
fn probe_port(container: &Yaml, probe: &Yaml) -> Option<i64> {
    let port = &probe["httpGet"]["port"];
    port.as_i64().or_else(|| {
        let name = port.as_str()?;
        container["ports"]
            .as_vec()?
            .iter()
            .find(|p| p["name"].as_str() == Some(name))?["containerPort"]
            .as_i64()
    })
}

#[test]
fn every_deployment_probes_healthz_and_readyz_on_its_admin_port() {
    let manifests = Manifests::load();
    let mut checked = 0;
    for deployment in manifests.of_kind("Deployment") {
        let name = name_of(deployment);
        for container in containers(deployment) {
            let port = admin_port(name, &container);
            for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                assert_eq!(
                    container[probe]["httpGet"]["path"].as_str(),
                    Some(path),
                    "{name}: {probe}"
                );
                assert_eq!(
                    probe_port(&container, &container[probe]),
                    Some(port),
                    "{name}: {probe} must hit the --metrics-addr port"
                );
            }
            let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
            assert_eq!(
                annotations["prometheus.io/port"].as_str(),
                Some(port.to_string().as_str()),
                "{name}: scrape annotation"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        vendors().len() + 3,
        "ingest, router, receipts and one sender per vendor"
    );
}

/// `128Mi`, `64M`, `1Gi` in bytes.
fn quantity_bytes(quantity: &str) -> Option<u64> {
    let split = quantity.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = quantity.split_at(split);
    let multiplier = match unit {
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    number.parse::<u64>().ok().map(|n| n * multiplier)
}

#[test]
fn every_deployment_runs_non_root_read_only_bounded_and_drains_under_a_budget() {
    let manifests = Manifests::load();
    let budgets: Vec<&Yaml> = manifests.of_kind("PodDisruptionBudget").collect();
    for deployment in manifests.of_kind("Deployment") {
        let name = name_of(deployment);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{name}: runAsNonRoot"
        );
        assert!(
            pod["terminationGracePeriodSeconds"]
                .as_i64()
                .is_some_and(|s| s >= 30),
            "{name}: SIGTERM drains in-flight work; give it at least 30 s"
        );
        for container in containers(deployment) {
            assert_eq!(
                container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{name}: read-only root filesystem"
            );
            assert_eq!(
                container["securityContext"]["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{name}: no privilege escalation"
            );
            let limit = container["resources"]["limits"]["memory"]
                .as_str()
                .and_then(quantity_bytes);
            assert!(
                limit.is_some_and(|bytes| bytes <= 128 << 20),
                "{name}: memory limit {limit:?} must be set and at most 128Mi (target RSS 40 MB)"
            );
            assert!(
                container["resources"]["requests"]["memory"]
                    .as_str()
                    .is_some(),
                "{name}: memory request"
            );
        }
        let selector = &deployment["spec"]["selector"]["matchLabels"];
        let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
        let covered = budgets.iter().any(|budget| {
            let wanted = budget["spec"]["selector"]["matchLabels"]
                .as_hash()
                .cloned()
                .unwrap_or_default();
            !wanted.is_empty()
                && wanted
                    .iter()
                    .all(|(k, v)| &pod_labels[k.as_str().unwrap_or_default()] == v)
        });
        assert!(covered, "{name}: no PodDisruptionBudget selects its pods");
        assert!(
            selector.as_hash().is_some_and(|labels| labels
                .iter()
                .all(|(k, v)| { &pod_labels[k.as_str().unwrap_or_default()] == v })),
            "{name}: selector does not match its own pod labels"
        );
    }
}

#[test]
fn kustomization_lists_every_manifest_but_the_secret_example() {
    let kustomization = &yaml_documents("deploy/k8s/kustomization.yaml")[0];
    let listed: BTreeSet<String> = str_list(&kustomization["resources"]).into_iter().collect();
    let present: BTreeSet<String> = std::fs::read_dir(workspace().join("deploy/k8s"))
        .expect("deploy/k8s")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .filter(|name| name != "kustomization.yaml" && name != "secret.example.yaml")
        .collect();
    assert_eq!(listed, present);
}

/// Every `{ file = "…" }` in a TOML config.
fn secret_files(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            if let Some(toml::Value::String(file)) = table.get("file") {
                out.push(file.clone());
            }
            table.values().for_each(|v| secret_files(v, out));
        }
        toml::Value::Array(items) => items.iter().for_each(|v| secret_files(v, out)),
        _ => {}
    }
}

#[test]
fn the_fleet_config_is_valid_and_its_secrets_are_keys_of_the_mounted_secret() {
    let configmap = &yaml_documents("deploy/k8s/configmap.yaml")[0];
    let text = configmap["data"]["impush.toml"]
        .as_str()
        .expect("impush.toml in the ConfigMap");
    let config = impush_config::Config::parse(text, "deploy/k8s/configmap.yaml")
        .unwrap_or_else(|e| panic!("the ConfigMap's impush.toml: {e}"));
    let configured: BTreeSet<&str> = config
        .credentials
        .values()
        .map(|c| impush_core::vendor::name(c.vendor))
        .collect();
    assert_eq!(configured, vendors().into_iter().collect());
    for settings in config.vendors.values() {
        assert!(
            settings.base_url.starts_with("https://"),
            "production base_url {}",
            settings.base_url
        );
    }

    let secret_example = yaml_documents("deploy/k8s/secret.example.yaml");
    let mounted = secret_example
        .iter()
        .find(|doc| name_of(doc) == "impush-secrets")
        .expect("impush-secrets in secret.example.yaml");
    let keys: BTreeSet<&str> = mounted["stringData"]
        .as_hash()
        .expect("stringData")
        .keys()
        .filter_map(Yaml::as_str)
        .collect();
    let mut files = Vec::new();
    secret_files(&toml::from_str(text).expect("TOML"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let key = file
            .strip_prefix("/etc/impush/secrets/")
            .unwrap_or_else(|| panic!("{file} is not under /etc/impush/secrets"));
        assert!(keys.contains(key), "{key} is not a key of impush-secrets");
    }
}

// ---- commands: Kubernetes, compose, Dockerfile -----------------------------------------------

fn bin_dir() -> PathBuf {
    std::env::var_os("IMPUSH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace().join("target"))
                .join("debug")
        })
}

/// Every impush command line the deployment files run, with where it comes from.
fn deployed_commands() -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    for (file, object) in &Manifests::load().objects {
        for container in containers(object) {
            let argv = str_list(&container["args"]);
            commands.push((format!("{file} {}", name_of(object)), argv));
        }
    }
    let compose = &yaml_documents("deploy/compose/docker-compose.yml")[0];
    let services = compose["services"]
        .as_hash()
        .unwrap_or_else(|| panic!("docker-compose.yml has no services"));
    for (name, service) in services {
        if !service["build"].is_badvalue() {
            let name = name.as_str().unwrap_or_default();
            commands.push((
                format!("docker-compose.yml {name}"),
                str_list(&service["command"]),
            ));
        }
    }
    commands
}

/// The binaries the Dockerfile copies into the image.
fn image_binaries() -> BTreeSet<String> {
    read("Dockerfile")
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("target/release/"))
        .map(str::to_owned)
        .collect()
}

/// Whether `help` documents `flag` as a whole word (`--config` is not `--config-dir`).
fn documents_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        !help[at + flag.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn every_deployed_command_is_a_binary_of_the_image_with_real_flags() {
    let image = image_binaries();
    let commands = deployed_commands();
    assert!(commands.len() > vendors().len());
    for (origin, argv) in commands {
        let binary = argv
            .first()
            .unwrap_or_else(|| panic!("{origin}: no command"));
        assert!(
            image.contains(binary),
            "{origin}: {binary} is not copied into the image ({image:?})"
        );
        let path = bin_dir().join(binary);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --workspace --bins` first (make test does)",
            path.display()
        );
        // `impush` takes a subcommand; its flags are in the subcommand's help.
        let subcommand: Vec<&str> = match argv.get(1) {
            Some(sub) if binary == "impush" => vec![sub.as_str()],
            _ => Vec::new(),
        };
        let output = Command::new(&path)
            .args(&subcommand)
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{origin}: `{binary} {} --help` failed: {}",
            subcommand.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        for flag in argv.iter().filter(|arg| arg.starts_with("--")) {
            assert!(
                documents_flag(&help, flag),
                "{origin}: `{binary}` has no {flag} flag"
            );
        }
        if let Some(vendor) = flag_value(&argv, "--vendor") {
            assert!(
                vendors().contains(&vendor),
                "{origin}: unknown vendor {vendor}"
            );
        }
    }
}

#[test]
fn a_made_up_flag_is_caught() {
    let help = "Options:\n      --config <CONFIG>\n      --metrics-addr <METRICS_ADDR>\n";
    assert!(documents_flag(help, "--config"));
    assert!(documents_flag(help, "--metrics-addr"));
    assert!(!documents_flag(help, "--metrics"));
    assert!(!documents_flag(help, "--vendor"));
}

#[test]
fn compose_runs_and_scrapes_a_sender_per_vendor() {
    let compose = &yaml_documents("deploy/compose/docker-compose.yml")[0];
    let prometheus = read("deploy/prometheus/prometheus.yml");
    for vendor in vendors() {
        let service = format!("sender-{vendor}");
        let argv = str_list(&compose["services"][service.as_str()]["command"]);
        assert_eq!(
            flag_value(&argv, "--vendor"),
            Some(vendor),
            "compose service {service}"
        );
        assert!(
            prometheus.contains(&format!("{service}:9600")),
            "prometheus.yml does not scrape {service}"
        );
    }
    for service in [
        "rabbitmq",
        "redis",
        "impush-sim",
        "ingest",
        "router",
        "prometheus",
        "grafana",
    ] {
        assert!(
            !compose["services"][service].is_badvalue(),
            "compose has no {service} service"
        );
    }
}

/// `source:target[:mode]` of a compose volume.
fn mount_parts(volume: &str) -> (&str, &str) {
    let mut parts = volume.splitn(3, ':');
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

#[test]
fn compose_builds_and_mounts_files_that_exist_and_its_config_is_valid() {
    let compose_dir = workspace().join("deploy/compose");
    let compose = &yaml_documents("deploy/compose/docker-compose.yml")[0];
    let services = compose["services"].as_hash().expect("services");
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default();
        let build = &service["build"];
        if !build.is_badvalue() {
            let context = compose_dir.join(build["context"].as_str().expect("build context"));
            let dockerfile = build["dockerfile"].as_str().expect("dockerfile");
            assert!(
                context.join(dockerfile).exists(),
                "{name}: {dockerfile} not found in the build context"
            );
        }
        for volume in str_list(&service["volumes"]) {
            let (source, _) = mount_parts(&volume);
            assert!(
                compose_dir.join(source).exists(),
                "{name}: mounts {source}, which does not exist next to docker-compose.yml"
            );
        }
    }

    // The workers read /etc/impush/config/impush.toml with the test keys mounted beside it.
    let text = read("deploy/compose/impush.toml");
    let config = impush_config::Config::parse(&text, "deploy/compose/impush.toml")
        .unwrap_or_else(|e| panic!("deploy/compose/impush.toml: {e}"));
    let vendors_configured: BTreeSet<&str> = config
        .credentials
        .values()
        .map(|c| impush_core::vendor::name(c.vendor))
        .collect();
    assert_eq!(vendors_configured, vendors().into_iter().collect());
    for settings in config.vendors.values() {
        assert!(
            settings.base_url.starts_with("http://impush-sim:8700/"),
            "compose credentials must send to the simulator, not {}",
            settings.base_url
        );
    }
    let volumes = str_list(&compose["services"]["ingest"]["volumes"]);
    let keys_mount = volumes
        .iter()
        .map(|v| mount_parts(v))
        .find(|(_, target)| *target == "/etc/impush/config/keys")
        .expect("the test keys mounted at /etc/impush/config/keys");
    let mut files = Vec::new();
    secret_files(&toml::from_str(&text).expect("TOML"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let key = file
            .strip_prefix("keys/")
            .unwrap_or_else(|| panic!("{file} is not under keys/"));
        assert!(
            compose_dir.join(keys_mount.0).join(key).exists(),
            "{file} is not one of the mounted test keys"
        );
    }
}

#[test]
fn every_worker_reads_the_mounted_config_and_senders_the_mounted_secrets() {
    let manifests = Manifests::load();
    for workload in manifests
        .of_kind("Deployment")
        .chain(manifests.of_kind("Job"))
    {
        let name = name_of(workload);
        let volumes = workload["spec"]["template"]["spec"]["volumes"]
            .as_vec()
            .cloned()
            .unwrap_or_default();
        let source_of = |volume_name: &str| {
            volumes
                .iter()
                .find(|v| v["name"].as_str() == Some(volume_name))
                .cloned()
                .unwrap_or(Yaml::BadValue)
        };
        for container in containers(workload) {
            let argv = str_list(&container["args"]);
            let mounts = container["volumeMounts"]
                .as_vec()
                .cloned()
                .unwrap_or_default();
            let mounted_from = |path: &str| {
                mounts
                    .iter()
                    .find(|m| m["mountPath"].as_str() == Some(path))
                    .map(|m| source_of(m["name"].as_str().unwrap_or_default()))
            };
            let config =
                flag_value(&argv, "--config").unwrap_or_else(|| panic!("{name}: no --config"));
            let (dir, file) = config.rsplit_once('/').expect("an absolute config path");
            let volume = mounted_from(dir).unwrap_or_else(|| panic!("{name}: nothing at {dir}"));
            assert_eq!(
                volume["configMap"]["name"].as_str(),
                Some("impush-config"),
                "{name}: {dir}"
            );
            assert_eq!(file, "impush.toml", "{name}: the ConfigMap's key");
            if runs(&container, &["impush-sender"]) {
                let secrets = mounted_from("/etc/impush/secrets")
                    .unwrap_or_else(|| panic!("{name}: no secrets at /etc/impush/secrets"));
                assert_eq!(
                    secrets["secret"]["secretName"].as_str(),
                    Some("impush-secrets"),
                    "{name}"
                );
            }
        }
    }
}

// ---- alerts and runbook --------------------------------------------------------------------

/// GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn runbook_anchors() -> BTreeSet<String> {
    read("docs/runbook.md")
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor(heading.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_alert_has_a_severity_a_summary_and_a_runbook_section_and_a_unit_test() {
    let rules = &yaml_documents("deploy/prometheus/alerts.yml")[0];
    let anchors = runbook_anchors();
    let tests = read("deploy/prometheus/alerts_test.yml");
    let mut alerts = 0;
    for group in rules["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let Some(alert) = rule["alert"].as_str() else {
                continue;
            };
            alerts += 1;
            assert!(
                matches!(
                    rule["labels"]["severity"].as_str(),
                    Some("critical" | "warning")
                ),
                "{alert}: severity"
            );
            for annotation in ["summary", "description"] {
                assert!(
                    rule["annotations"][annotation]
                        .as_str()
                        .is_some_and(|text| !text.trim().is_empty()),
                    "{alert}: {annotation}"
                );
            }
            let url = rule["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_default();
            let section = url
                .split_once("docs/runbook.md#")
                .map(|(_, section)| section)
                .unwrap_or_else(|| panic!("{alert}: runbook_url {url:?} is not docs/runbook.md#…"));
            assert!(
                anchors.contains(section),
                "{alert}: docs/runbook.md has no section #{section}"
            );
            assert!(
                tests.contains(&format!("alertname: {alert}\n")),
                "{alert}: no test in alerts_test.yml"
            );
        }
    }
    assert!(alerts >= 8, "only {alerts} alerts");
}

#[test]
fn every_link_into_the_runbook_leads_to_a_section() {
    let anchors = runbook_anchors();
    let sources = [
        ("docs/runbook.md", "](#"),
        ("deploy/grafana/impush-dashboard.json", "runbook.md#"),
        ("deploy/k8s/secret.example.yaml", "runbook.md#"),
    ];
    let mut links = 0;
    for (file, marker) in sources {
        let text = read(file);
        for (at, _) in text.match_indices(marker) {
            let section: String = text[at + marker.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            assert!(
                anchors.contains(&section),
                "{file} links to #{section}, which docs/runbook.md does not have"
            );
            links += 1;
        }
    }
    assert!(links > 10, "only {links} links found: the scan is broken");
}

#[test]
fn runbook_anchors_follow_github_headings() {
    assert_eq!(
        anchor(" ImpushDeadLettersGrowing"),
        "impushdeadlettersgrowing"
    );
    assert_eq!(
        anchor(" Replaying dead letters (`impush dlq`)"),
        "replaying-dead-letters-impush-dlq"
    );
}

// ---- generated manifests, environment, monitoring objects -----------------------------------

#[test]
fn the_generated_manifests_are_up_to_date_and_cover_every_vendor() {
    let output = Command::new(workspace().join("scripts/gen-k8s.sh"))
        .arg("--check")
        .output()
        .expect("scripts/gen-k8s.sh runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let script = read("scripts/gen-k8s.sh");
    let listed: BTreeSet<&str> = script
        .lines()
        .find_map(|line| line.strip_prefix("VENDORS=\""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("a VENDORS=\"…\" line in scripts/gen-k8s.sh")
        .split_whitespace()
        .collect();
    for vendor in vendors() {
        assert!(
            listed.contains(vendor),
            "scripts/gen-k8s.sh generates no sender manifest for {vendor}"
        );
    }
    let kustomization = &yaml_documents("deploy/k8s/kustomization.yaml")[0];
    let resources = str_list(&kustomization["resources"]);
    for vendor in listed {
        let file = format!("sender-{vendor}.yaml");
        assert!(resources.contains(&file), "kustomization.yaml lacks {file}");
    }
}

/// `(where, name, value)` of every environment variable the manifests and the Dockerfile
/// set; a value from a Secret is a placeholder of the right shape.
fn deployed_environment() -> Vec<(String, String, String)> {
    let mut env = Vec::new();
    for (file, object) in &Manifests::load().objects {
        for container in containers(object) {
            for variable in container["env"].as_vec().cloned().unwrap_or_default() {
                let name = variable["name"].as_str().unwrap_or_default().to_owned();
                let value = variable["value"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| "amqp://placeholder:5672/%2f".to_owned());
                env.push((format!("{file} {}", name_of(object)), name, value));
            }
        }
    }
    let dockerfile = read("Dockerfile");
    let mut in_env = false;
    for line in dockerfile.lines() {
        let line = line.trim();
        let rest = if let Some(rest) = line.strip_prefix("ENV ") {
            rest
        } else if in_env {
            line
        } else {
            continue;
        };
        in_env = rest.ends_with('\\');
        let assignment = rest.trim_end_matches('\\').trim();
        if let Some((name, value)) = assignment.split_once('=') {
            env.push(("Dockerfile".to_owned(), name.to_owned(), value.to_owned()));
        }
    }
    env
}

#[test]
fn every_environment_variable_the_deployment_sets_is_read_by_the_workers() {
    let env = deployed_environment();
    assert!(
        env.iter().any(|(_, name, _)| name == "IMPUSH__LOG__FORMAT"),
        "the deployment asks for JSON logs somewhere: {env:?}"
    );
    let help = String::from_utf8(
        Command::new(bin_dir().join("impush-sender"))
            .arg("--help")
            .output()
            .expect("impush-sender --help (cargo build --workspace --bins)")
            .stdout,
    )
    .expect("UTF-8 help");
    for (origin, name, value) in env {
        if name.starts_with(impush_config::ENV_PREFIX) {
            // An override of a key no section has, or of the wrong type, is refused by name.
            impush_config::Config::parse_with_env(
                impush_config::LOCAL_STACK_TOML,
                "deploy/local/impush.toml",
                [(name.clone(), value.clone())],
            )
            .unwrap_or_else(|e| panic!("{origin} sets {name}={value}: {e}"));
        } else {
            assert!(
                name == "RUST_LOG" || help.contains(&format!("[env: {name}=")),
                "{origin} sets {name}, which no impush binary reads (overrides are \
                 IMPUSH__SECTION__KEY, flags' variables are in --help)"
            );
        }
    }
}

#[test]
fn the_monitoring_objects_carry_the_label_kube_prometheus_stack_selects_by() {
    let manifests = Manifests::load();
    for kind in ["PodMonitor", "PrometheusRule"] {
        let object = manifests
            .of_kind(kind)
            .next()
            .unwrap_or_else(|| panic!("no {kind} in kustomization.yaml's resources"));
        assert!(
            object["metadata"]["labels"]["release"].as_str().is_some(),
            "{kind} {} has no release label",
            name_of(object)
        );
    }
}

#[test]
fn the_setup_job_is_named_per_image_tag_so_a_new_release_can_apply_it() {
    let manifests = Manifests::load();
    let job = manifests.of_kind("Job").next().expect("the setup Job");
    assert_eq!(name_of(job), "impush-setup-TAG");
    let kustomization = read("deploy/k8s/kustomization.yaml");
    assert!(
        kustomization.contains("replacements:") && kustomization.contains("name: impush-setup-TAG"),
        "kustomization.yaml does not put the image tag into the Job's name"
    );
    assert!(job["spec"]["ttlSecondsAfterFinished"].as_i64().is_some());
}

#[test]
fn secrets_are_mounted_readable_by_the_pods_group_which_the_workers_accept() {
    for (file, object) in &Manifests::load().objects {
        let spec = &object["spec"]["template"]["spec"];
        for volume in spec["volumes"].as_vec().cloned().unwrap_or_default() {
            let secret = &volume["secret"];
            if secret.is_badvalue() {
                continue;
            }
            // `0440`: octal to Kubernetes (YAML 1.1), decimal digits to this YAML 1.2 reader.
            let mode = secret["defaultMode"].as_i64();
            assert!(
                mode == Some(0o440) || mode == Some(440),
                "{file} {}: secret defaultMode {mode:?}",
                name_of(object)
            );
            assert!(
                spec["securityContext"]["fsGroup"].as_i64().is_some(),
                "{file} {}: group-readable secrets need an fsGroup",
                name_of(object)
            );
        }
    }
}
