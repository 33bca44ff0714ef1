//! The figures of a bench run: samples per (case, operation, tool), their summary, the
//! issue's targets with PASS/MISS, as a text table and as JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Case, MIB};

/// One run of one command.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Sample {
    /// Wall time, seconds, process start included.
    pub(super) wall: f64,
    /// Peak resident set size of the client, KiB.
    pub(super) rss_kib: Option<u64>,
    /// Client CPU (user + system), seconds.
    pub(super) cpu: Option<f64>,
    /// The registry's CPU over the same interval, seconds.
    pub(super) registry_cpu: Option<f64>,
}

impl Sample {
    /// Adds a second command run as part of the same operation (curl's POST before its PUT).
    pub(super) fn add(&mut self, other: &Self) {
        self.wall += other.wall;
        self.rss_kib = self.rss_kib.max(other.rss_kib);
        self.cpu = sum(self.cpu, other.cpu);
        self.registry_cpu = sum(self.registry_cpu, other.registry_cpu);
    }
}

fn sum(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// All samples of one operation by one tool.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) case: Case,
    pub(super) op: String,
    pub(super) tool: String,
    /// Payload bytes, for a MiB/s figure.
    pub(super) bytes: Option<u64>,
    pub(super) samples: Vec<Sample>,
    /// Why there are no samples ("not available yet").
    pub(super) note: Option<String>,
}

/// Median, minimum and maximum.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stats {
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

fn stats(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some(Stats {
        median,
        min: values[0],
        max: values[n - 1],
    })
}

impl Row {
    pub(super) fn wall(&self) -> Option<Stats> {
        stats(self.samples.iter().map(|s| s.wall))
    }

    fn median_of(&self, f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        stats(self.samples.iter().filter_map(f)).map(|s| s.median)
    }

    /// The highest peak RSS over the runs, MiB.
    fn rss_mib(&self) -> Option<f64> {
        self.samples
            .iter()
            .filter_map(|s| s.rss_kib)
            .max()
            .map(|k| k as f64 / 1024.0)
    }

    /// MiB/s at the median wall time.
    fn rate(&self) -> Option<f64> {
        let bytes = self.bytes? as f64 / MIB as f64;
        let wall = self.wall()?;
        (bytes >= 1.0).then(|| bytes / wall.median)
    }
}

/// Everything measured, in the order first recorded.
#[derive(Debug, Default)]
pub(super) struct Results {
    pub(super) rows: Vec<Row>,
}

impl Results {
    fn row(&mut self, case: Case, op: &str, tool: &str, bytes: Option<u64>) -> &mut Row {
        let index = match self
            .rows
            .iter()
            .position(|r| r.case == case && r.op == op && r.tool == tool)
        {
            Some(index) => index,
            None => {
                self.rows.push(Row {
                    case,
                    op: op.to_owned(),
                    tool: tool.to_owned(),
                    bytes,
                    samples: Vec::new(),
                    note: None,
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[index]
    }

    pub(super) fn record(
        &mut self,
        case: Case,
        op: &str,
        tool: &str,
        bytes: Option<u64>,
        sample: Sample,
    ) {
        self.row(case, op, tool, bytes).samples.push(sample);
    }

    pub(super) fn note(&mut self, case: Case, op: &str, tool: &str, note: &str) {
        self.row(case, op, tool, None).note = Some(note.to_owned());
    }

    fn find(&self, case: Case, op_prefix: &str, tool: &str) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.case == case && r.op.starts_with(op_prefix) && r.tool == tool && !r.samples.is_empty()
        })
    }

    fn median(&self, case: Case, op_prefix: &str, tool: &str) -> Option<f64> {
        Some(self.find(case, op_prefix, tool)?.wall()?.median)
    }

    /// The targets, judged on this run's figures.
    fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let acr_push = self.median(Case::Large, "push", "acr");
        let curl_push = self.median(Case::Large, "push", "curl");
        targets.push(Target::judge(
            "large push within 10% of bare curl PUT",
            "acr <= 1.10 x curl",
            acr_push.zip(curl_push).map(|(acr, curl)| {
                (
                    acr <= 1.10 * curl,
                    format!("acr {acr:.2} s vs curl {curl:.2} s ({:.2}x)", acr / curl),
                )
            }),
        ));
        let pull = self.find(Case::Large, "pull", "acr").and_then(Row::rate);
        let disk = self
            .rows
            .iter()
            .find(|r| r.case == Case::Large && r.tool == "curl" && r.op.ends_with("fsync"))
            .and_then(Row::rate)
            .map_or_else(String::new, |rate| {
                format!(" (curl into a file + fsync: {rate:.0} MiB/s)")
            });
        targets.push(Target::judge(
            "large pull >= 1 GiB/s (digest verified, file written)",
            ">= 1024 MiB/s",
            pull.map(|rate| (rate >= 1024.0, format!("{rate:.0} MiB/s{disk}"))),
        ));
        for (op, peers, what) in [
            (
                "push",
                &["skopeo", "oras-py"][..],
                "100 x 10 KiB push >= 2x faster than both peers",
            ),
            (
                "pull",
                &["skopeo"][..],
                "100 x 10 KiB pull >= 2x faster than skopeo",
            ),
        ] {
            let acr = self.median(Case::Small, op, "acr");
            let peer_times: Vec<(&str, f64)> = peers
                .iter()
                .filter_map(|p| Some((*p, self.median(Case::Small, op, p)?)))
                .collect();
            let judged = acr.filter(|_| !peer_times.is_empty()).map(|acr| {
                let ok = peer_times.iter().all(|(_, t)| acr * 2.0 <= *t);
                let detail = peer_times
                    .iter()
                    .map(|(p, t)| format!("{p} {t:.2} s = {:.1}x", t / acr))
                    .collect::<Vec<_>>()
                    .join(", ");
                (ok, format!("acr {acr:.2} s; {detail}"))
            });
            targets.push(Target::judge(what, "ratio >= 2.0", judged));
        }
        let rss = self
            .rows
            .iter()
            .filter(|r| r.tool == "acr" && matches!(r.case, Case::Large | Case::Small))
            .filter_map(Row::rss_mib)
            .reduce(f64::max);
        targets.push(Target::judge(
            "acr peak RSS < 64 MiB (cases 1 and 2)",
            "< 64 MiB",
            rss.map(|mib| (mib < 64.0, format!("{mib:.1} MiB"))),
        ));
        let startup = self.median(Case::Startup, "--version", "acr");
        targets.push(Target::judge(
            "`acr --version` start-up < 10 ms",
            "< 10 ms",
            startup.map(|s| (s < 0.010, format!("{:.1} ms", s * 1000.0))),
        ));
        // With a mount, no blob crosses the client: the copy costs a few requests, far less
        // than the same copy between two registries (inferred from time, not from bytes).
        let same = self.median(Case::Copy, "copy", "acr");
        let cross = self
            .rows
            .iter()
            .find(|r| r.case == Case::Copy && r.tool == "acr" && r.op.ends_with("two registries"))
            .and_then(Row::wall)
            .map(|w| w.median);
        let unavailable = self
            .rows
            .iter()
            .any(|r| r.case == Case::Copy && r.tool == "acr" && r.note.is_some());
        let mut copy = Target::judge(
            "same-registry copy: no blob bytes cross the client (mount)",
            "same-registry < 0.25 x cross-registry time",
            same.zip(cross).map(|(same, cross)| {
                (
                    same < 0.25 * cross,
                    format!("same registry {same:.2} s, two registries {cross:.2} s"),
                )
            }),
        );
        if unavailable {
            copy.status = "N/A";
            copy.detail = "not available yet (acr has no copy command)".to_owned();
        }
        targets.push(copy);
        targets
    }

    /// The table, the targets and the JSON document.
    pub(super) fn finish(&self, meta: &Meta) -> Report {
        let mut text = String::new();
        let meta_line = meta.line();
        let _ = writeln!(text, "\n{meta_line}");
        let _ = writeln!(
            text,
            "\n{:<36} {:<13} {:>8} {:>17} {:>8} {:>8} {:>7} {:>7}",
            "operation", "tool", "median s", "min-max s", "MiB/s", "RSS MiB", "cpu s", "reg cpu"
        );
        let mut case = None;
        for row in &self.rows {
            if case != Some(row.case) {
                case = Some(row.case);
                let _ = writeln!(text, "-- {}", row.case.title());
            }
            let Some(wall) = row.wall() else {
                let _ = writeln!(
                    text,
                    "{:<36} {:<13} {}",
                    row.op,
                    row.tool,
                    row.note.as_deref().unwrap_or("-")
                );
                continue;
            };
            let fmt = |v: Option<f64>, digits: usize| {
                v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
            };
            let digits = if wall.median < 0.1 { 4 } else { 2 };
            let _ = writeln!(
                text,
                "{:<36} {:<13} {:>8} {:>17} {:>8} {:>8} {:>7} {:>7}",
                row.op,
                row.tool,
                format!("{:.digits$}", wall.median),
                format!("{:.digits$}-{:.digits$}", wall.min, wall.max),
                fmt(row.rate(), 0),
                fmt(row.rss_mib(), 1),
                fmt(row.median_of(|s| s.cpu), 2),
                fmt(row.median_of(|s| s.registry_cpu), 2),
            );
        }
        let targets = self.targets();
        let _ = writeln!(text, "\ntargets (issue 9):");
        for t in &targets {
            let _ = writeln!(text, "  {:<5} {:<58} {}", t.status, t.name, t.detail);
        }
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let wall = r.wall();
                json!({
                    "case": r.case.name(),
                    "operation": r.op,
                    "tool": r.tool,
                    "bytes": r.bytes,
                    "runs": r.samples.len(),
                    "wall_s": r.samples.iter().map(|s| s.wall).collect::<Vec<_>>(),
                    "median_s": wall.map(|w| w.median),
                    "min_s": wall.map(|w| w.min),
                    "max_s": wall.map(|w| w.max),
                    "mib_per_s": r.rate(),
                    "peak_rss_mib": r.rss_mib(),
                    "client_cpu_s": r.median_of(|s| s.cpu),
                    "registry_cpu_s": r.median_of(|s| s.registry_cpu),
                    "note": r.note,
                })
            })
            .collect();
        let json = json!({
            "meta": meta.json(),
            "results": rows,
            "targets": targets.iter().map(|t| json!({
                "target": t.name,
                "threshold": t.threshold,
                "status": t.status,
                "measured": t.detail,
            })).collect::<Vec<_>>(),
        });
        Report {
            text,
            json,
            meta_line,
        }
    }
}

/// One target of the issue and how this run did.
#[derive(Debug)]
struct Target {
    name: &'static str,
    threshold: &'static str,
    status: &'static str,
    detail: String,
}

impl Target {
    fn judge(name: &'static str, threshold: &'static str, judged: Option<(bool, String)>) -> Self {
        let (status, detail) = match judged {
            Some((true, detail)) => ("PASS", detail),
            Some((false, detail)) => ("MISS", detail),
            None => ("-", "not measured in this run".to_owned()),
        };
        Self {
            name,
            threshold,
            status,
            detail,
        }
    }
}

/// What the run was and where.
#[derive(Debug)]
pub(super) struct Meta {
    pub(super) quick: bool,
    pub(super) runs: usize,
    pub(super) large_bytes: u64,
    pub(super) copy_bytes: u64,
    pub(super) cpu: String,
    pub(super) cores: usize,
    pub(super) load: String,
    pub(super) seconds: f64,
    pub(super) acr_version: String,
    pub(super) skopeo_version: Option<String>,
    pub(super) oras_version: Option<String>,
}

impl Meta {
    fn line(&self) -> String {
        format!(
            "{} run(s){}; {} core(s) {}; load average at the end {}; {}; {}; {}",
            self.runs,
            if self.quick { ", --quick" } else { "" },
            self.cores,
            self.cpu,
            self.load,
            self.acr_version,
            self.skopeo_version.as_deref().unwrap_or("no skopeo"),
            self.oras_version.as_deref().unwrap_or("no oras-py"),
        )
    }

    fn json(&self) -> Value {
        json!({
            "quick": self.quick,
            "runs": self.runs,
            "large_bytes": self.large_bytes,
            "copy_bytes": self.copy_bytes,
            "cpu": self.cpu,
            "cores": self.cores,
            "load_average_at_end": self.load,
            "seconds": self.seconds,
            "acr": self.acr_version,
            "skopeo": self.skopeo_version,
            "oras_py": self.oras_version,
        })
    }
}

/// The printed table, the JSON document and the one-line description of the run.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) text: String,
    pub(super) json: Value,
    pub(super) meta_line: String,
}
