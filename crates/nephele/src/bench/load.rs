//! The load loop: one task per connection, a shared schedule when a rate is
//! given, a histogram per connection merged at the end, a progress line,
//! and the server's memory and CPU read from /proc.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::scenario::{Fixture, Worker};
use super::{BenchArgs, Latency, Report, ServerUsage};
use crate::cli::{Exit, Failure};

/// Time a request may outlive the run before it is abandoned.
const GRACE: Duration = Duration::from_secs(5);

/// What one connection measured.
struct Tally {
    latency: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
}

/// Counters the progress line reads.
#[derive(Default)]
struct Live {
    ok: AtomicU64,
    failed: AtomicU64,
}

fn histogram() -> Result<Histogram<u64>, Failure> {
    // Microseconds, 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| Failure::new(Exit::Error, format!("histogram: {e}")))
}

pub async fn drive(fixture: &Fixture, args: &BenchArgs) -> Result<Report, Failure> {
    let warmup = Duration::from(args.warmup);
    let duration = Duration::from(args.duration);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let period = args.rate.map(|r| Duration::from_secs_f64(1.0 / r as f64));
    let slot = AtomicU64::new(0);
    let live = Arc::new(Live::default());

    let progress = tokio::spawn(progress(live.clone(), start, measure_from, end));
    let server = args.server_pid.map(|pid| Sampler::start(pid, measure_from));

    let connections = (0..args.connections).map(|_| {
        let slot = &slot;
        let live = &live;
        async move {
            let mut worker = Worker::new(fixture)?;
            let mut tally = Tally {
                latency: histogram()?,
                statuses: BTreeMap::new(),
            };
            loop {
                let intended = match period {
                    Some(period) => {
                        let n = slot.fetch_add(1, Ordering::Relaxed);
                        let at = start + period.mul_f64(n as f64);
                        if at >= end {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        now
                    }
                };
                let limit = (end + GRACE).saturating_duration_since(Instant::now());
                let outcome = match tokio::time::timeout(limit, worker.once()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err("timeout"),
                };
                let ok = matches!(outcome, Ok(200..=299));
                if ok {
                    live.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    live.failed.fetch_add(1, Ordering::Relaxed);
                }
                if intended < measure_from {
                    continue;
                }
                let key = match outcome {
                    Ok(code) => code.to_string(),
                    Err(what) => what.to_owned(),
                };
                *tally.statuses.entry(key).or_default() += 1;
                let micros = u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latency.saturating_record(micros.max(1));
            }
            Ok::<Tally, Failure>(tally)
        }
    });
    let tallies = futures::future::join_all(connections).await;
    let elapsed = Instant::now()
        .min(end)
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(f64::EPSILON);
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
    let server = match server {
        Some(sampler) => Some(sampler.finish(elapsed).await),
        None => None,
    };

    let mut latency = histogram()?;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for tally in tallies {
        let tally = tally?;
        latency
            .add(&tally.latency)
            .map_err(|e| Failure::new(Exit::Error, format!("histogram: {e}")))?;
        for (k, v) in tally.statuses {
            *statuses.entry(k).or_default() += v;
        }
    }
    let requests: u64 = statuses.values().sum();
    let succeeded: u64 = statuses
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, v)| v)
        .sum();
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok(Report {
        scenario: args.scenario,
        url: fixture.url.clone(),
        auth: args.auth,
        xml: args.xml,
        connections: args.connections,
        rate: args.rate,
        duration_seconds: elapsed,
        warmup_seconds: warmup.as_secs_f64(),
        requests,
        succeeded,
        errors: requests - succeeded,
        throughput: succeeded as f64 / elapsed,
        latency_ms: Latency {
            p50: ms(latency.value_at_quantile(0.5)),
            p90: ms(latency.value_at_quantile(0.9)),
            p99: ms(latency.value_at_quantile(0.99)),
            p999: ms(latency.value_at_quantile(0.999)),
            max: ms(latency.max()),
            mean: latency.mean() / 1000.0,
        },
        statuses,
        server,
    })
}

/// A line on stderr every second: on a terminal it rewrites itself.
async fn progress(live: Arc<Live>, start: Instant, measure_from: Instant, end: Instant) {
    let terminal = std::io::stderr().is_terminal();
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let ok = live.ok.load(Ordering::Relaxed);
        let failed = live.failed.load(Ordering::Relaxed);
        let phase = if Instant::now() < measure_from {
            "warm-up"
        } else {
            "measuring"
        };
        let line = format!(
            "{:>5.1}/{:.0} s  {phase:9}  {:>7}/s  {} ok  {} errors",
            start.elapsed().as_secs_f64(),
            (end - start).as_secs_f64(),
            ok - last,
            ok,
            failed
        );
        last = ok;
        if terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

/// Samples a process's resident memory every 100 ms, and its CPU time at
/// the start and end (from /proc, Linux).
struct Sampler {
    pid: u32,
    /// CPU seconds when measuring began, as f64 bits (0 until then).
    cpu_at_start: Arc<AtomicU64>,
    max_rss: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// Clock ticks per second of /proc/PID/stat: 100 on every Linux
/// configuration that matters (USER_HZ).
const TICKS: f64 = 100.0;

fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

impl Sampler {
    fn start(pid: u32, measure_from: Instant) -> Sampler {
        let max_rss = Arc::new(AtomicU64::new(0));
        let cpu_at_start = Arc::new(AtomicU64::new(0));
        let (max, cpu) = (max_rss.clone(), cpu_at_start.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            if let Some(seconds) = cpu_seconds(pid) {
                cpu.store(seconds.to_bits(), Ordering::Relaxed);
            }
            loop {
                if let Some(kib) = rss_kib(pid) {
                    max.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler {
            pid,
            cpu_at_start,
            max_rss,
            task,
        }
    }

    async fn finish(self, elapsed: f64) -> ServerUsage {
        self.task.abort();
        let rss = rss_kib(self.pid).unwrap_or(0);
        let start = f64::from_bits(self.cpu_at_start.load(Ordering::Relaxed));
        let cpu = match cpu_seconds(self.pid) {
            Some(end) if start > 0.0 => (end - start) / elapsed,
            _ => 0.0,
        };
        let mib = |kib: u64| kib as f64 / 1024.0;
        ServerUsage {
            pid: self.pid,
            rss_mib_at_end: mib(rss),
            rss_mib_max: mib(self.max_rss.load(Ordering::Relaxed).max(rss)),
            cpu_cores: cpu,
        }
    }
}
