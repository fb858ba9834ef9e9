//! What the TLS tests run against: a CA of their own that signs a server certificate
//! (127.0.0.1 and localhost) and a client certificate, a second CA that signs nothing of
//! theirs (the wrong one), a Redis that speaks only TLS, and a RabbitMQ node with an SSL
//! listener. Everything lives in a temporary directory and goes away when dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::fleet::free_port;
use crate::services::DedicatedRabbit;

/// The certificate files, by name: `ca.pem`, `wrong-ca.pem`, `server.pem`, `server.key`,
/// `client.pem`, `client.key`.
pub struct Pki {
    dir: PathBuf,
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert, key)
}

fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Certificate,
    issuer_key: &KeyPair,
) -> (Certificate, KeyPair) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2039, 1, 1);
    let key = KeyPair::generate().expect("leaf key");
    let cert = params
        .signed_by(&key, issuer, issuer_key)
        .expect("leaf certificate");
    (cert, key)
}

impl Pki {
    pub fn generate() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "impush-tls-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let pki = Pki { dir };
        let (ca_cert, ca_key) = ca("impush test CA");
        let (wrong_ca, _) = ca("impush wrong CA");
        let (server, server_key) = leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca_cert,
            &ca_key,
        );
        let (client, client_key) = leaf(
            &["impush-worker"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca_cert,
            &ca_key,
        );
        pki.write("ca.pem", &ca_cert.pem());
        pki.write("wrong-ca.pem", &wrong_ca.pem());
        pki.write("server.pem", &server.pem());
        pki.write("server.key", &server_key.serialize_pem());
        pki.write("client.pem", &client.pem());
        pki.write("client.key", &client_key.serialize_pem());
        pki
    }

    fn write(&self, name: &str, pem: &str) {
        let path = self.path(name);
        std::fs::write(&path, pem).expect("pem file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if name.ends_with(".key") {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("key file mode");
            }
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the server asks for a client certificate and refuses a client without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    NotAsked,
    Required,
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

fn wait_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while !port_open(port) {
        assert!(
            Instant::now() < deadline,
            "{what}: port {port} never opened; {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A redis-server with no plain-text port at all: only TLS, with the PKI's server
/// certificate.
pub struct TlsRedis {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl TlsRedis {
    pub fn start(pki: &Pki, client_certs: ClientCerts) -> TlsRedis {
        TlsRedis::start_with(pki, client_certs, &[])
    }

    fn start_with(pki: &Pki, client_certs: ClientCerts, args: &[String]) -> TlsRedis {
        TlsRedis::start_on(free_port(), pki, client_certs, args)
    }

    fn start_on(port: u16, pki: &Pki, client_certs: ClientCerts, args: &[String]) -> TlsRedis {
        let dir = pki.dir().join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let log = dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--tls-cert-file")
            .arg(pki.path("server.pem"))
            .arg("--tls-key-file")
            .arg(pki.path("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(pki.path("ca.pem"))
            .args([
                "--tls-auth-clients",
                match client_certs {
                    ClientCerts::NotAsked => "no",
                    ClientCerts::Required => "yes",
                },
            ])
            .arg("--dir")
            .arg(&dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--logfile")
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/ensure-services.sh installs it)");
        wait_port(port, "TLS redis-server", &log);
        TlsRedis { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RabbitMQ node of its own with an SSL listener (and its plain listener, which the tests
/// do not use), presenting the PKI's server certificate.
pub struct TlsRabbit {
    ssl_port: u16,
    _node: DedicatedRabbit,
}

impl TlsRabbit {
    pub fn start(pki: &Pki, client_certs: ClientCerts) -> TlsRabbit {
        let ssl_port = free_port();
        let conf = format!(
            "listeners.ssl.local = 127.0.0.1:{ssl_port}\n\
             ssl_options.cacertfile = {}\n\
             ssl_options.certfile = {}\n\
             ssl_options.keyfile = {}\n\
             ssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = {}\n",
            pki.path("ca.pem").display(),
            pki.path("server.pem").display(),
            pki.path("server.key").display(),
            client_certs == ClientCerts::Required,
        );
        let node = DedicatedRabbit::start_with(&conf);
        wait_port(ssl_port, "RabbitMQ SSL listener", Path::new("/dev/null"));
        TlsRabbit {
            ssl_port,
            _node: node,
        }
    }

    pub fn url(&self) -> String {
        format!("amqps://guest:guest@127.0.0.1:{}/%2f", self.ssl_port)
    }
}

/// A free port whose cluster bus port (`redis-cli --cluster create` expects port + 10000)
/// is free too.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Three TLS-only redis-servers made one Redis Cluster (three primaries, no replicas), whose
/// cluster bus speaks TLS too.
pub struct TlsRedisCluster {
    nodes: Vec<TlsRedis>,
}

impl TlsRedisCluster {
    pub fn start(pki: &Pki, client_certs: ClientCerts) -> TlsRedisCluster {
        let nodes: Vec<TlsRedis> = (0..3)
            .map(|_| {
                // The nodes connect to each other's bus as TLS clients, with the client
                // certificate (the server one is for server authentication only).
                let args = [
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--tls-cluster".to_owned(),
                    "yes".to_owned(),
                    "--tls-client-cert-file".to_owned(),
                    pki.path("client.pem").display().to_string(),
                    "--tls-client-key-file".to_owned(),
                    pki.path("client.key").display().to_string(),
                ];
                TlsRedis::start_on(cluster_port(), pki, client_certs, &args)
            })
            .collect();
        // `timeout`: a cluster whose bus cannot connect would keep redis-cli waiting for ever.
        let mut create = Command::new("timeout");
        create
            .args(["120", "redis-cli", "--tls", "--cacert"])
            .arg(pki.path("ca.pem"))
            .arg("--cert")
            .arg(pki.path("client.pem"))
            .arg("--key")
            .arg(pki.path("client.key"))
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null());
        let out = create.output().expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = TlsRedisCluster { nodes };
        cluster.wait_ok(pki);
        cluster
    }

    /// Until every node sees all 16384 slots served.
    fn wait_ok(&self, pki: &Pki) {
        let deadline = Instant::now() + Duration::from_secs(120);
        for node in &self.nodes {
            loop {
                let out = Command::new("redis-cli")
                    .args(["--tls", "--cacert"])
                    .arg(pki.path("ca.pem"))
                    .arg("--cert")
                    .arg(pki.path("client.pem"))
                    .arg("--key")
                    .arg(pki.path("client.key"))
                    .args(["-h", "127.0.0.1", "-p", &node.port.to_string()])
                    .args(["cluster", "info"])
                    .output()
                    .expect("redis-cli runs");
                let info = String::from_utf8_lossy(&out.stdout);
                if info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_assigned:16384")
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the TLS cluster never became ok: {info}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// The seed nodes, as `[redis] urls`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(TlsRedis::url).collect()
    }
}
