//! The OCI image layout store.

use acr_client::{Error, OciLayout};
use oci_spec_types::{Descriptor, Digest, ImageManifest, ManifestBytes, MediaType};

fn artifact(files: &[&[u8]]) -> (Vec<Descriptor>, ManifestBytes) {
    let layers: Vec<Descriptor> = files
        .iter()
        .map(|f| Descriptor::for_bytes(MediaType::ImageLayer, f))
        .collect();
    let manifest = ImageManifest::artifact(MediaType::from("application/vnd.test"), layers.clone());
    (layers, ManifestBytes::from_manifest(manifest.into()))
}

#[tokio::test]
async fn create_writes_a_valid_empty_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path()).await.unwrap();
    let marker = std::fs::read_to_string(dir.path().join("oci-layout")).unwrap();
    assert_eq!(marker, r#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
    assert!(layout.tags().await.unwrap().is_empty());
    // Opening again keeps what is there.
    OciLayout::create(dir.path()).await.unwrap();
}

#[tokio::test]
async fn open_refuses_a_folder_that_is_not_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    let err = OciLayout::open(dir.path()).await.unwrap_err();
    assert!(err.to_string().contains("not an OCI image layout"), "{err}");
}

#[tokio::test]
async fn manifests_and_blobs_round_trip_with_tags() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path()).await.unwrap();
    let (layers, manifest) = artifact(&[b"one", b"two"]);
    for (layer, content) in layers.iter().zip([&b"one"[..], b"two"]) {
        layout.write(layer, content).await.unwrap();
    }
    layout
        .write_bytes(MediaType::EmptyJson, b"{}")
        .await
        .unwrap();
    let descriptor = layout
        .put_manifest(&manifest, &["v1", "latest"])
        .await
        .unwrap();
    assert_eq!(descriptor.digest, *manifest.digest());

    assert_eq!(layout.tags().await.unwrap(), ["latest", "v1"]);
    let resolved = layout.resolve("v1").await.unwrap();
    assert_eq!(resolved.digest, *manifest.digest());
    assert_eq!(resolved.media_type, MediaType::ImageManifest);
    let by_digest = layout.resolve(manifest.digest().as_str()).await.unwrap();
    assert_eq!(by_digest.digest, *manifest.digest());
    assert_eq!(
        layout.read(manifest.digest()).await.unwrap(),
        manifest.bytes()
    );
    assert_eq!(layout.read(&layers[1].digest).await.unwrap(), b"two");
    let path = layout.blob_path(&layers[0].digest);
    assert_eq!(
        path,
        dir.path()
            .join("blobs/sha256")
            .join(layers[0].digest.encoded())
    );
}

#[tokio::test]
async fn retagging_moves_the_tag() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path()).await.unwrap();
    let (_, first) = artifact(&[b"a"]);
    let (_, second) = artifact(&[b"b"]);
    layout.put_manifest(&first, &["v1"]).await.unwrap();
    layout.put_manifest(&second, &["v1"]).await.unwrap();
    assert_eq!(layout.resolve("v1").await.unwrap().digest, *second.digest());
    assert_eq!(layout.index().await.unwrap().manifests.len(), 1);
}

#[tokio::test]
async fn wrong_content_never_becomes_a_blob() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path()).await.unwrap();
    let expected = Descriptor::for_bytes(MediaType::ImageLayer, b"good content");

    let err = layout
        .write(&expected, &b"evil content"[..])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let err = layout.write(&expected, &b"short"[..]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::SizeMismatch {
                expected: 12,
                actual: 5,
                ..
            }
        ),
        "{err}"
    );
    let longer = vec![b'x'; 1 << 21];
    let err = layout.write(&expected, &longer[..]).await.unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { expected: 12, .. }),
        "{err}"
    );

    assert!(!layout.exists(&expected.digest).await);
    // No partial files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_corrupted_blob_is_detected_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path()).await.unwrap();
    let d = layout
        .write_bytes(MediaType::ImageConfig, b"{\"a\":1}")
        .await
        .unwrap();
    std::fs::write(layout.blob_path(&d.digest), b"{\"a\":2}").unwrap();
    let err = layout.read(&d.digest).await.unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    let missing = Digest::sha256_of(b"never written");
    let err = layout.read(&missing).await.unwrap_err();
    assert!(err.to_string().contains("is not in the layout"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_no_tags() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let layout = layout.clone();
        tasks.push(tokio::spawn(async move {
            let content = format!("file {i}");
            let (_, manifest) = artifact(&[content.as_bytes()]);
            layout
                .put_manifest(&manifest, &[&format!("t{i}")])
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(layout.tags().await.unwrap().len(), 24);
    assert!(!dir.path().join("index.json.lock").exists());
}
