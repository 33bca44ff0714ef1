//! Fault injection: the client against a real docker-registry behind `acr_testkit::FaultProxy`,
//! which cuts connections, answers 5xx/429/413, stalls, truncates, corrupts, lies in headers
//! and redirects to another origin. Each test asserts the exact outcome.

use std::path::Path;
use std::time::{Duration, Instant};

use acr_auth::{Credential, Secret};
use acr_client::{
    Client, ClientConfig, Error, FileToPush, PushOptions, RetryPolicy, TransportConfig, push_files,
};
use acr_testkit::{
    Auth, BASIC_PASSWORD, BASIC_USER, Fault, FaultAction, FaultProxy, Listener, Registry,
    RegistryOptions, SeenRequest,
};
use oci_spec_types::{Descriptor, Digest, ImageManifest, ManifestBytes, MediaType, Reference};

const MIB: usize = 1 << 20;

struct Setup {
    proxy: FaultProxy,
    // Dropped after the proxy.
    _registry: Registry,
}

fn setup(auth: Auth) -> Setup {
    let basic = matches!(auth, Auth::Basic);
    let registry = Registry::start(RegistryOptions {
        auth,
        ..RegistryOptions::default()
    })
    .expect("docker-registry starts (cargo xtask test installs it)");
    let upstream_auth = basic.then(|| {
        format!(
            "Basic {}",
            base64(&format!("{BASIC_USER}:{BASIC_PASSWORD}"))
        )
    });
    let proxy = FaultProxy::start(&registry.base_url(), upstream_auth.as_deref())
        .expect("the fault proxy starts");
    Setup {
        proxy,
        _registry: registry,
    }
}

/// Fast retries and a short idle timeout, so faults cost milliseconds; small chunks.
fn config() -> ClientConfig {
    ClientConfig {
        transport: TransportConfig {
            idle_timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_retries: 4,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_secs(2),
                max_total_delay: Duration::from_secs(10),
            },
            ..TransportConfig::default()
        },
        monolithic_limit: MIB as u64,
        chunk_size: MIB as u64,
        ..ClientConfig::default()
    }
}

fn reference(proxy: &FaultProxy, repo: &str) -> Reference {
    format!("{}/{repo}", proxy.host()).parse().unwrap()
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn base64(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in text.as_bytes().chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn blob_gets(log: &[SeenRequest]) -> Vec<&SeenRequest> {
    log.iter()
        .filter(|r| {
            r.listener == Listener::Proxy && r.method == "GET" && r.path.contains("/blobs/sha256:")
        })
        .collect()
}

/// Pushes `content` as a blob without faults and returns its descriptor.
async fn seed_blob(client: &Client, reference: &Reference, content: &[u8]) -> Descriptor {
    client
        .repository(reference)
        .unwrap()
        .push_bytes(MediaType::ImageLayer, content.to_vec().into())
        .await
        .unwrap()
}

// ------------------------------------------------------------------------------- uploads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_cut_mid_patch_resumes_from_the_registrys_offset() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let repo = client
        .repository(&reference(&s.proxy, "faults/upload"))
        .unwrap();
    let size = 5 * MIB;
    let content = pseudo_random(size, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.bin");
    std::fs::write(&path, &content).unwrap();
    // Chunks of 1 MiB: the third PATCH (bytes 2 MiB..3 MiB) loses its connection after half
    // a chunk, at 2.5 MiB = 50% of the blob, before the registry saw any of it.
    plan.add(
        Fault::new(FaultAction::DropRequestAfter {
            bytes: (MIB / 2) as u64,
            forward_partial: false,
        })
        .on("PATCH", "/blobs/uploads/")
        .skip(2),
    );
    plan.reset_stats();

    let d = repo.push_file(MediaType::ImageLayer, &path).await.unwrap();
    assert_eq!(d.digest, Digest::sha256_of(&content));
    assert_eq!(d.size, size as u64);
    assert!(plan.exhausted(), "the cut happened");

    // The existence check (HEAD) runs once the hash is done, wherever the chunks are then.
    let (heads, log): (Vec<_>, Vec<_>) = plan
        .requests()
        .into_iter()
        .partition(|r| r.method == "HEAD");
    assert_eq!(heads.len(), 1, "one existence check: {heads:#?}");
    let cut = log
        .iter()
        .position(|r| r.fault.is_some())
        .expect("the cut PATCH is logged");
    assert_eq!(log[cut].content_range.as_deref(), Some("2097152-3145727"));
    // Next: a status GET on the same session, then the chunk again from the registry's offset.
    let status = &log[cut + 1];
    assert_eq!(
        (
            status.method.as_str(),
            status.path.contains("/blobs/uploads/")
        ),
        ("GET", true),
        "{log:#?}"
    );
    let resumed = &log[cut + 2];
    assert_eq!(resumed.method, "PATCH");
    assert_eq!(resumed.content_range.as_deref(), Some("2097152-3145727"));
    assert_eq!(
        log.iter().filter(|r| r.method == "POST").count(),
        1,
        "the same session went on"
    );
    assert_eq!(
        plan.stats().request_body_bytes,
        size as u64,
        "the registry received every byte exactly once"
    );
    let out = dir.path().join("back");
    repo.fetch_to_file(&d, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content);
}

/// Pauses the upload after its first chunk, long enough for the first hashing to be done
/// for sure (5-8 MiB take milliseconds), then optionally changes one byte of a file.
#[derive(Default)]
struct AfterFirstChunk {
    change: Option<(std::path::PathBuf, u64)>,
    done: std::sync::atomic::AtomicBool,
}

impl acr_client::Progress for AfterFirstChunk {
    fn update(&self, digest: Option<&Digest>, done: u64, _total: Option<u64>) {
        use std::io::{Seek, Write};
        let first = !self.done.swap(true, std::sync::atomic::Ordering::SeqCst);
        if digest.is_some() || done == 0 || !first {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
        if let Some((path, offset)) = &self.change {
            let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.seek(std::io::SeekFrom::Start(*offset)).unwrap();
            file.write_all(b"!").unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_changes_while_it_is_sent_in_chunks_fails_the_push() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.bin");
    let content = pseudo_random(5 * MIB, 7);
    std::fs::write(&path, &content).unwrap();
    let progress = std::sync::Arc::new(AfterFirstChunk {
        change: Some((path.clone(), 4 * MIB as u64)),
        ..AfterFirstChunk::default()
    });
    let repo = client
        .repository(&reference(&s.proxy, "faults/changing"))
        .unwrap()
        .with_progress(progress);
    let error = repo
        .push_file(MediaType::ImageLayer, &path)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::ChangedWhileReading { path: p } if *p == path),
        "{error:?}"
    );
    let finishing_puts = plan
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(finishing_puts, 0, "the upload was never finished");
    let original = Descriptor::new(
        MediaType::ImageLayer,
        Digest::sha256_of(&content),
        5 * MIB as u64,
    );
    let plain = client
        .repository(&reference(&s.proxy, "faults/changing"))
        .unwrap();
    assert_eq!(plain.blob_exists(&original.digest).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_the_registry_has_is_not_uploaded_to_the_end() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let repo = client
        .repository(&reference(&s.proxy, "faults/present"))
        .unwrap()
        .with_progress(std::sync::Arc::new(AfterFirstChunk::default()));
    let content = pseudo_random(8 * MIB, 9);
    let seeded = seed_blob(&client, repo.reference(), &content).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.bin");
    std::fs::write(&path, &content).unwrap();
    plan.reset_stats();
    let pushed = repo.push_file(MediaType::ImageLayer, &path).await.unwrap();
    assert_eq!(pushed, seeded);
    let log = plan.requests();
    assert_eq!(
        log.iter().filter(|r| r.method == "HEAD").count(),
        1,
        "{log:#?}"
    );
    assert!(
        log.iter().filter(|r| r.method == "PATCH").count() <= 2,
        "the upload (8 chunks) stopped once the registry said it has the blob: {log:#?}"
    );
    assert_eq!(
        log.iter().filter(|r| r.method == "PUT").count(),
        0,
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_cut_after_the_registry_got_part_of_a_chunk_starts_a_new_session() {
    // docker-registry invalidates a session whose request was cut mid-body (the stored size no
    // longer matches its `_state`): the status request gets 404 and the client starts over.
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let repo = client
        .repository(&reference(&s.proxy, "faults/upload2"))
        .unwrap();
    let content = pseudo_random(3 * MIB + 5, 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.bin");
    std::fs::write(&path, &content).unwrap();
    plan.add(
        Fault::new(FaultAction::DropRequestAfter {
            bytes: (MIB / 2) as u64,
            forward_partial: true,
        })
        .on("PATCH", "/blobs/uploads/")
        .skip(1),
    );
    plan.reset_stats();
    let d = repo.push_file(MediaType::ImageLayer, &path).await.unwrap();
    assert_eq!(d.digest, Digest::sha256_of(&content));
    assert!(plan.exhausted());
    let log = plan.requests();
    assert_eq!(
        log.iter().filter(|r| r.method == "POST").count(),
        2,
        "a second session after the registry dropped the first: {log:#?}"
    );
    assert_eq!(repo.blob_exists(&d.digest).await.unwrap(), Some(d.size));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_chunk_answers_resume_and_413_falls_back_to_chunks() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(ClientConfig {
        // Monolithic up to 16 MiB, as by default, so a 3 MiB file goes in one PUT first.
        monolithic_limit: 16 << 20,
        ..config()
    })
    .unwrap();
    let repo = client
        .repository(&reference(&s.proxy, "faults/413"))
        .unwrap();
    let content = pseudo_random(3 * MIB, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::write(&path, &content).unwrap();
    // ACR's answer to a large monolithic body, then a 503 to the second chunk.
    plan.add(Fault::status(413, None).on("PUT", "/blobs/uploads/"));
    plan.add(
        Fault::status(503, None)
            .on("PATCH", "/blobs/uploads/")
            .skip(1),
    );
    plan.reset_stats();
    let d = repo.push_file(MediaType::ImageLayer, &path).await.unwrap();
    assert_eq!(d.digest, Digest::sha256_of(&content));
    assert!(plan.exhausted());
    let log = plan.requests();
    let patches: Vec<_> = log.iter().filter(|r| r.method == "PATCH").collect();
    // Chunks of the configured 1 MiB (never more than half the refused body); the chunk that
    // got the 503 is sent again from the registry's offset.
    assert_eq!(
        patches
            .iter()
            .map(|r| r.content_range.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            "0-1048575",
            "1048576-2097151",
            "1048576-2097151",
            "2097152-3145727"
        ],
        "{log:#?}"
    );
    assert_eq!(repo.blob_exists(&d.digest).await.unwrap(), Some(d.size));

    // push_bytes takes the same way out of a 413.
    plan.add(Fault::status(413, None).on("PUT", "/blobs/uploads/"));
    let bytes = pseudo_random(2 * MIB, 4);
    let d = repo
        .push_bytes(MediaType::ImageLayer, bytes.clone().into())
        .await
        .unwrap();
    assert!(plan.exhausted());
    assert_eq!(&repo.fetch_bytes(&d).await.unwrap()[..], &bytes[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_layer_upload_fails_never_writes_the_manifest() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/artifact");
    let repo = client.repository(&reference).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("a.txt");
    let bad = dir.path().join("b.txt");
    std::fs::write(&good, b"first file").unwrap();
    std::fs::write(&bad, b"second file").unwrap();
    // The first layer gets through; every upload after it fails.
    plan.add(
        Fault::status(500, None)
            .on("PUT", "/blobs/uploads/")
            .skip(1)
            .always(),
    );
    plan.reset_stats();
    let options = PushOptions {
        tags: vec!["v1".into()],
        ..PushOptions::default()
    };
    let err = push_files(
        &repo,
        &[FileToPush::new(&good), FileToPush::new(&bad)],
        &options,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    let log = plan.requests();
    assert!(
        !log.iter().any(|r| r.path.contains("/manifests/")),
        "no manifest request at all: {log:#?}"
    );
    plan.clear();
    assert_eq!(repo.resolve("v1").await.unwrap(), None, "no tag");
}

// ------------------------------------------------------------------------------- downloads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_cut_mid_way_resumes_with_a_range_request() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/pull");
    let content = pseudo_random(3 * MIB + 11, 5);
    let d = seed_blob(&client, &reference, &content).await;
    let repo = client.repository(&reference).unwrap();
    let cut_at = 3 * MIB as u64 / 2;
    plan.add(Fault::new(FaultAction::DropResponseAfter(cut_at)).on("GET", "/blobs/sha256:"));
    plan.reset_stats();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    repo.fetch_to_file(&d, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(files_in(dir.path()), ["blob"], "no partial left");
    let log = plan.requests();
    let gets = blob_gets(&log);
    assert_eq!(gets.len(), 2, "{log:#?}");
    assert_eq!(gets[0].range, None);
    let range = gets[1]
        .range
        .as_deref()
        .expect("the resume asks for a range");
    let from: u64 = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected range {range}"));
    assert!(
        from > 0 && from <= cut_at,
        "resumed from {from}, cut at {cut_at}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_ranged_download_cut_mid_way_resumes_after_the_ranges_it_kept() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/ranges");
    // 4 parts: ranges of 6 MiB (24 MiB of ranges in memory at most), 4 of them.
    let content = pseudo_random(20 * MIB, 13);
    let d = seed_blob(&client, &reference, &content).await;
    let repo = client.repository(&reference).unwrap();
    // The third range is cut after 1 MiB.
    plan.add(
        Fault::new(FaultAction::DropResponseAfter(MIB as u64))
            .on("GET", "/blobs/sha256:")
            .skip(2),
    );
    plan.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    repo.fetch_to_file_parallel(&d, &out, 4).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(files_in(dir.path()), ["blob"], "no partial left");
    assert!(plan.exhausted(), "the cut happened");
    let log = plan.requests();
    let gets = blob_gets(&log);
    let start_of = |r: &SeenRequest| -> u64 {
        let range = r.range.as_deref().expect("every request asks for a range");
        range
            .strip_prefix("bytes=")
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected range {range}"))
    };
    let starts: Vec<u64> = gets.iter().map(|r| start_of(r)).collect();
    let cut = gets
        .iter()
        .find(|r| r.fault.is_some())
        .expect("the cut request is logged");
    // What arrived of the cut range (up to the MiB the proxy let through) was kept, in order
    // after the ranges before it: the resume asks from there, and nothing before it again.
    let cut_at = start_of(cut);
    assert!(
        starts
            .iter()
            .any(|s| *s > cut_at && *s <= cut_at + MIB as u64),
        "cut the range at {cut_at}; asked for {starts:?}"
    );
    assert_eq!(
        starts.iter().filter(|s| **s == 0).count(),
        1,
        "the ranges before the cut were kept: {starts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_ignores_range_gets_one_plain_download() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/norange");
    let content = pseudo_random(20 * MIB, 14);
    let d = seed_blob(&client, &reference, &content).await;
    let repo = client.repository(&reference).unwrap();
    plan.add(
        Fault::new(FaultAction::IgnoreRange)
            .on("GET", "/blobs/sha256:")
            .always(),
    );
    plan.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    repo.fetch_to_file_parallel(&d, &out, 4).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(files_in(dir.path()), ["blob"]);
    let log = plan.requests();
    let ranges: Vec<Option<String>> = blob_gets(&log).iter().map(|r| r.range.clone()).collect();
    // One ranged request (answered whole and dropped), then one plain download; not four.
    assert_eq!(
        ranges,
        [Some(format!("bytes=0-{}", 6 * MIB - 1)), None],
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_times_out_and_resumes() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(ClientConfig {
        transport: TransportConfig {
            idle_timeout: Duration::from_millis(500),
            ..config().transport
        },
        ..config()
    })
    .unwrap();
    let reference = reference(&s.proxy, "faults/stall");
    let content = pseudo_random(2 * MIB, 6);
    let d = seed_blob(&client, &reference, &content).await;
    plan.add(
        Fault::new(FaultAction::Stall {
            after: MIB as u64,
            duration: Duration::from_secs(5),
        })
        .on("GET", "/blobs/sha256:"),
    );
    plan.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    let started = Instant::now();
    client
        .repository(&reference)
        .unwrap()
        .fetch_to_file(&d, &out)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not wait out the stall"
    );
    assert_eq!(std::fs::read(&out).unwrap(), content);
    let log = plan.requests();
    let gets = blob_gets(&log);
    assert_eq!(gets.len(), 2);
    assert!(gets[1].range.is_some(), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_download_never_becomes_a_file_nor_a_partial() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/corrupt");
    let content = pseudo_random(MIB + 3, 7);
    let d = seed_blob(&client, &reference, &content).await;
    plan.add(Fault::new(FaultAction::Corrupt { offset: 1000 }).on("GET", "/blobs/sha256:"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    let err = client
        .repository(&reference)
        .unwrap()
        .fetch_to_file(&d, &out)
        .await
        .unwrap_err();
    match &err {
        Error::DigestMismatch { expected, actual } => {
            assert_eq!(expected, &d.digest);
            assert_ne!(actual, &d.digest);
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains(d.digest.as_str()), "{err}");
    assert!(files_in(dir.path()).is_empty(), "nothing written");
    assert_eq!(
        blob_gets(&plan.requests()).len(),
        1,
        "wrong content is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_download_never_becomes_a_file_and_resumes_later() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/truncate");
    let content = pseudo_random(MIB, 8);
    let d = seed_blob(&client, &reference, &content).await;
    let repo = client.repository(&reference).unwrap();
    // Every answer ends cleanly, short, after 64 KiB: 4 attempts (3 resumes) get 256 KiB.
    plan.add(
        Fault::new(FaultAction::Truncate(64 * 1024))
            .on("GET", "/blobs/sha256:")
            .always(),
    );
    plan.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    let err = repo.fetch_to_file(&d, &out).await.unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { expected, actual, .. } if expected == MIB as u64 && actual == 256 * 1024),
        "{err:?}"
    );
    assert!(!out.exists(), "a short download never becomes the file");
    let log = plan.requests();
    let ranges: Vec<_> = blob_gets(&log).iter().map(|r| r.range.clone()).collect();
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=65536-".to_owned()),
            Some("bytes=131072-".to_owned()),
            Some("bytes=196608-".to_owned()),
        ]
    );
    // What did arrive is kept, correct so far, and a later call finishes from there.
    let partials = files_in(dir.path());
    assert_eq!(partials.len(), 1);
    assert!(partials[0].starts_with(".blob.") && partials[0].ends_with(".partial"));
    assert_eq!(
        std::fs::read(dir.path().join(&partials[0])).unwrap(),
        &content[..256 * 1024]
    );
    plan.clear();
    plan.reset_stats();
    repo.fetch_to_file(&d, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(files_in(dir.path()), ["blob"]);
    let log = plan.requests();
    assert_eq!(
        blob_gets(&log)[0].range.as_deref(),
        Some("bytes=262144-"),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_blob_is_verified_in_memory_before_any_file_exists() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/small");
    let content = pseudo_random(100_000, 12);
    let d = seed_blob(&client, &reference, &content).await;
    let repo = client.repository(&reference).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");

    // Corrupted: refused, and nothing at all is left in the folder.
    plan.add(Fault::new(FaultAction::Corrupt { offset: 70_000 }).on("GET", "/blobs/sha256:"));
    let err = repo.fetch_to_file(&d, &out).await.unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    assert!(files_in(dir.path()).is_empty(), "no file, no partial");

    // Cut mid-way: downloaded again from the start (small blobs are not resumed).
    plan.clear();
    plan.add(Fault::new(FaultAction::DropResponseAfter(50_000)).on("GET", "/blobs/sha256:"));
    plan.reset_stats();
    repo.fetch_to_file(&d, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(files_in(dir.path()), ["blob"]);
    let log = plan.requests();
    let ranges: Vec<_> = blob_gets(&log).iter().map(|r| r.range.clone()).collect();
    assert_eq!(ranges, [None, None], "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_content_length_on_a_blob_is_refused_before_reading() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/length");
    let content = pseudo_random(100_000, 9);
    let d = seed_blob(&client, &reference, &content).await;
    plan.add(
        Fault::new(FaultAction::ContentLength(200_000))
            .on("GET", "/blobs/sha256:")
            .always(),
    );
    plan.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    let err = client
        .repository(&reference)
        .unwrap()
        .fetch_to_file(&d, &out)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SizeMismatch {
                expected: 100_000,
                actual: 200_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(files_in(dir.path()).is_empty(), "no file, no partial");
    assert_eq!(blob_gets(&plan.requests()).len(), 1, "not retried");
}

// ------------------------------------------------------------------------------- retries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_429_are_retried_with_backoff() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/retry");
    let repo = client.repository(&reference).unwrap();
    let layer = seed_blob(&client, &reference, b"retried layer").await;
    let manifest = ManifestBytes::from_manifest(
        ImageManifest::artifact(MediaType::from("application/vnd.test"), vec![layer.clone()])
            .into(),
    );
    repo.push_bytes(MediaType::EmptyJson, b"{}".to_vec().into())
        .await
        .unwrap();
    repo.put_manifest(&manifest, Some("v1")).await.unwrap();

    plan.add(Fault::status(500, None).on("GET", "/manifests/"));
    plan.add(Fault::status(502, None).on("GET", "/manifests/"));
    plan.add(Fault::status(429, Some(1)).on("GET", "/manifests/"));
    plan.add(
        Fault::status(503, None)
            .on("GET", "/blobs/sha256:")
            .times(2),
    );
    plan.reset_stats();
    let started = Instant::now();
    let fetched = repo.get_manifest("v1").await.unwrap();
    assert_eq!(fetched.bytes(), manifest.bytes());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(
        &repo.fetch_bytes(&layer).await.unwrap()[..],
        b"retried layer"
    );
    assert!(plan.exhausted());
    let stats = plan.stats();
    assert_eq!((stats.injected, stats.requests), (5, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_503_ends_with_a_clear_message_after_bounded_retries() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(ClientConfig {
        transport: TransportConfig {
            retry: RetryPolicy {
                max_retries: 2,
                base_delay: Duration::from_millis(10),
                ..config().transport.retry
            },
            ..config().transport
        },
        ..config()
    })
    .unwrap();
    let repo = client
        .repository(&reference(&s.proxy, "faults/down"))
        .unwrap();
    plan.add(Fault::status(503, None).on("GET", "/manifests/").always());
    plan.reset_stats();
    let err = repo.get_manifest("v1").await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("503") && message.to_lowercase().contains("manifest"),
        "{message}"
    );
    assert_eq!(plan.stats().requests, 3, "one try and two retries");

    // An upload whose every chunk gets 503 gives up too, after its bounded resumes.
    plan.add(
        Fault::status(503, None)
            .on("PATCH", "/blobs/uploads/")
            .always(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, pseudo_random(2 * MIB, 10)).unwrap();
    plan.reset_stats();
    let err = repo
        .push_file(MediaType::ImageLayer, &path)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    let patches = plan
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 6, "one try and five resumes");
}

// ------------------------------------------------------------------------------- lies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_docker_content_digest_on_a_manifest_is_an_error() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/digest");
    let repo = client.repository(&reference).unwrap();
    let layer = seed_blob(&client, &reference, b"layer").await;
    repo.push_bytes(MediaType::EmptyJson, b"{}".to_vec().into())
        .await
        .unwrap();
    let manifest = ManifestBytes::from_manifest(
        ImageManifest::artifact(MediaType::from("application/vnd.test"), vec![layer]).into(),
    );
    repo.put_manifest(&manifest, Some("v1")).await.unwrap();
    let liar = Digest::sha256_of(b"something else");
    plan.add(
        Fault::new(FaultAction::DockerContentDigest(liar.to_string())).on("GET", "/manifests/"),
    );
    let err = repo.get_manifest("v1").await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(liar.as_str()) && message.contains(manifest.digest().as_str()),
        "{message}"
    );
    // Without the lie, the same request succeeds.
    assert_eq!(
        repo.get_manifest("v1").await.unwrap().digest(),
        manifest.digest()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_over_4_mib_is_refused_before_being_read_whole() {
    let s = setup(Auth::Anonymous);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    let reference = reference(&s.proxy, "faults/huge");
    let repo = client.repository(&reference).unwrap();
    let layer = seed_blob(&client, &reference, b"layer").await;
    repo.push_bytes(MediaType::EmptyJson, b"{}".to_vec().into())
        .await
        .unwrap();
    let manifest = ManifestBytes::from_manifest(
        ImageManifest::artifact(MediaType::from("application/vnd.test"), vec![layer]).into(),
    );
    repo.put_manifest(&manifest, Some("v1")).await.unwrap();

    // Announced: refused on the header alone.
    plan.add(Fault::new(FaultAction::ContentLength(5 << 20)).on("GET", "/manifests/"));
    let err = repo.get_manifest("v1").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(oci_distribution_proto::Error::ManifestTooLarge { size: 5242880, .. })
        ),
        "{err:?}"
    );
    // Not announced (chunked, padded past 4 MiB): reading stops at the limit.
    plan.add(Fault::new(FaultAction::Pad(5 << 20)).on("GET", "/manifests/"));
    let err = repo.get_manifest("v1").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(oci_distribution_proto::Error::BodyTooLarge { limit: 4194304 })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("4194304"), "{err}");
}

// ------------------------------------------------------------------------------- credentials

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_does_not_carry_the_authorization_header() {
    let s = setup(Auth::Basic);
    let plan = s.proxy.plan();
    let client = Client::new(config()).unwrap();
    client.set_credential(
        &s.proxy.host(),
        Credential::Basic {
            username: BASIC_USER.into(),
            password: Secret::new(BASIC_PASSWORD),
        },
    );
    let reference = reference(&s.proxy, "faults/redirect");
    let content = pseudo_random(MIB + 1, 11);
    let d = seed_blob(&client, &reference, &content).await;
    plan.add(
        Fault::new(FaultAction::RedirectToStorage)
            .on("GET", "/blobs/sha256:")
            .always(),
    );
    plan.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blob");
    client
        .repository(&reference)
        .unwrap()
        .fetch_to_file(&d, &out)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content);
    let stats = plan.stats();
    assert_eq!(stats.storage_requests, 1);
    assert_eq!(
        stats.storage_requests_with_authorization, 0,
        "the registry's credentials never reach another origin"
    );
    let log = plan.requests();
    let to_registry = blob_gets(&log);
    assert!(
        to_registry.iter().any(|r| r.authorization),
        "the registry itself got the header, so there was one to leak: {log:#?}"
    );
}
