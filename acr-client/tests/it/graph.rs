//! The content graph against a real registry: attach, discover (with loops), copy.

use acr_client::{
    Client, ClientConfig, ContentStore, CopyOptions, FileToPush, OciLayout, PullOptions,
    PushOptions, Repository, copy, discover, index_referrer, pull_files, push_files, referrers,
};
use acr_testkit::{Registry, RegistryOptions};
use oci_spec_types::{Descriptor, ImageIndex, Manifest, ManifestBytes, MediaType};

fn repo(client: &Client, registry: &Registry, name: &str) -> Repository {
    client
        .repository(&format!("{}/{name}", registry.host()).parse().unwrap())
        .unwrap()
}

async fn artifact(
    store: &dyn ContentStore,
    dir: &std::path::Path,
    name: &str,
    content: &[u8],
    subject: Option<Descriptor>,
    artifact_type: &str,
    tags: &[&str],
) -> ManifestBytes {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let options = PushOptions {
        artifact_type: Some(MediaType::from(artifact_type)),
        subject,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..PushOptions::default()
    };
    push_files(store, &[FileToPush::new(&path)], &options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_discover_through_the_fallback_tag() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let app = repo(&client, &registry, "graph/app");
    let dir = tempfile::tempdir().unwrap();
    let image = artifact(
        &app,
        dir.path(),
        "app.bin",
        b"the app",
        None,
        "application/vnd.test.app",
        &["v1"],
    )
    .await;
    let sbom = artifact(
        &app,
        dir.path(),
        "sbom.json",
        b"{}",
        Some(image.descriptor()),
        "application/vnd.test.sbom",
        &[],
    )
    .await;
    let sig = artifact(
        &app,
        dir.path(),
        "sig",
        b"signed",
        Some(image.descriptor()),
        "application/vnd.test.sig",
        &[],
    )
    .await;
    let sbom_sig = artifact(
        &app,
        dir.path(),
        "sig2",
        b"signed sbom",
        Some(sbom.descriptor()),
        "application/vnd.test.sig",
        &[],
    )
    .await;

    // docker-registry 2.8 has no referrers API: the fallback tag holds them.
    let all = referrers(&app, image.digest(), None).await.unwrap();
    let digests: Vec<_> = all.iter().map(|d| d.digest.clone()).collect();
    assert_eq!(digests, [sbom.digest().clone(), sig.digest().clone()]);
    assert_eq!(
        all[0].artifact_type,
        Some(MediaType::from("application/vnd.test.sbom"))
    );
    let sigs = referrers(
        &app,
        image.digest(),
        Some(&MediaType::from("application/vnd.test.sig")),
    )
    .await
    .unwrap();
    assert_eq!(sigs.len(), 1);

    let tree = discover(&app, image.digest(), None, 5).await.unwrap();
    assert_eq!(tree.len(), 2);
    assert_eq!(tree[0].referrers.len(), 1);
    assert_eq!(&tree[0].referrers[0].descriptor.digest, sbom_sig.digest());
    assert!(
        discover(&app, image.digest(), None, 1).await.unwrap()[0]
            .referrers
            .is_empty(),
        "depth bounds the walk"
    );

    // A fallback index that lies and makes a loop (the SBOM "refers" back to the image): the
    // walk ends, each manifest shown once.
    index_referrer(&app, sbom.digest(), &image).await.unwrap();
    let looped = discover(&app, image.digest(), None, 16).await.unwrap();
    let count = |nodes: &[acr_client::ReferrerNode]| -> usize {
        fn walk(nodes: &[acr_client::ReferrerNode]) -> usize {
            nodes.iter().map(|n| 1 + walk(&n.referrers)).sum()
        }
        walk(nodes)
    };
    assert_eq!(count(&looped), 3, "{looped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_within_a_registry_mounts_and_across_registries_streams() {
    let first = Registry::start(RegistryOptions::default()).unwrap();
    let second = Registry::start(RegistryOptions::default()).unwrap();
    let client = Client::new(ClientConfig {
        monolithic_limit: 1 << 20,
        ..ClientConfig::default()
    })
    .unwrap();
    let source = repo(&client, &first, "graph/source");
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 253) as u8).collect();
    let image = artifact(
        &source,
        dir.path(),
        "big.bin",
        &big,
        None,
        "application/vnd.test.app",
        &["v1"],
    )
    .await;
    let sig = artifact(
        &source,
        dir.path(),
        "sig",
        b"signature",
        Some(image.descriptor()),
        "application/vnd.test.sig",
        &[],
    )
    .await;

    let same = repo(&client, &first, "graph/mirror");
    let (root, stats) = copy(
        &source,
        &same,
        "v1",
        &CopyOptions {
            referrers: true,
            tags: vec!["v1".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(&root.digest, image.digest());
    assert_eq!(
        stats.blobs_copied, 0,
        "no blob bytes cross the client within one registry: {stats:?}"
    );
    assert!(stats.blobs_mounted >= 3, "{stats:?}");
    assert_eq!(
        same.get_manifest("v1").await.unwrap().bytes(),
        image.bytes(),
        "digest preserved"
    );
    assert_eq!(
        referrers(&same, image.digest(), None).await.unwrap()[0].digest,
        *sig.digest()
    );

    let other = repo(&client, &second, "graph/elsewhere");
    let (_, stats) = copy(
        &source,
        &other,
        "v1",
        &CopyOptions {
            referrers: true,
            tags: vec!["prod".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        stats.blobs_copied >= 3 && stats.blobs_mounted == 0,
        "{stats:?}"
    );
    let out = dir.path().join("out");
    pull_files(&other, "prod", &out, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), big);
    assert_eq!(
        referrers(&other, image.digest(), None).await.unwrap().len(),
        1
    );

    // Again: everything is already there.
    let (_, stats) = copy(&source, &other, "v1", &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (stats.blobs_copied, stats.blobs_mounted),
        (0, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_and_from_an_oci_layout_including_an_index() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let source = repo(&client, &registry, "graph/multi");
    let dir = tempfile::tempdir().unwrap();
    let a = artifact(
        &source,
        dir.path(),
        "a.txt",
        b"platform a",
        None,
        "application/vnd.test.a",
        &[],
    )
    .await;
    let b = artifact(
        &source,
        dir.path(),
        "b.txt",
        b"platform b",
        None,
        "application/vnd.test.b",
        &[],
    )
    .await;
    let index = ManifestBytes::from_manifest(Manifest::Index(ImageIndex::new(vec![
        a.descriptor(),
        b.descriptor(),
    ])));
    ContentStore::put_manifest(&source, &index, &["multi".to_owned()])
        .await
        .unwrap();

    let layout = OciLayout::create(&dir.path().join("layout")).await.unwrap();
    let (root, stats) = copy(
        &source,
        &layout,
        "multi",
        &CopyOptions {
            tags: vec!["multi".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(&root.digest, index.digest());
    assert_eq!(stats.manifests, 3, "{stats:?}");
    assert_eq!(layout.read(index.digest()).await.unwrap(), index.bytes());
    // index.json lists what was tagged, not every manifest reached through it.
    assert_eq!(layout.index().await.unwrap().manifests.len(), 1);

    let back = repo(&client, &registry, "graph/back");
    copy(
        &layout,
        &back,
        "multi",
        &CopyOptions {
            tags: vec!["multi".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        back.get_manifest("multi").await.unwrap().digest(),
        index.digest()
    );
    let out = dir.path().join("b-out");
    pull_files(&back, b.digest().as_str(), &out, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(out.join("b.txt")).unwrap(), b"platform b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_builds_and_receives_artifacts() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let memory = acr_client::MemoryStore::new();
    let image = artifact(
        &memory,
        dir.path(),
        "app.bin",
        b"built in memory",
        None,
        "application/vnd.test.app",
        &["v1"],
    )
    .await;
    let sig = artifact(
        &memory,
        dir.path(),
        "sig",
        b"signed",
        Some(image.descriptor()),
        "application/vnd.test.sig",
        &[],
    )
    .await;
    assert_eq!(
        referrers(&memory, image.digest(), None).await.unwrap()[0].digest,
        *sig.digest()
    );
    assert_eq!(
        memory.tags().await.unwrap(),
        [
            oci_distribution_proto::referrers_tag(image.digest()),
            "v1".to_owned()
        ]
    );

    // Memory -> registry -> another memory store, with referrers; digests preserved.
    let remote = repo(&client, &registry, "graph/from-memory");
    copy(
        &memory,
        &remote,
        "v1",
        &CopyOptions {
            referrers: true,
            tags: vec!["v1".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let back = acr_client::MemoryStore::new();
    copy(
        &remote,
        &back,
        "v1",
        &CopyOptions {
            referrers: true,
            tags: vec!["v1".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        back.get_manifest("v1").await.unwrap().bytes(),
        image.bytes()
    );
    assert_eq!(
        referrers(&back, image.digest(), None).await.unwrap().len(),
        1
    );
    let out = dir.path().join("out");
    pull_files(&back, "v1", &out, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(out.join("app.bin")).unwrap(),
        b"built in memory"
    );
    // A wrong descriptor is refused on the way in.
    let wrong = Descriptor::new(
        MediaType::ImageLayer,
        oci_spec_types::Digest::sha256_of(b"x"),
        15,
    );
    let stream = back.open_blob_stream(&image_layer(&image)).await.unwrap();
    assert!(back.push_stream(&wrong, stream).await.is_err());
}

fn image_layer(manifest: &ManifestBytes) -> Descriptor {
    match manifest.manifest() {
        Manifest::Image(m) => m.layers[0].clone(),
        _ => panic!("an image manifest"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_discover_in_an_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(&dir.path().join("layout")).await.unwrap();
    let image = artifact(
        &layout,
        dir.path(),
        "app.bin",
        b"app",
        None,
        "application/vnd.test.app",
        &["v1"],
    )
    .await;
    let sbom = artifact(
        &layout,
        dir.path(),
        "sbom.json",
        b"{}",
        Some(image.descriptor()),
        "application/vnd.test.sbom",
        &[],
    )
    .await;
    let sig = artifact(
        &layout,
        dir.path(),
        "sig",
        b"sig",
        Some(sbom.descriptor()),
        "application/vnd.test.sig",
        &[],
    )
    .await;
    let tree = discover(&layout, image.digest(), None, 4).await.unwrap();
    assert_eq!(&tree[0].descriptor.digest, sbom.digest());
    assert_eq!(&tree[0].referrers[0].descriptor.digest, sig.digest());
    // The fallback index is an ordinary tag of the layout.
    let tags = layout.tags().await.unwrap();
    assert!(
        tags.contains(&oci_distribution_proto::referrers_tag(image.digest())),
        "{tags:?}"
    );
}
