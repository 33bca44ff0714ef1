//! `cargo xtask bench`: `acr` side by side with skopeo and the `oras` Python package on the
//! same local docker-registry, in one run, beside the physical limits of this machine (SHA-256
//! on one core, the registry's ingest and serve rates with bare `curl`).
//!
//! Every push run gets a fresh registry (empty storage); every tool runs once per round, so
//! the ratios hold on a noisy machine. Wall time is measured here around the whole command
//! (process start included); peak RSS and client CPU come from `/usr/bin/time`, the
//! registry's CPU from `/proc/<pid>/stat`. The report is a table on standard output,
//! `target/bench/report.json` and `target/bench/report.svg`. A benchmark reports: a missed
//! target is printed as MISS, it does not fail the task.

mod report;
mod svg;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use report::{Results, Sample};

const MIB: u64 = 1 << 20;
const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--runs N] [--cases hash,large,small,copy,startup]";

/// skopeo's blob-location cache: with it, skopeo cross-repo mounts blobs it has seen before
/// and a repeated push costs nothing, so it is removed before every skopeo run.
const SKOPEO_CACHES: [&str; 2] = [
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
    ".local/share/containers/cache/blob-info-cache-v1.boltdb",
];

/// Drives the `oras` Python package: `push TARGET FILE...` or `pull TARGET OUTDIR`.
const ORAS_PY: &str = "\
import sys, oras.client
op, target = sys.argv[1], sys.argv[2]
c = oras.client.OrasClient(insecure=True)
if op == 'push':
    c.push(target=target, files=sys.argv[3:], disable_path_validation=True)
else:
    c.pull(target=target, outdir=sys.argv[3])
";

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    Hash,
    Large,
    Small,
    Copy,
    Startup,
}

impl Case {
    const ALL: [Self; 5] = [
        Self::Hash,
        Self::Large,
        Self::Small,
        Self::Copy,
        Self::Startup,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::Large => "large",
            Self::Small => "small",
            Self::Copy => "copy",
            Self::Startup => "startup",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Hash => "5. SHA-256 on one core (physical limit)",
            Self::Large => "1. one large blob: push and pull (curl = registry limit)",
            Self::Small => "2. 100 x 10 KiB files: push and pull",
            Self::Copy => "3. copy of a 10-layer artifact",
            Self::Startup => "start-up: `--version`",
        }
    }
}

/// The command line.
#[derive(Debug)]
struct Options {
    quick: bool,
    runs: usize,
    cases: Vec<Case>,
    /// A prebuilt `acr` to measure instead of building one.
    acr: Option<PathBuf>,
}

fn parse(args: &[&str]) -> anyhow::Result<Options> {
    let mut options = Options {
        quick: false,
        runs: 0,
        cases: Vec::new(),
        acr: None,
    };
    let mut args = args.iter().copied().peekable();
    while let Some(arg) = args.next() {
        match arg {
            "--quick" => options.quick = true,
            "--runs" => {
                let n = args.next().context(USAGE)?;
                options.runs = n.parse().context("--runs takes a whole number")?;
                ensure!(options.runs > 0, "--runs must be at least 1");
            }
            "--cases" => {
                while let Some(value) = args.next_if(|a| !a.starts_with("--")) {
                    for name in value.split(',').filter(|n| !n.is_empty()) {
                        let case = Case::ALL
                            .into_iter()
                            .find(|c| c.name() == name)
                            .with_context(|| format!("unknown case {name:?}\n{USAGE}"))?;
                        options.cases.push(case);
                    }
                }
            }
            "--acr" => options.acr = Some(PathBuf::from(args.next().context(USAGE)?)),
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if options.runs == 0 {
        options.runs = if options.quick { 1 } else { 3 };
    }
    if options.cases.is_empty() {
        options.cases = Case::ALL.to_vec();
    }
    options.cases.sort();
    options.cases.dedup();
    Ok(options)
}

pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let started = Instant::now();
    let mut bench = Bench::prepare(&options)?;
    for &case in &options.cases {
        super::step(case.title());
        match case {
            Case::Hash => bench.hash()?,
            Case::Large => bench.large()?,
            Case::Small => bench.small()?,
            Case::Copy => bench.copy()?,
            Case::Startup => bench.startup()?,
        }
    }
    let report = bench.results.finish(&bench.meta(started.elapsed()));
    print!("{}", report.text);
    let json_path = bench.dir.join("report.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&report.json)? + "\n",
    )
    .with_context(|| format!("writing {}", json_path.display()))?;
    let svg_path = bench.dir.join("report.svg");
    std::fs::write(&svg_path, svg::chart(&bench.results, &report.meta_line))
        .with_context(|| format!("writing {}", svg_path.display()))?;
    println!(
        "\nwrote {} and {} in {:.0?}",
        json_path.display(),
        svg_path.display(),
        started.elapsed()
    );
    Ok(())
}

/// Sizes of the generated inputs.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    large: u64,
    small_count: usize,
    small: u64,
    copy_layers: usize,
    copy_total: u64,
}

/// The state of one benchmark run.
struct Bench {
    quick: bool,
    runs: usize,
    sizes: Sizes,
    dir: PathBuf,
    inputs: PathBuf,
    work: PathBuf,
    acr: PathBuf,
    docker_config: PathBuf,
    time: Option<PathBuf>,
    clock_ticks: f64,
    skopeo: bool,
    oras: bool,
    acr_copy: Option<String>,
    /// Whether `acr pull` can split one blob into parallel ranged downloads.
    acr_ranged: bool,
    large_digest: String,
    results: Results,
}

impl Bench {
    fn prepare(options: &Options) -> anyhow::Result<Self> {
        let root = super::root();
        let dir = root.join("target/bench");
        let inputs = dir.join("inputs");
        let work = dir.join("work");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&inputs)?;
        std::fs::create_dir_all(&work)?;
        let docker_config = work.join("docker-config");
        std::fs::create_dir_all(&docker_config)?;

        let acr = match &options.acr {
            Some(acr) => std::path::absolute(acr)?,
            None => {
                super::step("building acr (release)");
                super::run(super::cargo().args([
                    "build",
                    "--quiet",
                    "--release",
                    "-p",
                    "acr-cli",
                ]))?;
                root.join("target/release/acr")
            }
        };

        super::step("checking the tools");
        let time = ensure_gnu_time();
        let clock_ticks = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0);
        if let Err(e) = super::ensure_peers() {
            eprintln!("warning: peers not installed, measuring acr alone: {e:#}");
        }
        let works = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let skopeo = works("skopeo", &["--version"]);
        let oras = works("python3", &["-c", "import oras.client"]);
        let help = Command::new(&acr).arg("--help").output()?;
        let acr_copy = copy_command(&String::from_utf8_lossy(&help.stdout));
        let pull_help = Command::new(&acr).args(["pull", "--help"]).output()?;
        let acr_ranged = String::from_utf8_lossy(&pull_help.stdout)
            .to_lowercase()
            .contains("range");
        eprintln!(
            "/usr/bin/time: {}; skopeo: {skopeo}; oras (Python): {oras}; acr copy command: {}",
            time.as_ref()
                .map_or_else(|| "missing (no RSS)".into(), |t| t.display().to_string()),
            acr_copy.as_deref().unwrap_or("none")
        );

        let sizes = if options.quick {
            Sizes {
                large: 64 * MIB,
                small_count: 100,
                small: 10 * 1024,
                copy_layers: 10,
                copy_total: 64 * MIB,
            }
        } else {
            Sizes {
                large: 1024 * MIB,
                small_count: 100,
                small: 10 * 1024,
                copy_layers: 10,
                copy_total: 512 * MIB,
            }
        };
        let mut bench = Self {
            quick: options.quick,
            runs: options.runs,
            sizes,
            dir,
            inputs,
            work,
            acr,
            docker_config,
            time,
            clock_ticks,
            skopeo,
            oras,
            acr_copy,
            acr_ranged,
            large_digest: String::new(),
            results: Results::default(),
        };
        super::step("generating inputs in target/bench/inputs");
        bench.generate_inputs(&options.cases)?;
        Ok(bench)
    }

    fn meta(&self, elapsed: Duration) -> report::Meta {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_owned())
            })
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let load = std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        report::Meta {
            quick: self.quick,
            runs: self.runs,
            large_bytes: self.sizes.large,
            copy_bytes: self.sizes.copy_total,
            cpu,
            cores,
            load,
            seconds: elapsed.as_secs_f64(),
            acr_version: version_line(&self.acr, &["--version"]),
            skopeo_version: self
                .skopeo
                .then(|| version_line(Path::new("skopeo"), &["--version"])),
            oras_version: self.oras.then(|| {
                version_line(
                    Path::new("python3"),
                    &[
                        "-c",
                        "import importlib.metadata as m; print('oras', m.version('oras'))",
                    ],
                )
            }),
        }
    }

    fn large_name(&self) -> String {
        if self.sizes.large >= 1024 * MIB {
            format!("{} GiB", self.sizes.large / (1024 * MIB))
        } else {
            format!("{} MiB", self.sizes.large / MIB)
        }
    }

    fn large_file(&self) -> PathBuf {
        self.inputs.join("large.bin")
    }

    fn small_dir(&self) -> PathBuf {
        self.inputs.join("small")
    }

    fn small_names(&self) -> Vec<String> {
        (1..=self.sizes.small_count)
            .map(|i| format!("f{i:03}.bin"))
            .collect()
    }

    /// Random inputs, reused across runs when their sizes match, read once so they sit in
    /// the page cache; the OCI layouts skopeo pushes from are written by `acr push --oci-layout`.
    fn generate_inputs(&mut self, cases: &[Case]) -> anyhow::Result<()> {
        let needs = |c: Case| cases.contains(&c);
        if needs(Case::Hash) || needs(Case::Large) {
            let large = self.large_file();
            random_file(&large, self.sizes.large)?;
            warm(&large)?;
            let out = command_output(Command::new("openssl").args([
                OsStr::new("dgst"),
                OsStr::new("-sha256"),
                large.as_os_str(),
            ]))?;
            self.large_digest = out
                .rsplit(['=', ' '])
                .next()
                .map(|h| format!("sha256:{}", h.trim()))
                .context("openssl dgst printed no digest")?;
            if needs(Case::Large) && self.skopeo {
                self.layout("layout-large", &self.inputs.clone(), &["large.bin"])?;
            }
        }
        if needs(Case::Small) {
            let dir = self.small_dir();
            std::fs::create_dir_all(&dir)?;
            let names = self.small_names();
            for name in &names {
                random_file(&dir.join(name), self.sizes.small)?;
            }
            if self.skopeo {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                self.layout("layout-small", &dir, &names)?;
            }
        }
        if needs(Case::Copy) {
            let dir = self.inputs.join("copy");
            std::fs::create_dir_all(&dir)?;
            let layer = self.sizes.copy_total / self.sizes.copy_layers as u64;
            for i in 1..=self.sizes.copy_layers {
                random_file(&dir.join(format!("layer{i:02}.bin")), layer)?;
            }
        }
        Ok(())
    }

    /// Writes an OCI image layout (tag `v1`) holding `files` with `acr push --oci-layout`.
    fn layout(&self, name: &str, cwd: &Path, files: &[&str]) -> anyhow::Result<()> {
        let layout = self.inputs.join(name);
        let _ = std::fs::remove_dir_all(&layout);
        let mut cmd = self.acr_command(cwd);
        cmd.args([
            "push",
            "--oci-layout",
            "--artifact-type",
            "application/vnd.acr.bench.v1",
        ])
        .arg(format!("{}:v1", layout.display()))
        .args(files)
        .stdout(Stdio::null());
        super::run(&mut cmd)
    }

    fn acr_command(&self, cwd: &Path) -> Command {
        let mut cmd = Command::new(&self.acr);
        cmd.current_dir(cwd)
            .env("DOCKER_CONFIG", &self.docker_config);
        cmd
    }

    /// Runs `argv` once, timed, with its peak RSS and CPU from `/usr/bin/time` and the
    /// registry's CPU over the same interval; fails with the command's output.
    fn measure(
        &self,
        cwd: &Path,
        argv: &[OsString],
        registry: Option<&BenchRegistry>,
    ) -> anyhow::Result<Sample> {
        let stats = self.work.join("time.txt");
        let log = self.work.join("command.log");
        let mut cmd = match &self.time {
            Some(time) => {
                let mut cmd = Command::new(time);
                cmd.args(["-f", "%M %U %S", "-o"]).arg(&stats).args(argv);
                cmd
            }
            None => {
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                cmd
            }
        };
        let out = File::create(&log)?;
        cmd.current_dir(cwd)
            .env("DOCKER_CONFIG", &self.docker_config)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let shown = argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        // The previous step's dirty pages (a pushed blob in the registry's storage, a pulled
        // file) go to disk first, so their write-back does not land on this measurement.
        let _ = Command::new("sync").status();
        let registry_before = registry.and_then(|r| r.cpu_seconds(self.clock_ticks));
        let started = Instant::now();
        let status = cmd.status().with_context(|| format!("starting {shown}"))?;
        let wall = started.elapsed().as_secs_f64();
        let registry_after = registry.and_then(|r| r.cpu_seconds(self.clock_ticks));
        if !status.success() {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = output.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("`{shown}` failed with {status}:\n{}", tail.join("\n"));
        }
        let mut sample = Sample {
            wall,
            registry_cpu: registry_before
                .zip(registry_after)
                .map(|(before, after)| after - before),
            ..Sample::default()
        };
        if self.time.is_some() {
            let text = std::fs::read_to_string(&stats).unwrap_or_default();
            let fields: Vec<&str> = text
                .lines()
                .last()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            if let [rss, user, system] = fields.as_slice() {
                sample.rss_kib = rss.parse().ok();
                sample.cpu = user
                    .parse::<f64>()
                    .ok()
                    .zip(system.parse::<f64>().ok())
                    .map(|(u, s)| u + s);
            }
        }
        Ok(sample)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.work.join("command.log")).unwrap_or_default()
    }

    /// Case 5: SHA-256 of the large file with coreutils, OpenSSL and acr's own `Digester`.
    fn hash(&mut self) -> anyhow::Result<()> {
        let built = super::run(super::cargo().args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "xtask",
            "--features",
            "hash-bench",
            "--bin",
            "bench-hash",
        ]));
        if let Err(e) = &built {
            eprintln!("warning: acr's Digester not measured: {e:#}");
        }
        let hasher = super::root().join("target/release/bench-hash");
        let large = self.large_file();
        let op = format!("sha256 {}", self.large_name());
        let bytes = Some(self.sizes.large);
        for run in 1..=self.runs {
            eprintln!("run {run}/{}", self.runs);
            let sample = self.measure(
                &self.inputs,
                &argv(["sha256sum".as_ref(), large.as_os_str()]),
                None,
            )?;
            self.results
                .record(Case::Hash, &op, "sha256sum", bytes, sample);
            let sample = self.measure(
                &self.inputs,
                &argv([
                    "openssl".as_ref(),
                    "dgst".as_ref(),
                    "-sha256".as_ref(),
                    large.as_os_str(),
                ]),
                None,
            )?;
            self.results
                .record(Case::Hash, &op, "openssl", bytes, sample);
            if built.is_err() {
                continue;
            }
            let mut sample = self.measure(
                &self.inputs,
                &argv([hasher.as_os_str(), large.as_os_str()]),
                None,
            )?;
            let printed = self.log_text();
            let mut words = printed.split_whitespace();
            if let Some(seconds) = words.next().and_then(|s| s.parse().ok()) {
                sample.wall = seconds;
            }
            ensure!(
                words.next() == Some(self.large_digest.as_str()),
                "acr's Digester disagrees with openssl: {printed}"
            );
            self.results
                .record(Case::Hash, &op, "acr Digester", bytes, sample);
        }
        Ok(())
    }

    /// Case 1: one large blob, pushed to a fresh registry and pulled back, by each tool;
    /// bare curl (POST + one streamed PUT, then GET) gives the registry's own rates.
    fn large(&mut self) -> anyhow::Result<()> {
        let name = self.large_name();
        let push_op = format!("push {name}");
        let pull_op = format!("pull {name}");
        let bytes = Some(self.sizes.large);
        let large = self.large_file();
        // Round 0 warms up and is not recorded: on this VM the first GiB written into fresh
        // memory and disk after a while is up to 2.5x slower for every tool (curl included).
        let first = if self.quick { 1 } else { 0 };
        for run in first..=self.runs {
            let recorded = self.results.rows.len();
            if run == 0 {
                eprintln!("warm-up round (not recorded)");
            } else {
                eprintln!("run {run}/{}", self.runs);
            }
            // curl: the registry's ingest and serve rates.
            {
                let registry = BenchRegistry::start()?;
                let sample = self.curl_push(&registry, "bench/curl", &large)?;
                self.results
                    .record(Case::Large, &push_op, "curl", bytes, sample);
                let url = format!(
                    "{}/v2/bench/curl/blobs/{}",
                    registry.base_url(),
                    self.large_digest
                );
                let sample = self.measure(
                    &self.work,
                    &argv(["curl", "-sS", "-f", "-o", "/dev/null", &url].map(OsStr::new)),
                    Some(&registry),
                )?;
                self.results
                    .record(Case::Large, &pull_op, "curl", bytes, sample);
                // The same GET into a file made durable (as `acr pull` does before its
                // rename): the limit of the disk path beside the network one.
                let file = self.work.join("curl-pulled.bin");
                let sample = self.measure(
                    &self.work,
                    &argv([
                        "sh".as_ref(),
                        "-c".as_ref(),
                        r#"curl -sS -f -o "$1" "$2" && sync "$1""#.as_ref(),
                        "sh".as_ref(),
                        file.as_os_str(),
                        url.as_ref(),
                    ]),
                    Some(&registry),
                )?;
                let _ = std::fs::remove_file(&file);
                self.results.record(
                    Case::Large,
                    &format!("{pull_op} into a file + fsync"),
                    "curl",
                    bytes,
                    sample,
                );
            }
            {
                let registry = BenchRegistry::start()?;
                let target = format!("{}/bench/acr:v1", registry.host);
                let sample = self.measure(
                    &self.inputs,
                    &argv([
                        self.acr.as_os_str(),
                        "push".as_ref(),
                        target.as_ref(),
                        "large.bin".as_ref(),
                    ]),
                    Some(&registry),
                )?;
                self.results
                    .record(Case::Large, &push_op, "acr", bytes, sample);
                let out = self.fresh_dir("pulled-acr")?;
                let sample = self.measure(
                    &self.work,
                    &argv([
                        self.acr.as_os_str(),
                        "pull".as_ref(),
                        target.as_ref(),
                        "-o".as_ref(),
                        out.as_os_str(),
                    ]),
                    Some(&registry),
                )?;
                check_size(&out.join("large.bin"), self.sizes.large)?;
                self.results
                    .record(Case::Large, &pull_op, "acr", bytes, sample);
                if self.acr_ranged {
                    let out = self.fresh_dir("pulled-acr-ranged")?;
                    let sample = self.measure(
                        &self.work,
                        &argv([
                            self.acr.as_os_str(),
                            "pull".as_ref(),
                            target.as_ref(),
                            "-o".as_ref(),
                            out.as_os_str(),
                            "--parallel-ranges".as_ref(),
                            "4".as_ref(),
                        ]),
                        Some(&registry),
                    )?;
                    check_size(&out.join("large.bin"), self.sizes.large)?;
                    self.results.record(
                        Case::Large,
                        &format!("{pull_op}, parallel ranges"),
                        "acr",
                        bytes,
                        sample,
                    );
                    let _ = std::fs::remove_dir_all(out);
                }
            }
            if self.skopeo {
                let registry = BenchRegistry::start()?;
                let (push, pull) =
                    self.skopeo_round_trip(&registry, "layout-large", self.sizes.large)?;
                self.results
                    .record(Case::Large, &push_op, "skopeo", bytes, push);
                self.results
                    .record(Case::Large, &pull_op, "skopeo", bytes, pull);
            }
            if self.oras {
                let registry = BenchRegistry::start()?;
                let (push, pull) =
                    self.oras_round_trip(&registry, &self.inputs.clone(), &["large.bin"])?;
                check_size(&self.work.join("pulled-oras/large.bin"), self.sizes.large)?;
                self.results
                    .record(Case::Large, &push_op, "oras-py", bytes, push);
                self.results
                    .record(Case::Large, &pull_op, "oras-py", bytes, pull);
            }
            let _ = std::fs::remove_dir_all(self.work.join("pulled-acr"));
            let _ = std::fs::remove_dir_all(self.work.join("pulled-oras"));
            let _ = std::fs::remove_dir_all(self.work.join("pulled-skopeo"));
            if run == 0 {
                self.results.rows.truncate(recorded);
            }
        }
        if !self.acr_ranged {
            self.results.note(
                Case::Large,
                &format!("{pull_op}, parallel ranges"),
                "acr",
                "not available yet (`acr pull` has no ranged download option)",
            );
        }
        Ok(())
    }

    /// `curl -X POST` for an upload session, then one streamed `PUT ?digest=` of the file.
    fn curl_push(
        &self,
        registry: &BenchRegistry,
        repo: &str,
        file: &Path,
    ) -> anyhow::Result<Sample> {
        let url = format!("{}/v2/{repo}/blobs/uploads/", registry.base_url());
        let post = self.measure(
            &self.work,
            &argv(
                [
                    "curl",
                    "-sS",
                    "-f",
                    "-D",
                    "-",
                    "-o",
                    "/dev/null",
                    "-X",
                    "POST",
                    &url,
                ]
                .map(OsStr::new),
            ),
            Some(registry),
        )?;
        let headers = self.log_text();
        let location = headers
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("location")
                    .then(|| value.trim().to_owned())
            })
            .context("the registry answered the upload POST without a Location")?;
        let location = if location.starts_with('/') {
            format!("{}{location}", registry.base_url())
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{separator}digest={}", self.large_digest);
        let mut put = self.measure(
            &self.work,
            &argv([
                "curl".as_ref(),
                "-sS".as_ref(),
                "-f".as_ref(),
                "-o".as_ref(),
                "/dev/null".as_ref(),
                "-X".as_ref(),
                "PUT".as_ref(),
                "-H".as_ref(),
                "Content-Type: application/octet-stream".as_ref(),
                "-T".as_ref(),
                file.as_os_str(),
                put_url.as_ref(),
            ]),
            Some(registry),
        )?;
        put.add(&post);
        Ok(put)
    }

    /// skopeo copy of the layout `layout` (tag v1) to the registry and back to a fresh layout.
    fn skopeo_round_trip(
        &self,
        registry: &BenchRegistry,
        layout: &str,
        payload: u64,
    ) -> anyhow::Result<(Sample, Sample)> {
        let remote = format!("docker://{}/bench/skopeo:v1", registry.host);
        let source = format!("oci:{}:v1", self.inputs.join(layout).display());
        clear_skopeo_cache();
        let push = self.measure(
            &self.work,
            &argv(
                [
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    &source,
                    &remote,
                ]
                .map(OsStr::new),
            ),
            Some(registry),
        )?;
        let out = self.fresh_dir("pulled-skopeo")?;
        let dest = format!("oci:{}:v1", out.display());
        clear_skopeo_cache();
        let pull = self.measure(
            &self.work,
            &argv(
                [
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    &remote,
                    &dest,
                ]
                .map(OsStr::new),
            ),
            Some(registry),
        )?;
        let got = dir_bytes(&out);
        ensure!(
            got >= payload,
            "skopeo pulled {got} bytes into {}, expected at least {payload}",
            out.display()
        );
        Ok((push, pull))
    }

    /// The `oras` Python package: push `files` (relative to `cwd`) and pull them back into
    /// `work/pulled-oras`.
    fn oras_round_trip(
        &self,
        registry: &BenchRegistry,
        cwd: &Path,
        files: &[&str],
    ) -> anyhow::Result<(Sample, Sample)> {
        let target = format!("{}/bench/oras:v1", registry.host);
        let mut args = argv(["python3", "-c", ORAS_PY, "push", &target].map(OsStr::new));
        args.extend(files.iter().map(OsString::from));
        let push = self.measure(cwd, &args, Some(registry))?;
        let out = self.fresh_dir("pulled-oras")?;
        let pull = self.measure(
            &self.work,
            &argv([
                "python3".as_ref(),
                "-c".as_ref(),
                ORAS_PY.as_ref(),
                "pull".as_ref(),
                target.as_ref(),
                out.as_os_str(),
            ]),
            Some(registry),
        )?;
        Ok((push, pull))
    }

    /// Case 2: 100 small files as one artifact (one layer each).
    fn small(&mut self) -> anyhow::Result<()> {
        let push_op = format!("push {} x 10 KiB", self.sizes.small_count);
        let pull_op = format!("pull {} x 10 KiB", self.sizes.small_count);
        let payload = self.sizes.small * self.sizes.small_count as u64;
        let bytes = Some(payload);
        let dir = self.small_dir();
        let names = self.small_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for run in 1..=self.runs {
            eprintln!("run {run}/{}", self.runs);
            {
                let registry = BenchRegistry::start()?;
                let target = format!("{}/bench/acr:v1", registry.host);
                let mut args = argv([self.acr.as_os_str(), "push".as_ref(), target.as_ref()]);
                args.extend(names.iter().map(OsString::from));
                let sample = self.measure(&dir, &args, Some(&registry))?;
                self.results
                    .record(Case::Small, &push_op, "acr", bytes, sample);
                let out = self.fresh_dir("pulled-acr")?;
                let sample = self.measure(
                    &self.work,
                    &argv([
                        self.acr.as_os_str(),
                        "pull".as_ref(),
                        target.as_ref(),
                        "-o".as_ref(),
                        out.as_os_str(),
                    ]),
                    Some(&registry),
                )?;
                ensure!(
                    dir_bytes(&out) == payload,
                    "acr pulled the wrong amount into {}",
                    out.display()
                );
                self.results
                    .record(Case::Small, &pull_op, "acr", bytes, sample);
                // The latency floor: one curl process, the same blobs on one kept-alive connection.
                let sample = self.curl_get_layers(&registry, "bench/acr")?;
                self.results
                    .record(Case::Small, &pull_op, "curl", bytes, sample);
            }
            if self.skopeo {
                let registry = BenchRegistry::start()?;
                let (push, pull) = self.skopeo_round_trip(&registry, "layout-small", payload)?;
                self.results
                    .record(Case::Small, &push_op, "skopeo", bytes, push);
                self.results
                    .record(Case::Small, &pull_op, "skopeo", bytes, pull);
            }
            if self.oras {
                let registry = BenchRegistry::start()?;
                let (push, pull) = self.oras_round_trip(&registry, &dir, &names)?;
                let got = dir_bytes(&self.work.join("pulled-oras"));
                ensure!(
                    got == payload,
                    "oras-py pulled {got} bytes, expected {payload}"
                );
                self.results
                    .record(Case::Small, &push_op, "oras-py", bytes, push);
                self.results
                    .record(Case::Small, &pull_op, "oras-py", bytes, pull);
            }
        }
        Ok(())
    }

    /// `curl` of every layer of `repo:v1`, sequentially in one process (keep-alive).
    fn curl_get_layers(&self, registry: &BenchRegistry, repo: &str) -> anyhow::Result<Sample> {
        let manifest_url = format!("{}/v2/{repo}/manifests/v1", registry.base_url());
        let manifest = command_output(Command::new("curl").args([
            "-sS",
            "-f",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &manifest_url,
        ]))?;
        let manifest: serde_json::Value = serde_json::from_str(&manifest)?;
        let layers = manifest["layers"]
            .as_array()
            .context("manifest without layers")?;
        let mut args = argv(["curl", "-sS", "-f"].map(OsStr::new));
        for layer in layers {
            let digest = layer["digest"].as_str().context("layer without digest")?;
            args.extend(["-o", "/dev/null"].map(OsString::from));
            args.push(format!("{}/v2/{repo}/blobs/{digest}", registry.base_url()).into());
        }
        self.measure(&self.work, &args, Some(registry))
    }

    /// Case 3: copy of a 10-layer artifact to another repository of the same registry and to
    /// another registry, by `acr` (when it has a copy command) and skopeo.
    fn copy(&mut self) -> anyhow::Result<()> {
        let mib = self.sizes.copy_total / MIB;
        let same_op = format!("copy {mib} MiB, same registry");
        let cross_op = format!("copy {mib} MiB, two registries");
        let bytes = Some(self.sizes.copy_total);
        let dir = self.inputs.join("copy");
        let layers: Vec<String> = (1..=self.sizes.copy_layers)
            .map(|i| format!("layer{i:02}.bin"))
            .collect();
        if self.acr_copy.is_none() {
            self.results.note(
                Case::Copy,
                &same_op,
                "acr",
                "not available yet (no copy command)",
            );
            self.results.note(
                Case::Copy,
                &cross_op,
                "acr",
                "not available yet (no copy command)",
            );
        }
        if !self.skopeo && self.acr_copy.is_none() {
            return Ok(());
        }
        for run in 1..=self.runs {
            eprintln!("run {run}/{}", self.runs);
            let mut tools = Vec::new();
            if let Some(command) = &self.acr_copy {
                tools.push(("acr", command.clone()));
            }
            if self.skopeo {
                tools.push(("skopeo", String::new()));
            }
            for (tool, command) in tools {
                let source = BenchRegistry::start()?;
                let src = format!("{}/bench/copy-src:v1", source.host);
                let mut push = self.acr_command(&dir);
                push.args(["push", &src])
                    .args(&layers)
                    .stdout(Stdio::null());
                super::run(&mut push)?;
                let other = BenchRegistry::start()?;
                let same = format!("{}/bench/copy-{tool}:v1", source.host);
                let cross = format!("{}/bench/copy-{tool}:v1", other.host);
                for (op, dst, registry) in [(&same_op, &same, &source), (&cross_op, &cross, &other)]
                {
                    let args = if tool == "acr" {
                        argv([
                            self.acr.as_os_str(),
                            command.as_ref(),
                            src.as_ref(),
                            dst.as_ref(),
                        ])
                    } else {
                        clear_skopeo_cache();
                        let (from, to) = (format!("docker://{src}"), format!("docker://{dst}"));
                        argv(
                            [
                                "skopeo",
                                "copy",
                                "--quiet",
                                "--src-tls-verify=false",
                                "--dest-tls-verify=false",
                                &from,
                                &to,
                            ]
                            .map(OsStr::new),
                        )
                    };
                    let sample = self.measure(&self.work, &args, Some(registry))?;
                    self.results.record(Case::Copy, op, tool, bytes, sample);
                }
            }
        }
        self.results
            .note(Case::Copy, &same_op, "oras-py", "no copy operation");
        Ok(())
    }

    /// `acr --version` (and the peers' equivalents): process start-up.
    fn startup(&mut self) -> anyhow::Result<()> {
        let n = if self.quick { 10 } else { 30 };
        let hyperfine = Command::new("hyperfine")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let acr = self.acr.to_string_lossy().into_owned();
        let mut tools = vec![("acr", vec![acr.as_str(), "--version"], n)];
        if self.skopeo {
            tools.push(("skopeo", vec!["skopeo", "--version"], n.min(10)));
        }
        if self.oras {
            tools.push(("oras-py", vec!["python3", "-c", "import oras.client"], 3));
        }
        for (tool, args, runs) in tools {
            let samples = if hyperfine {
                hyperfine_times(&self.work, &args, runs)?
            } else {
                let mut times = Vec::new();
                for _ in 0..runs {
                    let started = Instant::now();
                    let status = Command::new(args[0])
                        .args(&args[1..])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()?;
                    times.push(started.elapsed().as_secs_f64());
                    ensure!(status.success(), "{} failed", args.join(" "));
                }
                times
            };
            let op = if tool == "oras-py" {
                "import oras.client"
            } else {
                "--version"
            };
            for wall in samples {
                self.results.record(
                    Case::Startup,
                    op,
                    tool,
                    None,
                    Sample {
                        wall,
                        ..Sample::default()
                    },
                );
            }
        }
        Ok(())
    }

    fn fresh_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// The first line a command prints, or "unknown".
fn version_line(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The name of `acr`'s copy subcommand, if its `--help` lists one.
fn copy_command(help: &str) -> Option<String> {
    help.lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|word| matches!(*word, "copy" | "cp"))
        .map(str::to_owned)
}

/// GNU time (`/usr/bin/time`), installed with apt-get when missing (it is tiny).
fn ensure_gnu_time() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/time");
    if !path.exists() {
        eprintln!("/usr/bin/time is missing; trying apt-get install time");
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "time"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    path.exists().then_some(path)
}

fn clear_skopeo_cache() {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    for cache in SKOPEO_CACHES {
        let path = if cache.starts_with('/') {
            PathBuf::from(cache)
        } else {
            home.join(cache)
        };
        let _ = std::fs::remove_file(path);
    }
}

fn argv<const N: usize, S: AsRef<OsStr>>(items: [S; N]) -> Vec<OsString> {
    items.iter().map(|s| s.as_ref().to_owned()).collect()
}

fn command_output(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let output = cmd.output().with_context(|| format!("starting {shown}"))?;
    ensure!(
        output.status.success(),
        "{shown} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Writes `size` random bytes to `path` (from /dev/urandom) unless it already has that size.
fn random_file(path: &Path, size: u64) -> anyhow::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let mut source = File::open("/dev/urandom")
        .context("opening /dev/urandom")?
        .take(size);
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let copied = std::io::copy(&mut source, &mut file)?;
    ensure!(copied == size, "short read from /dev/urandom");
    Ok(())
}

/// Reads a file once so that it sits in the page cache.
fn warm(path: &Path) -> anyhow::Result<()> {
    let mut file = File::open(path)?;
    std::io::copy(&mut file, &mut std::io::sink())?;
    Ok(())
}

fn check_size(path: &Path, size: u64) -> anyhow::Result<()> {
    let got = std::fs::metadata(path)
        .with_context(|| format!("{} was not pulled", path.display()))?
        .len();
    ensure!(
        got == size,
        "{} has {got} bytes, expected {size}",
        path.display()
    );
    Ok(())
}

/// Total size of the regular files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// `hyperfine -N` of one command; its individual run times.
fn hyperfine_times(work: &Path, args: &[&str], runs: usize) -> anyhow::Result<Vec<f64>> {
    let export = work.join("hyperfine.json");
    command_output(
        Command::new("hyperfine")
            .args([
                "-N",
                "--warmup",
                "3",
                "--runs",
                &runs.to_string(),
                "--export-json",
            ])
            .arg(&export)
            .arg(args.join(" ")),
    )?;
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&export)?)?;
    json["results"][0]["times"]
        .as_array()
        .context("hyperfine exported no times")?
        .iter()
        .map(|t| t.as_f64().context("hyperfine time is not a number"))
        .collect()
}

/// A docker-registry with fresh storage, detached from `acr_testkit::Registry` so that its
/// process id is known (for its CPU time); stopped and its storage removed on drop.
struct BenchRegistry {
    host: String,
    pid: u32,
    dir: PathBuf,
}

impl BenchRegistry {
    fn start() -> anyhow::Result<Self> {
        let registry = acr_testkit::Registry::start(acr_testkit::RegistryOptions::default())
            .context("starting docker-registry")?;
        let host = registry.host();
        let (pid, dir) = registry.detach();
        Ok(Self { host, pid, dir })
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// utime + stime of the registry process so far, in seconds.
    fn cpu_seconds(&self, clock_ticks: f64) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / clock_ticks)
    }
}

impl Drop for BenchRegistry {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.pid.to_string())
            .stderr(Stdio::null())
            .status();
        // Detached, the process is not ours to reap: wait until it is a zombie or gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid));
            let gone = stat.map_or(true, |s| {
                s.rfind(')')
                    .is_some_and(|i| s[i + 1..].trim_start().starts_with(['Z', 'X']))
            });
            if gone {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_line() {
        let options = parse(&["--quick", "--cases", "small,large", "copy", "--runs", "2"]).unwrap();
        assert!(options.quick);
        assert_eq!(options.runs, 2);
        assert_eq!(options.cases, [Case::Large, Case::Small, Case::Copy]);
        let options = parse(&[]).unwrap();
        assert_eq!(options.runs, 3);
        assert_eq!(options.cases, Case::ALL);
        assert!(parse(&["--cases", "nope"]).is_err());
        assert!(parse(&["--runs", "0"]).is_err());
    }

    #[test]
    fn finds_a_copy_command_in_the_help() {
        let help = "Commands:\n  push   Push files\n  copy   Copy an artifact\n";
        assert_eq!(copy_command(help).as_deref(), Some("copy"));
        assert_eq!(copy_command("Commands:\n  push  Push\n"), None);
    }

    #[test]
    fn judges_targets_and_draws_a_chart() {
        let mut results = Results::default();
        let sample = |wall| Sample {
            wall,
            rss_kib: Some(20 * 1024),
            ..Sample::default()
        };
        for (tool, push, pull) in [("curl", 3.0, 0.4), ("acr", 3.2, 0.9), ("skopeo", 4.0, 4.0)] {
            results.record(Case::Large, "push 1 GiB", tool, Some(1 << 30), sample(push));
            results.record(Case::Large, "pull 1 GiB", tool, Some(1 << 30), sample(pull));
        }
        results.note(Case::Copy, "copy", "acr", "not available yet");
        let meta = report::Meta {
            quick: false,
            runs: 1,
            large_bytes: 1 << 30,
            copy_bytes: 1 << 29,
            cpu: "cpu".into(),
            cores: 2,
            load: "0".into(),
            seconds: 1.0,
            acr_version: "acr".into(),
            skopeo_version: None,
            oras_version: None,
        };
        let report = results.finish(&meta);
        assert!(
            report.text.contains("PASS  large push within 10%"),
            "{}",
            report.text
        );
        assert!(
            report.text.contains("PASS  large pull >= 1 GiB/s"),
            "{}",
            report.text
        );
        assert!(
            report.text.contains("N/A   same-registry copy"),
            "{}",
            report.text
        );
        assert_eq!(report.json["results"][1]["median_s"], 0.4);
        let chart = svg::chart(&results, "a < b");
        assert!(chart.starts_with("<svg") && chart.contains("a &lt; b"));
    }
}
