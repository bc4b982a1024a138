//! The metrics page in both formats scrapers read: the Prometheus text
//! format 0.0.4 (the default, and for `Accept: text/plain`) and OpenMetrics
//! 1.0 (when asked for), with the families read at scrape time — the
//! process's, the build's, the database pools' and the lockout's — beside
//! the registry's.

use std::fmt::Write as _;

/// Which text a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Exposition {
    /// OpenMetrics when the scraper names it (as Prometheus itself does,
    /// ranking it first); the classic text otherwise.
    pub fn from_accept(accept: Option<&str>) -> Exposition {
        match accept {
            Some(a)
                if a.to_ascii_lowercase()
                    .contains("application/openmetrics-text") =>
            {
                Exposition::OpenMetrics
            }
            _ => Exposition::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// A constant 1 whose labels are the information (`…_info`).
    Info,
}

/// A family read at scrape time.
#[derive(Debug, Clone)]
pub struct Family {
    /// Without `_total` (counters) or `_info` (info).
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    pub fn one(name: &'static str, kind: Kind, help: &'static str, value: f64) -> Family {
        Family {
            name,
            kind,
            help,
            samples: vec![(Vec::new(), value)],
        }
    }

    fn write(&self, out: &mut String, format: Exposition) {
        let (family, sample, kind) = match (self.kind, format) {
            (Kind::Counter, Exposition::OpenMetrics) => (
                self.name.to_owned(),
                format!("{}_total", self.name),
                "counter",
            ),
            (Kind::Counter, Exposition::Prometheus) => {
                let total = format!("{}_total", self.name);
                (total.clone(), total, "counter")
            }
            (Kind::Gauge, _) => (self.name.to_owned(), self.name.to_owned(), "gauge"),
            (Kind::Info, Exposition::OpenMetrics) => {
                (self.name.to_owned(), format!("{}_info", self.name), "info")
            }
            (Kind::Info, Exposition::Prometheus) => {
                let info = format!("{}_info", self.name);
                (info.clone(), info, "gauge")
            }
        };
        let _ = writeln!(out, "# HELP {family} {}", self.help);
        let _ = writeln!(out, "# TYPE {family} {kind}");
        for (labels, value) in &self.samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let _ = writeln!(out, "{sample}{labels} {value}");
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The registry's OpenMetrics text and `extra`, in `format`.
pub fn render(openmetrics: &str, extra: &[Family], format: Exposition) -> String {
    let body = openmetrics
        .trim_end()
        .strip_suffix("# EOF")
        .unwrap_or(openmetrics);
    let mut out = match format {
        Exposition::OpenMetrics => body.to_owned(),
        Exposition::Prometheus => to_prometheus(body),
    };
    for family in extra {
        family.write(&mut out, format);
    }
    if format == Exposition::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// OpenMetrics text (without `# EOF`) as the classic format: a counter
/// family is named with its `_total`, and there are no `# UNIT` lines and
/// no `_created` samples.
fn to_prometheus(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        if let Some(renamed) = renamed {
            out.push_str(&renamed);
        } else if line.starts_with('#') {
            out.push_str(line);
        } else {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            if name.ends_with("_created") {
                continue;
            }
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// This process's standard families, from `/proc` (Linux): CPU time,
/// resident memory, open and allowed file descriptors, and its start.
pub fn process(start_time_seconds: f64) -> Vec<Family> {
    let mut families = Vec::new();
    // /proc counts CPU in USER_HZ, which the kernel ABI fixes at 100.
    if let Some((utime, stime)) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            Some((
                fields.get(11)?.parse::<f64>().ok()?,
                fields.get(12)?.parse::<f64>().ok()?,
            ))
        })
    {
        families.push(Family::one(
            "process_cpu_seconds",
            Kind::Counter,
            "User and system CPU time spent in seconds.",
            (utime + stime) / 100.0,
        ));
    }
    if let Some(kib) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
    {
        families.push(Family::one(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            kib * 1024.0,
        ));
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        // Less the one reading the directory.
        let open = fds.count().saturating_sub(1);
        families.push(Family::one(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            open as f64,
        ));
    }
    if let Some(max) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))?
                .split_whitespace()
                .nth(3)?
                .parse::<f64>()
                .ok()
        })
    {
        families.push(Family::one(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
            max,
        ));
    }
    families.push(Family::one(
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since unix epoch in seconds.",
        start_time_seconds,
    ));
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: &str = "# HELP nephele_http_requests HTTP requests.\n\
        # TYPE nephele_http_requests counter\n\
        nephele_http_requests_total{route=\"/x\"} 3\n\
        nephele_http_requests_created{route=\"/x\"} 1.7e9\n\
        # HELP nephele_tasks_running Tasks running.\n\
        # TYPE nephele_tasks_running gauge\n\
        # UNIT nephele_tasks_running tasks\n\
        nephele_tasks_running 2\n\
        # EOF\n";

    #[test]
    fn the_classic_text_names_counters_with_total_and_has_no_eof() {
        let build = Family {
            name: "nephele_build",
            kind: Kind::Info,
            help: "The build.",
            samples: vec![(vec![("version", "0.1.0".into())], 1.0)],
        };
        let text = render(
            REGISTRY,
            std::slice::from_ref(&build),
            Exposition::Prometheus,
        );
        assert_eq!(
            text,
            "# HELP nephele_http_requests_total HTTP requests.\n\
             # TYPE nephele_http_requests_total counter\n\
             nephele_http_requests_total{route=\"/x\"} 3\n\
             # HELP nephele_tasks_running Tasks running.\n\
             # TYPE nephele_tasks_running gauge\n\
             nephele_tasks_running 2\n\
             # HELP nephele_build_info The build.\n\
             # TYPE nephele_build_info gauge\n\
             nephele_build_info{version=\"0.1.0\"} 1\n"
        );
        let open = render(REGISTRY, &[build], Exposition::OpenMetrics);
        assert!(open.ends_with(
            "# HELP nephele_build The build.\n# TYPE nephele_build info\nnephele_build_info{version=\"0.1.0\"} 1\n# EOF\n"
        ), "{open}");
        assert_eq!(open.matches("# EOF").count(), 1);
    }

    #[test]
    fn scrapers_choose_by_accept() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            Exposition::from_accept(Some(prometheus)),
            Exposition::OpenMetrics
        );
        assert_eq!(
            Exposition::from_accept(Some("text/plain")),
            Exposition::Prometheus
        );
        assert_eq!(Exposition::from_accept(None), Exposition::Prometheus);
    }

    #[test]
    fn this_process_is_described() {
        let names: Vec<&str> = process(1.0).iter().map(|f| f.name).collect();
        for name in [
            "process_cpu_seconds",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(names.contains(&name), "{name}: {names:?}");
        }
    }
}
