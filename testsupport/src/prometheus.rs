//! A real Prometheus (Debian's 2.42) and Alertmanager (0.25), each on a free
//! loopback port in a temp dir, killed on drop.
//!
//! Prometheus can start with data already in its TSDB: OpenMetrics text with
//! timestamps is turned into blocks by `promtool tsdb create-blocks-from
//! openmetrics` before the server starts, so a test queries a known history
//! (minutes of it) without waiting for scrapes. Scrape targets and rule
//! files are for what must happen live (an alert rule firing).

use crate::{free_port, tail, wait_for};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) fn binary(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is needed for this test but is not on PATH: install it with \
             `apt-get install {package}` or run scripts/setup"
        )
    })
}

/// What a test Prometheus starts with.
#[derive(Debug, Default)]
pub struct PrometheusSetup {
    /// `(job, host:port)` scraped every second.
    pub scrape: Vec<(String, String)>,
    /// Rule files, evaluated every second.
    pub rules: Vec<PathBuf>,
    /// An Alertmanager (`host:port`) to send alerts to.
    pub alertmanager: Option<String>,
    /// OpenMetrics text (with timestamps, ending in `# EOF`) loaded into the
    /// TSDB before the server starts.
    pub backfill: Option<String>,
    /// Require basic auth (`--web.config.file`): user, password, and the
    /// password's bcrypt hash (Prometheus stores only the hash).
    pub basic_auth: Option<(String, String, String)>,
}

/// A running Prometheus; killed on drop.
pub struct Prometheus {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    /// `Authorization` for the test's own requests, when auth is on.
    auth: Option<String>,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prometheus(port {})", self.port)
    }
}

impl Prometheus {
    pub fn start(setup: &PrometheusSetup) -> Prometheus {
        let prometheus = binary("prometheus", "prometheus");
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        if let Some(text) = &setup.backfill {
            let file = dir.path().join("backfill.om");
            std::fs::write(&file, text).expect("write backfill");
            let out = Command::new(binary("promtool", "prometheus"))
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(&data)
                .output()
                .expect("run promtool");
            assert!(
                out.status.success(),
                "promtool tsdb create-blocks-from openmetrics failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
        if !setup.rules.is_empty() {
            config.push_str("rule_files:\n");
            for r in &setup.rules {
                config.push_str(&format!("  - {:?}\n", r.display().to_string()));
            }
        }
        if let Some(am) = &setup.alertmanager {
            config.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{am:?}]\n"
            ));
        }
        if !setup.scrape.is_empty() {
            config.push_str("scrape_configs:\n");
            for (job, target) in &setup.scrape {
                config.push_str(&format!(
                    "  - job_name: {job:?}\n    static_configs:\n      - targets: [{target:?}]\n"
                ));
            }
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let mut command = Command::new(prometheus);
        let mut auth = None;
        if let Some((user, password, hash)) = &setup.basic_auth {
            let web = dir.path().join("web.yml");
            std::fs::write(&web, format!("basic_auth_users:\n  {user}: {hash:?}\n"))
                .expect("write web.yml");
            command.arg(format!("--web.config.file={}", web.display()));
            auth = Some(format!("Basic {}", base64(&format!("{user}:{password}"))));
        }
        let child = command
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus: {e}"));
        let server = Prometheus {
            dir,
            child: Some(child),
            port,
            auth,
        };
        wait_for(
            &format!("prometheus on port {port} to be ready"),
            Duration::from_secs(30),
            || {
                let (status, _) =
                    http_as("GET", port, "/-/ready", None, server.auth.as_deref()).ok()?;
                (status == 200).then_some(())
            },
        );
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last lines of the server's log (for failure messages).
    pub fn log(&self) -> String {
        tail(&self.dir.path().join("prometheus.log"), 30)
    }

    /// An instant query's `data.result` (panics when the server errs).
    pub fn query(&self, expr: &str) -> serde_json::Value {
        let body = format!("query={}", form_encode(expr));
        let (status, text) = http_as(
            "POST",
            self.port,
            "/api/v1/query",
            Some(&body),
            self.auth.as_deref(),
        )
        .unwrap_or_else(|e| panic!("prometheus query {expr}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("prometheus answered {status}: {e}: {text}"));
        assert_eq!(v["status"], "success", "query {expr}: {text}");
        v["data"]["result"].clone()
    }

    /// A GET of the API (`/api/v1/rules`): its `data`.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, text) = http_as("GET", self.port, path, None, self.auth.as_deref())
            .unwrap_or_else(|e| panic!("prometheus {path}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("prometheus answered {status}: {e}: {text}"));
        assert_eq!(v["status"], "success", "{path}: {text}");
        v["data"].clone()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running Alertmanager with one receiver that keeps alerts (no
/// notifications go anywhere); killed on drop.
pub struct Alertmanager {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
}

impl std::fmt::Debug for Alertmanager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Alertmanager(port {})", self.port)
    }
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        Alertmanager::start_on(free_port())
    }

    /// On a given port (one a client was told about before it started).
    pub fn start_on(port: u16) -> Alertmanager {
        let am = binary("prometheus-alertmanager", "prometheus-alertmanager");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: keep\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: keep\n",
        )
        .expect("write alertmanager.yml");
        let log = dir.path().join("alertmanager.log");
        let child = Command::new(am)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip: a single instance on loopback.
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start alertmanager: {e}"));
        let server = Alertmanager {
            dir,
            child: Some(child),
            port,
        };
        wait_for(
            &format!("alertmanager on port {port} to be ready"),
            Duration::from_secs(30),
            || (http("GET", port, "/-/ready", None).ok()?.0 == 200).then_some(()),
        );
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, as Prometheus' config names it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every alert it holds (`GET /api/v2/alerts`, active, silenced,
    /// inhibited and unprocessed alike).
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (status, text) = http("GET", self.port, "/api/v2/alerts", None)
            .unwrap_or_else(|e| panic!("alertmanager: {e}"));
        assert_eq!(status, 200, "GET /api/v2/alerts: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("alertmanager JSON: {e}: {text}"))
    }

    pub fn log(&self) -> String {
        tail(&self.dir.path().join("alertmanager.log"), 30)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Standard base64 (for a Basic `Authorization`).
fn base64(text: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A plain HTTP/1.0 request on loopback: (status, body).
pub(crate) fn http(
    method: &str,
    port: u16,
    path: &str,
    form: Option<&str>,
) -> std::io::Result<(u16, String)> {
    http_as(method, port, path, form, None)
}

fn http_as(
    method: &str,
    port: u16,
    path: &str,
    form: Option<&str>,
    auth: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = form.unwrap_or("");
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
