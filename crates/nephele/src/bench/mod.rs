//! `nephele bench`: a load generator that ships with Nephele, the way
//! `pgbench` ships with PostgreSQL. It signs in with a CLI profile, seeds
//! what its scenario needs (a user, an API client, an API key, instances),
//! drives the server over many connections and reports throughput, latency
//! percentiles and errors by status.
//!
//! No coordinated omission: with `--rate`, every request has an intended
//! send time on a fixed schedule and its latency is measured from that
//! time, so a stalled server is charged for the requests it delayed.
//! Without `--rate` the load is closed (each connection sends when its last
//! answer came) and latency is measured from the actual send.

mod load;
mod scenario;

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::cli::{Exit, Failure, Format, Global};

pub use scenario::Scenario;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// `Authorization: Bearer` with a client-credentials token
    Bearer,
    /// `MC-Api-Key`
    ApiKey,
    /// HTTP Basic with a user's login and password
    Basic,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The load to generate
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// How long to measure, after the warm-up
    #[arg(short, long, default_value = "10s")]
    pub duration: humantime::Duration,
    /// Concurrent connections, one request in flight on each
    #[arg(short, long, default_value_t = 32)]
    pub connections: usize,
    /// Requests per second over all connections, on a fixed schedule (open
    /// loop) [default: as fast as answers come]
    #[arg(long)]
    pub rate: Option<u64>,
    /// Load before measuring, not counted
    #[arg(long, default_value = "2s")]
    pub warmup: humantime::Duration,
    /// Instances the instance scenarios read (made if fewer exist)
    #[arg(long, default_value_t = 100)]
    pub seed_data: usize,
    /// How get-instance, list-instances and mixed authenticate
    #[arg(long, value_enum, default_value = "bearer")]
    pub auth: Auth,
    /// Ask for XML instead of JSON
    #[arg(long)]
    pub xml: bool,
    /// The server's process id, to report its memory and CPU
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// The server process during the measured window.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerUsage {
    pub pid: u32,
    pub rss_mib_at_end: f64,
    pub rss_mib_max: f64,
    /// CPU time over wall time: 2.0 is two cores busy.
    pub cpu_cores: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: Scenario,
    pub url: String,
    pub auth: Auth,
    pub xml: bool,
    pub connections: usize,
    pub rate: Option<u64>,
    pub duration_seconds: f64,
    pub warmup_seconds: f64,
    pub requests: u64,
    pub succeeded: u64,
    pub errors: u64,
    /// Successful requests (for create-instance: tasks ended SUCCESS) per second.
    pub throughput: f64,
    pub latency_ms: Latency,
    /// Answers by HTTP status; `connect`, `timeout` and `task-failed` for
    /// what has none.
    pub statuses: std::collections::BTreeMap<String, u64>,
    pub server: Option<ServerUsage>,
}

impl Report {
    fn text(&self) -> String {
        let mut out = format!(
            "{} against {} — {} connections{}, {:.0} s (+{:.0} s warm-up){}\n",
            self.scenario.name(),
            self.url,
            self.connections,
            self.rate
                .map(|r| format!(", {r}/s scheduled"))
                .unwrap_or_default(),
            self.duration_seconds,
            self.warmup_seconds,
            if self.xml { ", XML" } else { "" },
        );
        out.push_str(&format!(
            "  throughput  {:.0}/s ({} succeeded, {} errors, {} requests)\n",
            self.throughput, self.succeeded, self.errors, self.requests
        ));
        let l = &self.latency_ms;
        out.push_str(&format!(
            "  latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}\n",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        ));
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        out.push_str(&format!("  statuses    {}\n", statuses.join(", ")));
        if let Some(s) = &self.server {
            out.push_str(&format!(
                "  server      pid {}  RSS {:.1} MiB (max {:.1})  CPU {:.2} cores\n",
                s.pid, s.rss_mib_at_end, s.rss_mib_max, s.cpu_cores
            ));
        }
        out
    }
}

/// Runs a benchmark with the profile's credentials and prints its report;
/// any error answer makes the exit status non-zero.
pub async fn run(global: &Global, args: BenchArgs) -> Result<(), Failure> {
    if args.connections == 0 || args.connections > 10_000 {
        return Err(Failure::new(
            Exit::Usage,
            "--connections must be 1 to 10000",
        ));
    }
    if args.rate == Some(0) {
        return Err(Failure::new(Exit::Usage, "--rate must be at least 1"));
    }
    if Duration::from(args.duration).is_zero() {
        return Err(Failure::new(Exit::Usage, "--duration must be more than 0"));
    }
    let mut session = crate::cli::session::Session::open(global).await?;
    let fixture = scenario::Fixture::seed(&mut session, &args).await?;
    let result = load::drive(&fixture, &args).await;
    fixture.clean_up(&mut session).await;
    let report = result?;
    match global.output {
        Some(Format::Json) => println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::new(Exit::Error, format!("cannot print: {e}")))?
        ),
        _ => print!("{}", report.text()),
    }
    if report.succeeded == 0 || report.errors > 0 {
        return Err(Failure::new(
            Exit::Error,
            format!("{} of {} requests failed", report.errors, report.requests),
        ));
    }
    Ok(())
}
