//! Interoperability with peer clients on the same real registry: the `oras` Python package
//! and skopeo. `cargo xtask test` installs both (pip and apt); see README.md.

use std::path::Path;
use std::process::Command;

use acr_client::{
    Client, ClientConfig, ContentStore, FileToPush, OciLayout, PullOptions, PushOptions,
    pull_files, push_files,
};
use acr_testkit::{Registry, RegistryOptions};
use oci_spec_types::{Manifest, MediaType};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}); `cargo xtask test` installs the peer clients")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn oras_py(script: &str) -> String {
    run(Command::new("python3").arg("-c").arg(script))
}

fn sample_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let files = vec![
        (
            "hello.txt".to_owned(),
            b"hello from the interop test\n".to_vec(),
        ),
        (
            "data.bin".to_owned(),
            (0..(1u32 << 20) + 3)
                .map(|i| (i * 31 % 251) as u8)
                .collect(),
        ),
        ("meta.json".to_owned(), br#"{"k":"v"}"#.to_vec()),
    ];
    for (name, content) in &files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_python_pushes_and_we_pull_identical_files() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = sample_files(dir.path());
    let target = format!("{}/interop/from-oras:v1", registry.host());
    oras_py(&format!(
        "import oras.client, os\nos.chdir({dir:?})\nc = oras.client.OrasClient(insecure=True)\nc.push(target={target:?}, files=['hello.txt', 'data.bin', 'meta.json:application/json'], disable_path_validation=True)",
        dir = dir.path().to_str().unwrap()
    ));
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client.repository(&target.parse().unwrap()).unwrap();
    let out = dir.path().join("ours");
    let (manifest, pulled) = pull_files(&repo, "v1", &out, &PullOptions::default())
        .await
        .unwrap();
    assert!(matches!(manifest.manifest(), Manifest::Image(_)));
    assert_eq!(pulled.len(), 3);
    for (name, content) in &files {
        assert_eq!(&std::fs::read(out.join(name)).unwrap(), content, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_push_and_oras_python_pulls_identical_files() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = sample_files(dir.path());
    let reference: oci_spec_types::Reference = format!("{}/interop/from-acr:v1", registry.host())
        .parse()
        .unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client.repository(&reference).unwrap();
    let to_push: Vec<FileToPush> = files
        .iter()
        .map(|(name, _)| FileToPush::new(&dir.path().join(name)))
        .collect();
    let options = PushOptions {
        tags: vec!["v1".into()],
        artifact_type: Some(MediaType::from("application/vnd.acr.interop")),
        ..Default::default()
    };
    push_files(&repo, &to_push, &options).await.unwrap();

    let out = dir.path().join("theirs");
    oras_py(&format!(
        "import oras.client\nc = oras.client.OrasClient(insecure=True)\nc.pull(target={target:?}, outdir={out:?})",
        target = reference.to_string(),
        out = out.to_str().unwrap()
    ));
    for (name, content) in &files {
        assert_eq!(&std::fs::read(out.join(name)).unwrap(), content, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_our_oci_layout_through_the_registry_and_back_unchanged() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = sample_files(dir.path());
    let layout_dir = dir.path().join("layout");
    let layout = OciLayout::create(&layout_dir).await.unwrap();
    let to_push: Vec<FileToPush> = files
        .iter()
        .map(|(name, _)| FileToPush::new(&dir.path().join(name)))
        .collect();
    let options = PushOptions {
        tags: vec!["v1".into()],
        artifact_type: Some(MediaType::from("application/vnd.acr.interop")),
        ..Default::default()
    };
    let manifest = push_files(&layout, &to_push, &options).await.unwrap();

    let remote = format!("docker://{}/interop/skopeo:v1", registry.host());
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout_dir.display()))
        .arg(&remote));

    // The registry holds exactly our manifest, and we read every file back from it.
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = client
        .repository(
            &format!("{}/interop/skopeo", registry.host())
                .parse()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        repo.get_manifest("v1").await.unwrap().digest(),
        manifest.digest()
    );
    let out = dir.path().join("from-registry");
    pull_files(&repo, "v1", &out, &PullOptions::default())
        .await
        .unwrap();
    for (name, content) in &files {
        assert_eq!(&std::fs::read(out.join(name)).unwrap(), content, "{name}");
    }

    // skopeo copies it back to a layout we can open, with the same digests.
    let back_dir = dir.path().join("back");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(&remote)
        .arg(format!("oci:{}:v1", back_dir.display())));
    let back = OciLayout::open(&back_dir).await.unwrap();
    let again = ContentStore::get_manifest(&back, "v1").await.unwrap();
    assert_eq!(again.digest(), manifest.digest());
    let out = dir.path().join("from-skopeo-layout");
    pull_files(&back, "v1", &out, &PullOptions::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(out.join("data.bin")).unwrap(), files[1].1);
}
