//! The content client against a real docker-registry, in each auth mode.

use std::sync::Arc;

use acr_auth::{Credential, Secret};
use acr_client::{Client, ClientConfig, Error, PlainHttp, TransportConfig};
use acr_testkit::{Auth, BASIC_PASSWORD, BASIC_USER, Registry, RegistryOptions};
use oci_spec_types::{Descriptor, ImageManifest, ManifestBytes, MediaType, Reference, annotations};

fn start(options: RegistryOptions) -> Registry {
    Registry::start(options).expect("docker-registry starts (cargo xtask test installs it)")
}

fn reference(registry: &Registry, repo: &str) -> Reference {
    format!("{}/{repo}", registry.host()).parse().unwrap()
}

/// Small chunks so a few MiB exercise many PATCHes.
pub(crate) fn chunky() -> ClientConfig {
    ClientConfig {
        monolithic_limit: 1 << 20,
        chunk_size: 1 << 20,
        ..ClientConfig::default()
    }
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

/// Pushes blobs of awkward sizes every way, an artifact manifest, and reads it all back.
pub(crate) async fn round_trip(client: &Client, reference: &Reference) {
    let repo = client.repository(reference).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut layers = Vec::new();
    for (i, size) in [0usize, 1, 1 << 20, (3 << 20) + 17].into_iter().enumerate() {
        let content = pseudo_random(size, i as u64 + 7);
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, &content).unwrap();
        let d = repo.push_file(MediaType::ImageLayer, &path).await.unwrap();
        assert_eq!(d.size, size as u64);
        assert!(d.digest.matches(&content));
        assert_eq!(
            repo.blob_exists(&d.digest).await.unwrap(),
            Some(size as u64)
        );
        layers.push(d.with_annotation(annotations::TITLE, format!("f{i}")));
    }
    // Unknown length: a reader, hashed while sent.
    let streamed = pseudo_random((2 << 20) + 5, 99);
    let d = repo
        .push_reader(MediaType::ImageLayer, &streamed[..])
        .await
        .unwrap();
    assert!(d.digest.matches(&streamed));
    layers.push(d);
    let config = repo
        .push_bytes(MediaType::EmptyJson, b"{}".to_vec().into())
        .await
        .unwrap();
    assert_eq!(config, Descriptor::empty());

    let manifest = ManifestBytes::from_manifest(
        ImageManifest::artifact(
            MediaType::from("application/vnd.acr.test.v1"),
            layers.clone(),
        )
        .into(),
    );
    let digest = repo.put_manifest(&manifest, Some("v1")).await.unwrap();
    assert_eq!(digest, *manifest.digest());
    repo.put_manifest(&manifest, Some("v2")).await.unwrap();

    let fetched = repo.get_manifest("v1").await.unwrap();
    assert_eq!(
        fetched.bytes(),
        manifest.bytes(),
        "the registry serves the exact bytes pushed"
    );
    let by_digest = repo.get_manifest(digest.as_str()).await.unwrap();
    assert_eq!(by_digest.digest(), &digest);
    let head = repo.resolve("v2").await.unwrap().unwrap();
    assert_eq!(
        (head.digest.clone(), head.size),
        (digest.clone(), manifest.bytes().len() as u64)
    );
    assert_eq!(repo.resolve("missing").await.unwrap(), None);
    let mut tags = repo.tags().await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);

    for (i, layer) in layers.iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        repo.fetch_to_file(layer, &out).await.unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert!(layer.digest.matches(&bytes), "layer {i}");
    }
    assert_eq!(&repo.fetch_bytes(&config).await.unwrap()[..], b"{}");

    repo.delete_manifest(&digest).await.unwrap();
    assert_eq!(repo.resolve("v1").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_registry_round_trip() {
    let registry = start(RegistryOptions::default());
    let client = Client::new(chunky()).unwrap();
    round_trip(&client, &reference(&registry, "anon/files")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_registry_round_trip_and_wrong_password() {
    let registry = start(RegistryOptions {
        auth: Auth::Basic,
        ..Default::default()
    });
    let client = Client::new(chunky()).unwrap();
    client.set_credential(
        &registry.host(),
        Credential::Basic {
            username: BASIC_USER.into(),
            password: Secret::new(BASIC_PASSWORD),
        },
    );
    round_trip(&client, &reference(&registry, "basic/files")).await;

    let wrong = Client::new(ClientConfig::default()).unwrap();
    wrong.set_credential(
        &registry.host(),
        Credential::Basic {
            username: BASIC_USER.into(),
            password: Secret::new("nope"),
        },
    );
    let err = wrong
        .repository(&reference(&registry, "basic/files"))
        .unwrap()
        .tags()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&registry.host()) && message.contains("user name and password"),
        "{message}"
    );
    assert!(
        !message.contains("nope"),
        "the password never appears: {message}"
    );

    let anonymous = Client::new(ClientConfig::default()).unwrap();
    let err = anonymous
        .repository(&reference(&registry, "basic/files"))
        .unwrap()
        .tags()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("asks for a user name and password"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registry_needs_its_ca() {
    let registry = start(RegistryOptions {
        tls: true,
        ..Default::default()
    });
    let reference = reference(&registry, "tls/files");
    let trusting = Client::new(ClientConfig {
        transport: TransportConfig {
            ca_file: registry.ca_file(),
            plain_http: PlainHttp::Never,
            ..TransportConfig::default()
        },
        ..chunky()
    })
    .unwrap();
    round_trip(&trusting, &reference).await;

    let https_only = || TransportConfig {
        plain_http: PlainHttp::Never,
        ..TransportConfig::default()
    };
    let untrusting = Client::new(ClientConfig {
        transport: https_only(),
        ..ClientConfig::default()
    })
    .unwrap();
    let err = untrusting
        .repository(&reference)
        .unwrap()
        .tags()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let insecure = Client::new(ClientConfig {
        transport: TransportConfig {
            insecure_skip_verify: true,
            ..https_only()
        },
        ..ClientConfig::default()
    })
    .unwrap();
    assert_eq!(
        insecure
            .repository(&reference)
            .unwrap()
            .tags()
            .await
            .unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_and_delete_blob() {
    let registry = start(RegistryOptions::default());
    let client = Client::new(ClientConfig::default()).unwrap();
    let source = client
        .repository(&reference(&registry, "src/repo"))
        .unwrap();
    let target = client
        .repository(&reference(&registry, "dst/repo"))
        .unwrap();
    let d = source
        .push_bytes(MediaType::ImageLayer, b"shared layer".to_vec().into())
        .await
        .unwrap();
    assert_eq!(target.blob_exists(&d.digest).await.unwrap(), None);
    assert!(target.mount(&d.digest, source.reference()).await.unwrap());
    assert_eq!(target.blob_exists(&d.digest).await.unwrap(), Some(12));
    let unknown = oci_spec_types::Digest::sha256_of(b"not anywhere");
    assert!(!target.mount(&unknown, source.reference()).await.unwrap());

    target.delete_blob(&d.digest).await.unwrap();
    assert_eq!(target.blob_exists(&d.digest).await.unwrap(), None);
    assert_eq!(
        source.blob_exists(&d.digest).await.unwrap(),
        Some(12),
        "other repositories keep it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_never_becomes_a_file() {
    let registry = start(RegistryOptions::default());
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client
        .repository(&reference(&registry, "verify/me"))
        .unwrap();
    let real = repo
        .push_bytes(MediaType::ImageLayer, b"the real content".to_vec().into())
        .await
        .unwrap();
    // A descriptor that lies about the size: reading stops at the declared size.
    let short = Descriptor::new(MediaType::ImageLayer, real.digest.clone(), 4);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("file");
    let err = repo.fetch_to_file(&short, &out).await.unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { expected: 4, .. }),
        "{err:?}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no partial file left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_client() {
    let registry = start(RegistryOptions::default());
    let client = Client::new(ClientConfig::default()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = client.clone();
        let reference = reference(&registry, &format!("many/r{}", i % 4));
        tasks.push(tokio::spawn(async move {
            let repo = client.repository(&reference).unwrap();
            let content = format!("blob number {i}").into_bytes();
            let d = repo
                .push_bytes(MediaType::ImageLayer, content.clone().into())
                .await
                .unwrap();
            assert_eq!(&repo.fetch_bytes(&d).await.unwrap()[..], &content[..]);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let _ = Arc::new(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_round_trip_as_tar_gzip_layers() {
    use acr_client::{FileToPush, PullOptions, PushOptions, pull_files, push_files};
    let registry = start(RegistryOptions::default());
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client
        .repository(&reference(&registry, "dirs/app"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("css/deep")).unwrap();
    std::fs::write(site.join("index.html"), b"<h1>hi</h1>").unwrap();
    std::fs::write(site.join("css/deep/style.css"), pseudo_random(70_000, 3)).unwrap();
    std::os::unix::fs::symlink("index.html", site.join("home.html")).unwrap();

    let manifest = push_files(
        &repo,
        &[FileToPush::new(&site)],
        &PushOptions {
            tags: vec!["v1".into()],
            ..PushOptions::default()
        },
    )
    .await
    .unwrap();
    let oci_spec_types::Manifest::Image(image) = manifest.manifest() else {
        panic!("an image manifest")
    };
    let layer = &image.layers[0];
    assert_eq!(layer.media_type.as_str(), acr_client::DIRECTORY_MEDIA_TYPE);
    assert_eq!(layer.annotations[annotations::TITLE], "site");
    assert_eq!(layer.annotations[annotations::ORAS_CONTENT_UNPACK], "true");
    assert!(layer.annotations[annotations::ORAS_CONTENT_DIGEST].starts_with("sha256:"));

    let out = dir.path().join("out");
    pull_files(&repo, "v1", &out, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(out.join("site/index.html")).unwrap(),
        b"<h1>hi</h1>"
    );
    assert_eq!(
        std::fs::read(out.join("site/css/deep/style.css")).unwrap(),
        pseudo_random(70_000, 3)
    );
    assert_eq!(
        std::fs::read_link(out.join("site/home.html")).unwrap(),
        std::path::PathBuf::from("index.html")
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "no archive left beside the unpacked folder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_blob_in_many_chunks_and_a_parallel_ranged_download() {
    let registry = start(RegistryOptions::default());
    let client = Client::new(ClientConfig {
        monolithic_limit: 8 << 20,
        chunk_size: 8 << 20,
        ..ClientConfig::default()
    })
    .unwrap();
    let repo = client
        .repository(&reference(&registry, "large/blob"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let content = pseudo_random((66 << 20) + 123, 11);
    let path = dir.path().join("large.bin");
    std::fs::write(&path, &content).unwrap();
    let d = repo.push_file(MediaType::ImageLayer, &path).await.unwrap();
    assert_eq!(d.size, content.len() as u64);
    let out = dir.path().join("parallel.bin");
    repo.fetch_to_file_parallel(&d, &out, 4).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == content);
    // A descriptor with another digest: the parts arrive, the whole is refused, nothing stays.
    let wrong = Descriptor::new(
        MediaType::ImageLayer,
        oci_spec_types::Digest::sha256_of(b"other"),
        d.size,
    );
    let err = repo
        .fetch_to_file_parallel(&wrong, &dir.path().join("never.bin"), 4)
        .await
        .unwrap_err();
    assert!(!matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(!dir.path().join("never.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_schema2_manifests_and_lists_round_trip_byte_for_byte() {
    let registry = start(RegistryOptions::default());
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client
        .repository(&reference(&registry, "docker/image"))
        .unwrap();
    let config = repo
        .push_bytes(
            MediaType::DockerConfig,
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec()
                .into(),
        )
        .await
        .unwrap();
    let layer = repo
        .push_bytes(MediaType::DockerLayer, vec![0x1f, 0x8b, 0, 0].into())
        .await
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": config.media_type.as_str(), "size": config.size, "digest": config.digest.as_str()},
        "layers": [{"mediaType": layer.media_type.as_str(), "size": layer.size, "digest": layer.digest.as_str()}]
    });
    // Pretty-printed on purpose: the digest is of these exact bytes, whitespace included.
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let manifest = ManifestBytes::parse(bytes.clone(), None).unwrap();
    assert!(matches!(
        manifest.manifest(),
        oci_spec_types::Manifest::DockerImage(_)
    ));
    repo.put_manifest(&manifest, Some("docker")).await.unwrap();
    let fetched = repo.get_manifest("docker").await.unwrap();
    assert_eq!(fetched.bytes(), &bytes[..]);
    assert_eq!(fetched.media_type(), MediaType::DockerManifest);

    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": bytes.len(), "digest": manifest.digest().as_str(), "platform": {"architecture": "amd64", "os": "linux"}}]
    });
    let list = ManifestBytes::parse(serde_json::to_vec(&list).unwrap(), None).unwrap();
    repo.put_manifest(&list, Some("list")).await.unwrap();
    let fetched = repo.get_manifest("list").await.unwrap();
    assert!(matches!(
        fetched.manifest(),
        oci_spec_types::Manifest::DockerList(_)
    ));
    assert_eq!(fetched.digest(), list.digest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_follows_link_pagination() {
    let registry = start(RegistryOptions::default());
    let client = Client::new(ClientConfig::default()).unwrap();
    for i in 0..5 {
        let repo = client
            .repository(&reference(&registry, &format!("cat/r{i}")))
            .unwrap();
        repo.push_bytes(MediaType::ImageLayer, format!("{i}").into_bytes().into())
            .await
            .unwrap();
    }
    let registry_ref: Reference = reference(&registry, "cat/r0");
    let paged = client.catalog_paged(&registry_ref, Some(2)).await.unwrap();
    assert_eq!(
        paged,
        ["cat/r0", "cat/r1", "cat/r2", "cat/r3", "cat/r4"],
        "three pages of two joined in order"
    );
    assert_eq!(client.catalog(&registry_ref).await.unwrap(), paged);
}
