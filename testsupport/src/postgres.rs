//! A PostgreSQL server made with `initdb` and run with `pg_ctl` in a temp dir.
//!
//! PostgreSQL refuses to run as root; when the tests run as root (CI does),
//! the server runs as `nobody` through `setpriv`, in a temp dir it owns.

use crate::{free_port, tail};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const USER: &str = "gatekeeper";

/// A running PostgreSQL; stopped (immediately) on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    pub password: String,
    running: bool,
    as_nobody: bool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Postgres(port {})", self.port)
    }
}

/// The directory holding `initdb` and `pg_ctl`; panics with how to install them.
fn bin_dir() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    for dir in candidates {
        let initdb = dir.join("initdb");
        if initdb.exists() && dir.join("pg_ctl").exists() {
            // Follow symlinks so the server finds its own share/ and lib/.
            let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
            return real.parent().expect("a file has a parent").to_path_buf();
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl) are needed for this test but were not found \
         on PATH or in /usr/lib/postgresql/*/bin: install them with `apt-get install postgresql` \
         (PostgreSQL 15) or run scripts/setup"
    );
}

fn is_root() -> bool {
    // Owner of /proc/self is the effective uid.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl Postgres {
    /// initdb + start on a free port; user `gatekeeper` with a random password.
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let as_nobody = is_root();
        if as_nobody {
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).expect("chown temp dir");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod temp dir");
        let password = format!("pw-{}-{}", std::process::id(), free_port());
        let mut pg = Postgres {
            bin: bin_dir(),
            port: free_port(),
            password,
            running: false,
            as_nobody,
            dir,
        };
        let pwfile = pg.dir.path().join("pw");
        std::fs::write(&pwfile, &pg.password).expect("write pwfile");
        if as_nobody {
            std::os::unix::fs::chown(&pwfile, Some(65534), Some(65534)).expect("chown pwfile");
        }
        let data = pg.data_dir();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                USER,
                "--auth=scram-sha-256",
                &format!("--pwfile={}", path(&pwfile)),
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_server();
        pg
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e} (setpriv is in util-linux)"))
    }

    fn start_server(&mut self) {
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=20",
            self.port,
            path(self.dir.path())
        );
        let out = self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                path(&self.data_dir()),
                "-l",
                path(&log),
                "-o",
                &options,
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&log, 20)
        );
        self.running = true;
    }

    /// `postgresql://gatekeeper:<password>@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgresql://{USER}:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// Runs SQL with psql as the superuser; panics on failure. Returns stdout.
    pub fn psql(&self, sql: &str) -> String {
        let psql = ["psql"]
            .iter()
            .map(|t| self.bin.join(t))
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let out = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql])
            .env("PGPASSWORD", &self.password)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stops the server now (immediate shutdown).
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.run(
                "pg_ctl",
                &["stop", "-D", path(&data), "-m", "immediate", "-w"],
            );
            self.running = false;
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}
