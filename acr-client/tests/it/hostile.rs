//! Hostile artifacts: titles that try to escape the output folder, symlinks planted in it,
//! duplicate titles. Each is refused with a clear error and nothing is written outside.

use acr_client::{Client, ClientConfig, ContentStore, Error, PullOptions, pull_files};
use acr_testkit::{Registry, RegistryOptions};
use oci_spec_types::{Descriptor, ImageManifest, ManifestBytes, MediaType, annotations};

async fn push_titled(store: &dyn ContentStore, tag: &str, titles: &[&str]) {
    let mut layers = Vec::new();
    for (i, title) in titles.iter().enumerate() {
        let d = store
            .push_bytes(MediaType::ImageLayer, format!("payload {i}").into())
            .await
            .unwrap();
        layers.push(d.with_annotation(annotations::TITLE, *title));
    }
    store
        .push_bytes(MediaType::EmptyJson, "{}".into())
        .await
        .unwrap();
    let manifest = ManifestBytes::from_manifest(
        ImageManifest::artifact(MediaType::from("application/vnd.evil"), layers).into(),
    );
    store
        .put_manifest(&manifest, &[tag.to_owned()])
        .await
        .unwrap();
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        found.push(entry.file_name().to_string_lossy().into_owned());
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaping_titles_are_refused_before_anything_is_written() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client
        .repository(&format!("{}/evil/titles", registry.host()).parse().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for (i, bad) in ["../x", "/etc/x", "a/../../x", "..\\x", "C:\\x", "x\0y"]
        .iter()
        .enumerate()
    {
        let tag = format!("t{i}");
        // A good file first: the bad title must stop the pull before even that one is written.
        push_titled(&repo, &tag, &["good.txt", bad]).await;
        let err = pull_files(&repo, &tag, &out, &PullOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArtifact { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("unsafe file name"), "{err}");
        assert!(
            !out.join("good.txt").exists(),
            "{bad:?}: nothing is written"
        );
    }
    assert!(
        files_under(dir.path()).is_empty(),
        "nothing was created at all: {:?}",
        files_under(dir.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_titles_and_planted_symlinks_are_refused() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client
        .repository(&format!("{}/evil/links", registry.host()).parse().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    push_titled(&repo, "dup", &["same.txt", "./same.txt"]).await;
    let err = pull_files(
        &repo,
        "dup",
        &dir.path().join("dup"),
        &PullOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("two layers are titled"), "{err}");

    // A folder in the output that is a symlink to somewhere else.
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("sub")).unwrap();
    push_titled(&repo, "through-link", &["sub/file.txt"]).await;
    let err = pull_files(&repo, "through-link", &out, &PullOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("through a symbolic link"), "{err}");
    assert!(
        files_under(&outside).is_empty(),
        "nothing written through the link"
    );

    // A file in the output that is a symlink: never written through.
    let target = outside.join("victim");
    std::fs::write(&target, b"keep me").unwrap();
    std::os::unix::fs::symlink(&target, out.join("plain.txt")).unwrap();
    push_titled(&repo, "onto-link", &["plain.txt"]).await;
    let err = pull_files(&repo, "onto-link", &out, &PullOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptors_that_lie_about_size_stop_at_the_declared_size() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client
        .repository(&format!("{}/evil/sizes", registry.host()).parse().unwrap())
        .unwrap();
    let real = repo
        .push_bytes(MediaType::ImageLayer, vec![7u8; 100_000].into())
        .await
        .unwrap();
    let lying = Descriptor::new(MediaType::ImageLayer, real.digest.clone(), 10)
        .with_annotation(annotations::TITLE, "small.bin");
    repo.push_bytes(MediaType::EmptyJson, "{}".into())
        .await
        .unwrap();
    let manifest = ManifestBytes::from_manifest(
        ImageManifest::artifact(MediaType::from("application/vnd.evil"), vec![lying]).into(),
    );
    repo.put_manifest(&manifest, Some("liar")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = pull_files(&repo, "liar", dir.path(), &PullOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { expected: 10, .. }),
        "{err:?}"
    );
    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
}

/// A tar+gzip layer with the ORAS unpack annotation, built entry by entry (raw headers, so
/// hostile names and links can be written).
fn hostile_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        // Write the name bytes directly: `set_path` refuses `..`, which is the point here.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        if !link.is_empty() {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_directory_archives_are_refused() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client
        .repository(&format!("{}/evil/tar", registry.host()).parse().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            hostile_tar(&[("d/../../escaped.txt", tar::EntryType::Regular, "", b"x")]),
            "leads outside",
        ),
        (
            "absolute",
            hostile_tar(&[(
                "/tmp/acr-absolute-escape.txt",
                tar::EntryType::Regular,
                "",
                b"x",
            )]),
            "leads outside",
        ),
        (
            "symlink-out",
            hostile_tar(&[("d/link", tar::EntryType::Symlink, "/etc", b"")]),
            "points outside",
        ),
        (
            "symlink-up",
            hostile_tar(&[("d/link", tar::EntryType::Symlink, "../../..", b"")]),
            "points outside",
        ),
        (
            "hardlink-out",
            hostile_tar(&[("d/hard", tar::EntryType::Link, "../../../etc/passwd", b"")]),
            "points outside",
        ),
    ];
    for (name, archive, expected) in cases {
        let layer = repo
            .push_bytes(
                MediaType::from("application/vnd.oci.image.layer.v1.tar+gzip"),
                archive.into(),
            )
            .await
            .unwrap()
            .with_annotation(annotations::TITLE, "d")
            .with_annotation(annotations::ORAS_CONTENT_UNPACK, "true");
        repo.push_bytes(MediaType::EmptyJson, "{}".into())
            .await
            .unwrap();
        let manifest = ManifestBytes::from_manifest(
            ImageManifest::artifact(MediaType::from("application/vnd.evil"), vec![layer]).into(),
        );
        repo.put_manifest(&manifest, Some(name)).await.unwrap();
        let out = dir.path().join(name).join("out");
        let err = pull_files(&repo, name, &out, &PullOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArtifact { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(expected), "{name}: {err}");
        assert!(!dir.path().join(name).join("escaped.txt").exists());
        assert!(!std::path::Path::new("/tmp/acr-absolute-escape.txt").exists());
    }
}
