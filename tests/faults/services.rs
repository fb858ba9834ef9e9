//! A RabbitMQ node and a Redis of the fault suite's own, on free loopback ports, so that a
//! scenario can stop and start them without touching the RabbitMQ and Redis every other
//! test (and every other developer on the machine) shares. Both go away when dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::free_port;

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

fn wait_port(port: u16, open: bool, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while port_open(port) != open {
        assert!(
            Instant::now() < deadline,
            "{what}: port {port} never became {}",
            if open { "open" } else { "closed" }
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn temp_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "impush-faults-{kind}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A redis-server child process. The append-only file is fsynced on every write, as a
/// production Redis holding impush's state is configured: a kill -9 loses nothing written.
pub struct DedicatedRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl DedicatedRedis {
    pub fn start() -> DedicatedRedis {
        let mut redis = DedicatedRedis::reserve();
        redis.restart();
        redis
    }

    /// Its port and directory, not started yet (`restart` starts it).
    pub fn reserve() -> DedicatedRedis {
        DedicatedRedis {
            port: free_port(),
            dir: temp_dir("redis"),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: Redis gets no chance to say goodbye to its clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_port(self.port, false, Duration::from_secs(10), "redis stop");
    }

    /// Starts it (again) on its port, with the same data.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .args(["--daemonize", "no"])
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/ensure-services.sh installs it)");
        self.child = Some(child);
        wait_port(self.port, true, Duration::from_secs(60), "redis start");
    }
}

impl Drop for DedicatedRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A RabbitMQ node of its own: own node name, AMQP and distribution ports, data, logs and
/// Erlang cookie, no plugins (so nothing binds the shared node's management or metrics
/// ports), and none of the machine's /etc/rabbitmq settings.
pub struct DedicatedRabbit {
    node: String,
    port: u16,
    dir: PathBuf,
}

/// The Debian package's scripts run as the `rabbitmq` user with its cookie when called as
/// root; the ones under /usr/lib run as the caller, with the cookie of this node's HOME.
fn rabbit_bin(name: &str) -> PathBuf {
    let packaged = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if packaged.exists() {
        packaged
    } else {
        PathBuf::from(name)
    }
}

impl DedicatedRabbit {
    pub fn start() -> DedicatedRabbit {
        DedicatedRabbit::start_with("")
    }

    /// A node with more `rabbitmq.conf` lines (an SSL listener and its `ssl_options`, …).
    pub fn start_with(conf: &str) -> DedicatedRabbit {
        let rabbit = DedicatedRabbit::reserve_with(conf);
        rabbit.boot();
        rabbit
    }

    /// Its name, ports and configuration, the node not booted yet (`boot` boots it).
    pub fn reserve() -> DedicatedRabbit {
        DedicatedRabbit::reserve_with("")
    }

    fn reserve_with(conf: &str) -> DedicatedRabbit {
        let dir = temp_dir("rabbit");
        let port = free_port();
        let dist_port = free_port();
        let node = format!(
            "impush-faults-{}@localhost",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let write = |name: &str, text: String| {
            std::fs::write(dir.join(name), text).expect("rabbit config file");
        };
        write("rabbitmq-env.conf", "ERL_EPMD_ADDRESS=127.0.0.1\n".into());
        write(
            "rabbitmq.conf",
            format!("listeners.tcp.local = 127.0.0.1:{port}\n{conf}"),
        );
        write("enabled_plugins", "[].\n".into());
        write("dist_port", dist_port.to_string());
        DedicatedRabbit { node, port, dir }
    }

    /// Boots the node and waits until it takes AMQP connections.
    pub fn boot(&self) {
        let dist_port = std::fs::read_to_string(self.dir.join("dist_port")).expect("dist port");
        let status = self
            .command("rabbitmq-server")
            .env("RABBITMQ_DIST_PORT", dist_port)
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .arg("-detached")
            .status()
            .expect("rabbitmq-server starts (scripts/ensure-services.sh installs it)");
        assert!(status.success(), "rabbitmq-server -detached: {status}");
        // Until the node has registered with epmd, await_startup fails at once.
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let out = self.ctl(&["await_startup", "--timeout", "240"]);
            if out.status.success() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "RabbitMQ node {} never started: {}\n{}",
                    self.node,
                    String::from_utf8_lossy(&out.stderr),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        wait_port(self.port, true, Duration::from_secs(60), "rabbit start");
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn command(&self, name: &str) -> Command {
        let mut command = Command::new(rabbit_bin(name));
        command
            .env("HOME", &self.dir)
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_PID_FILE", self.dir.join("rabbit.pid"))
            .stdin(Stdio::null());
        command
    }

    fn ctl(&self, args: &[&str]) -> Output {
        self.command("rabbitmqctl")
            .args(["-n", &self.node])
            .args(args)
            .output()
            .expect("rabbitmqctl runs")
    }

    fn ctl_ok(&self, args: &[&str]) {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("log")) {
            for entry in entries.flatten() {
                let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                text.push_str(&lines[lines.len().saturating_sub(30)..].join("\n"));
            }
        }
        text
    }

    /// `rabbitmqctl stop_app`: the broker goes away, the Erlang node stays.
    pub fn stop_app(&self) {
        self.ctl_ok(&["stop_app"]);
        wait_port(self.port, false, Duration::from_secs(60), "rabbit stop_app");
    }

    pub fn start_app(&self) {
        self.ctl_ok(&["start_app"]);
        wait_port(
            self.port,
            true,
            Duration::from_secs(120),
            "rabbit start_app",
        );
    }
}

impl Drop for DedicatedRabbit {
    fn drop(&mut self) {
        if !self.ctl(&["stop"]).status.success()
            && let Ok(pid) = std::fs::read_to_string(self.dir.join("rabbit.pid"))
        {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
