//! A real OCI registry: Debian's `docker-registry` (the CNCF distribution
//! server, 2.8) on a free loopback port, storing in a temp dir, no auth,
//! killed on drop.

use crate::prometheus::{binary, http};
use crate::{free_port, tail, wait_for};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct OciRegistry {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
}

impl std::fmt::Debug for OciRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OciRegistry(port {})", self.port)
    }
}

impl OciRegistry {
    pub fn start() -> OciRegistry {
        let exe = binary("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write config.yml");
        let log = dir.path().join("registry.log");
        let child = Command::new(exe)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
        let registry = OciRegistry {
            dir,
            child: Some(child),
            port,
        };
        wait_for(
            &format!("docker-registry on port {port} to be ready"),
            Duration::from_secs(30),
            || (http("GET", port, "/v2/", None).ok()?.0 == 200).then_some(()),
        );
        registry
    }

    /// `127.0.0.1:<port>`, as an `oci://` reference names it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `GET path` on the registry: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http("GET", self.port, path, None).unwrap_or_else(|e| panic!("registry: {e}"))
    }

    /// The files the registry stores (to tamper with a blob in a test).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        tail(&self.dir.path().join("registry.log"), 30)
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
