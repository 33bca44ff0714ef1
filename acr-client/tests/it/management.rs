//! ACR management API (`/acr/v1`) against the ACR emulator in front of a real docker-registry:
//! the .NET README's sample scenarios, the purge helper, and the fallback on a plain registry.

use std::time::Duration;

use acr_auth::{Credential, Secret};
use acr_client::{
    ArtifactOrder, AttributesUpdate, Client, ClientConfig, ContainerRegistry, Error, PlainHttp,
    PurgeOptions, Repository, TransportConfig,
};
use acr_testkit::{AcrEmulator, AcrEmulatorOptions, Registry, RegistryOptions};
use oci_spec_types::{Digest, ImageManifest, ManifestBytes, MediaType};

fn https_client(ca: Option<std::path::PathBuf>) -> Client {
    Client::new(ClientConfig {
        transport: TransportConfig {
            plain_http: PlainHttp::Never,
            ca_file: ca,
            ..TransportConfig::default()
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

/// An emulator with anonymous pull, an admin client (AAD identity via refresh token) and an
/// anonymous one.
fn setup() -> (AcrEmulator, Client, Client) {
    let emulator = AcrEmulator::start(AcrEmulatorOptions {
        anonymous_pull: true,
        ..AcrEmulatorOptions::default()
    })
    .unwrap();
    let admin = https_client(emulator.ca_file());
    admin.set_credential(
        &emulator.host(),
        Credential::RefreshToken(Secret::new(emulator.mint_refresh_token("admin").unwrap())),
    );
    let anonymous = https_client(emulator.ca_file());
    (emulator, admin, anonymous)
}

fn content(client: &Client, host: &str, name: &str) -> Repository {
    client
        .repository(&format!("{host}/{name}").parse().unwrap())
        .unwrap()
}

/// Pushes a small linux/amd64 image whose layer holds `text`; returns its digest.
async fn push_image(repo: &Repository, text: &str, tag: Option<&str>) -> Digest {
    let config = repo
        .push_bytes(
            MediaType::ImageConfig,
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .into(),
        )
        .await
        .unwrap();
    let layer = repo
        .push_bytes(MediaType::ImageLayer, text.to_owned().into())
        .await
        .unwrap();
    let manifest = ManifestBytes::from_manifest(ImageManifest::new(config, vec![layer]).into());
    repo.put_manifest(&manifest, tag).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_repositories_and_list_tags_anonymously() {
    let (emulator, admin, anonymous) = setup();
    let host = emulator.host();
    let hello = content(&admin, &host, "library/hello-world");
    let digest = push_image(&hello, "hello", Some("latest")).await;
    push_image(&hello, "hello", Some("v1")).await;
    push_image(&content(&admin, &host, "alpine"), "alpine", Some("3.19")).await;
    push_image(&content(&admin, &host, "busybox"), "busybox", Some("1")).await;

    let registry = ContainerRegistry::new(&admin, &host).unwrap();
    let names = registry.repository_names().all().await.unwrap();
    assert_eq!(names, ["alpine", "busybox", "library/hello-world"]);
    // One name per page, following ACR's Link header.
    let mut pager = registry.repository_names_paged(Some(1));
    let mut pages = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        pages.push(page);
    }
    assert_eq!(pages, [["alpine"], ["busybox"], ["library/hello-world"]]);

    // The sample: an anonymous client lists the aliases of library/hello-world:latest.
    let public = ContainerRegistry::new(&anonymous, &host).unwrap();
    let image = public.artifact("library/hello-world", "latest");
    assert_eq!(
        image.fully_qualified_reference(),
        format!("{host}/library/hello-world:latest")
    );
    let tags = image
        .tag_properties(ArtifactOrder::None)
        .await
        .unwrap()
        .all()
        .await
        .unwrap();
    let names: Vec<String> = tags.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["latest", "v1"]);
    assert!(tags.iter().all(|t| t.digest == digest.to_string()));
    assert_eq!(tags[0].repository, "library/hello-world");
    assert!(tags[0].created_time.is_some());
    assert_eq!(image.digest().await.unwrap(), digest);
    // Anonymous access reads but does not write.
    let err = image
        .update_tag_properties("latest", &AttributesUpdate::lock())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("metadata_write"), "{err}");

    let properties = image.manifest_properties().await.unwrap();
    assert_eq!(properties.digest, digest.to_string());
    assert_eq!(properties.tags, ["latest", "v1"]);
    assert_eq!(properties.architecture.as_deref(), Some("amd64"));
    assert_eq!(properties.os.as_deref(), Some("linux"));
    assert_eq!(
        properties.config_media_type.as_deref(),
        Some("application/vnd.oci.image.config.v1+json")
    );
    assert!(properties.image_size.unwrap_or_default() > 5);

    let repo = registry
        .repository("library/hello-world")
        .properties()
        .await
        .unwrap();
    assert_eq!((repo.manifest_count, repo.tag_count), (1, 2));
    assert_eq!(repo.registry, host);
    let err = registry.repository("nope").properties().await.unwrap_err();
    assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_tag_refuses_pushes_and_deletes_clearly() {
    let (emulator, admin, _) = setup();
    let host = emulator.host();
    let repo = content(&admin, &host, "library/hello-world");
    let first = push_image(&repo, "v1 content", Some("latest")).await;
    let registry = ContainerRegistry::new(&admin, &host).unwrap();
    let image = registry.artifact("library/hello-world", "latest");

    // The sample: set CanWrite = false, CanDelete = false on "latest".
    let locked = image
        .update_tag_properties(
            "latest",
            &AttributesUpdate::new().can_write(false).can_delete(false),
        )
        .await
        .unwrap();
    assert!(!locked.changeable_attributes.write_enabled);
    assert!(!locked.changeable_attributes.delete_enabled);
    assert!(locked.changeable_attributes.read_enabled);
    let again = image.get_tag_properties("latest").await.unwrap();
    assert_eq!(again.changeable_attributes, locked.changeable_attributes);

    // A push to the locked tag fails, naming ACR's reason.
    let config = repo
        .push_bytes(MediaType::EmptyJson, "{}".into())
        .await
        .unwrap();
    let other = ManifestBytes::from_manifest(ImageManifest::new(config, Vec::new()).into());
    let err = repo.put_manifest(&other, Some("latest")).await.unwrap_err();
    assert!(
        err.to_string().contains("REGISTRY_DISALLOWED_OPERATION"),
        "{err}"
    );
    assert_eq!(repo.resolve("latest").await.unwrap().unwrap().digest, first);
    // Pushing another tag still works.
    repo.put_manifest(&other, Some("next")).await.unwrap();

    // Deleting the tag or its manifest fails and says it is locked.
    let err = image.delete_tag("latest").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("deleting tag library/hello-world:latest failed") && text.contains("locked"),
        "{text}"
    );
    let err = image.delete().await.unwrap_err();
    assert!(matches!(err, Error::Management { .. }), "{err:?}");
    assert!(err.to_string().contains("locked"), "{err}");
    let err = repo.delete_manifest(&first).await.unwrap_err();
    assert!(
        err.to_string().contains("REGISTRY_DISALLOWED_OPERATION"),
        "{err}"
    );
    // A locked repository cannot be deleted either.
    let err = registry
        .delete_repository("library/hello-world")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");

    // Unlocked, the tag goes alone: the manifest stays.
    image
        .update_tag_properties("latest", &AttributesUpdate::unlock())
        .await
        .unwrap();
    image.delete_tag("latest").await.unwrap();
    let err = image.get_tag_properties("latest").await.unwrap_err();
    assert!(err.to_string().contains("TAG_UNKNOWN"), "{err}");
    let by_digest = registry.artifact("library/hello-world", first.as_str());
    let properties = by_digest.manifest_properties().await.unwrap();
    assert!(properties.tags.is_empty());

    // Manifest and repository attributes.
    let updated = by_digest
        .update_manifest_properties(&AttributesUpdate::new().can_delete(false))
        .await
        .unwrap();
    assert!(!updated.changeable_attributes.delete_enabled);
    let err = by_digest.delete().await.unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    let repository = registry.repository("library/hello-world");
    let props = repository
        .update_properties(&AttributesUpdate::new().can_write(false))
        .await
        .unwrap();
    assert!(!props.changeable_attributes.write_enabled);
    let err = repo
        .put_manifest(&other, Some("blocked"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("REGISTRY_DISALLOWED_OPERATION"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_images_older_than_the_newest_three() {
    let (emulator, admin, _) = setup();
    let host = emulator.host();
    for name in ["app", "tools"] {
        let repo = content(&admin, &host, name);
        for i in 0..5 {
            push_image(&repo, &format!("{name} {i}"), Some(&format!("v{i}"))).await;
        }
    }
    let registry = ContainerRegistry::new(&admin, &host).unwrap();

    // Paged and ordered listings.
    let repository = registry.repository("app");
    let ascending = repository
        .manifest_properties(ArtifactOrder::LastUpdatedAscending)
        .all()
        .await
        .unwrap();
    let tags: Vec<&str> = ascending.iter().map(|m| m.tags[0].as_str()).collect();
    assert_eq!(tags, ["v0", "v1", "v2", "v3", "v4"]);
    let mut pager =
        repository.manifest_properties_paged(ArtifactOrder::LastUpdatedDescending, Some(2));
    let mut sizes = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        sizes.push(page.len());
    }
    assert_eq!(sizes, [2, 2, 1]);
    let newest_tags = repository
        .tag_properties(ArtifactOrder::LastUpdatedDescending, None, None)
        .all()
        .await
        .unwrap();
    assert_eq!(newest_tags[0].name, "v4");

    // The sample, verbatim in spirit: newest first, skip three, delete tags then the image.
    for name in registry.repository_names().all().await.unwrap() {
        let repository = registry.repository(&name);
        let manifests = repository
            .manifest_properties(ArtifactOrder::LastUpdatedDescending)
            .all()
            .await
            .unwrap();
        for manifest in manifests.iter().skip(3) {
            let image = repository.artifact(&manifest.digest);
            for tag in &manifest.tags {
                image.delete_tag(tag).await.unwrap();
            }
            image.delete().await.unwrap();
        }
    }
    for name in ["app", "tools"] {
        let left = registry
            .repository(name)
            .manifest_properties(ArtifactOrder::LastUpdatedDescending)
            .all()
            .await
            .unwrap();
        let tags: Vec<&str> = left
            .iter()
            .flat_map(|m| m.tags.iter())
            .map(String::as_str)
            .collect();
        assert_eq!(tags, ["v4", "v3", "v2"], "{name}");
        let mut tags = content(&admin, &host, name).tags().await.unwrap();
        tags.sort();
        assert_eq!(tags, ["v2", "v3", "v4"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_keeps_the_newest_skips_locked_and_dry_runs() {
    let (emulator, admin, _) = setup();
    let host = emulator.host();
    let repo = content(&admin, &host, "purge/me");
    let mut digests = Vec::new();
    for (i, tag) in ["v1.0", "v1.1", "v2.0-rc1", "v2.0", "v2.1"]
        .iter()
        .enumerate()
    {
        digests.push(push_image(&repo, &format!("image {i}"), Some(tag)).await);
    }
    let untagged = push_image(&repo, "untagged", None).await;
    // The oldest one also carries a second tag that the filter below does not match.
    let oldest = repo.get_manifest("v1.0").await.unwrap();
    repo.put_manifest(&oldest, Some("stable")).await.unwrap();
    let registry = ContainerRegistry::new(&admin, &host).unwrap();
    let repository = registry.repository("purge/me");
    repository
        .artifact("v1.1")
        .update_tag_properties("v1.1", &AttributesUpdate::lock())
        .await
        .unwrap();

    // Nothing is old enough.
    let report = repository
        .purge(&PurgeOptions {
            older_than: Some(Duration::from_secs(3600)),
            ..PurgeOptions::default()
        })
        .await
        .unwrap();
    assert!(report.deleted.is_empty() && report.locked.is_empty());

    // Untagged only, dry run.
    let report = repository
        .purge(&PurgeOptions {
            untagged_only: true,
            dry_run: true,
            ..PurgeOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(report.deleted[0].digest, untagged.to_string());

    // Tags v1.*: v1.0 loses only that tag (it keeps "stable"), the locked v1.1 is skipped
    // and reported; in a dry run first, then for real.
    let options = PurgeOptions {
        keep: 0,
        tag_filter: Some("v1.*".into()),
        dry_run: true,
        ..PurgeOptions::default()
    };
    let dry = repository.purge(&options).await.unwrap();
    assert_eq!(dry.locked.len(), 1, "{dry:?}");
    assert_eq!(dry.locked[0].locked, ["tag v1.1"]);
    assert_eq!(dry.deleted.len(), 1, "{dry:?}");
    assert!(dry.deleted[0].untagged_only, "v1.0 keeps its stable tag");
    assert_eq!(dry.deleted[0].tags, ["v1.0"]);
    assert_eq!(
        repository
            .manifest_properties(ArtifactOrder::None)
            .all()
            .await
            .unwrap()
            .len(),
        6
    );
    let real = repository
        .purge(&PurgeOptions {
            dry_run: false,
            ..options
        })
        .await
        .unwrap();
    assert_eq!(real.deleted, dry.deleted);
    let mut tags = repo.tags().await.unwrap();
    tags.sort();
    assert_eq!(tags, ["stable", "v1.1", "v2.0", "v2.0-rc1", "v2.1"]);

    // Everything but the two newest: the locked v1.1 stays, the rest goes.
    let report = repository
        .purge(&PurgeOptions {
            keep: 2,
            ..PurgeOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.kept.len(), 2);
    assert_eq!(report.locked.len(), 1);
    assert_eq!(report.deleted.len(), 3, "{report:?}");
    let mut left: Vec<String> = repository
        .manifest_properties(ArtifactOrder::None)
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.digest)
        .collect();
    left.sort();
    let mut expected = vec![
        digests[1].to_string(),
        untagged.to_string(),
        // The newest two: the untagged image was pushed after v2.1, then "stable" moved
        // v1.0 to the top.
        digests[0].to_string(),
    ];
    expected.sort();
    assert_eq!(left, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_download_delete_manifest_blob_and_repository() {
    let (emulator, admin, _) = setup();
    let host = emulator.host();
    let repo = content(&admin, &host, "sample-oci-image");
    // Upload and download an image (the content client samples).
    let config = repo
        .push_bytes(MediaType::ImageConfig, "Sample config".into())
        .await
        .unwrap();
    let layer = repo
        .push_bytes(MediaType::ImageLayer, "Sample layer".into())
        .await
        .unwrap();
    let manifest = ManifestBytes::from_manifest(
        ImageManifest::new(config.clone(), vec![layer.clone()]).into(),
    );
    let digest = repo.put_manifest(&manifest, Some("demo")).await.unwrap();
    let pulled = repo.get_manifest("demo").await.unwrap();
    assert_eq!(pulled.digest(), &digest);
    assert_eq!(
        &repo.fetch_bytes(&layer).await.unwrap()[..],
        b"Sample layer"
    );

    // Delete a manifest (by digest, found through the tag).
    let registry = ContainerRegistry::new(&admin, &host).unwrap();
    let found = registry
        .artifact("sample-oci-image", "demo")
        .manifest_properties()
        .await
        .unwrap();
    repo.delete_manifest(&Digest::parse(&found.digest).unwrap())
        .await
        .unwrap();
    assert!(repo.resolve("demo").await.unwrap().is_none());
    // Delete a blob.
    repo.delete_blob(&layer.digest).await.unwrap();
    assert_eq!(repo.blob_exists(&layer.digest).await.unwrap(), None);

    // Delete a repository: ACR reports what went.
    let other = content(&admin, &host, "doomed");
    let kept = push_image(&other, "one", Some("a")).await;
    push_image(&other, "one", Some("b")).await;
    let result = registry.delete_repository("doomed").await.unwrap();
    assert_eq!(result.manifests_deleted, [kept.to_string()]);
    assert_eq!(result.tags_deleted, ["a", "b"]);
    assert!(
        !registry
            .repository_names()
            .all()
            .await
            .unwrap()
            .contains(&"doomed".to_owned())
    );
    let err = registry
        .repository("doomed")
        .properties()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");
    // Pushing again brings it back.
    push_image(&other, "two", Some("c")).await;
    let props = registry.repository("doomed").properties().await.unwrap();
    assert_eq!(props.tag_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_registry_falls_back_to_the_oci_api_or_says_it_is_not_acr() {
    let registry = tokio::task::spawn_blocking(|| Registry::start(RegistryOptions::default()))
        .await
        .unwrap()
        .unwrap();
    let host = registry.host();
    let client = Client::new(ClientConfig::default()).unwrap();
    let repo = content(&client, &host, "team/app");
    let v1 = push_image(&repo, "one", Some("v1")).await;
    push_image(&repo, "one", Some("latest")).await;
    let v2 = push_image(&repo, "two", Some("v2")).await;

    let plain = ContainerRegistry::new(&client, &host).unwrap();
    assert_eq!(plain.repository_names().all().await.unwrap(), ["team/app"]);
    let image = plain.artifact("team/app", "v1");
    assert_eq!(image.digest().await.unwrap(), v1);
    let mut tags: Vec<String> = image
        .tag_properties(ArtifactOrder::None)
        .await
        .unwrap()
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    tags.sort();
    assert_eq!(tags, ["latest", "v1"]);
    let tag = image.get_tag_properties("v2").await.unwrap();
    assert_eq!(tag.digest, v2.to_string());
    let properties = image.manifest_properties().await.unwrap();
    assert_eq!(properties.digest, v1.to_string());
    assert_eq!(
        properties.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );

    // ACR-only operations say so instead of a bare 404.
    let not_acr = |err: Error| {
        let text = err.to_string();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert!(
            text.contains("not supported by this registry")
                && text.contains("not an Azure Container Registry"),
            "{text}"
        );
    };
    not_acr(
        image
            .update_tag_properties("v1", &AttributesUpdate::lock())
            .await
            .unwrap_err(),
    );
    not_acr(image.delete_tag("v1").await.unwrap_err());
    not_acr(plain.repository("team/app").properties().await.unwrap_err());
    not_acr(
        plain
            .repository("team/app")
            .manifest_properties(ArtifactOrder::LastUpdatedDescending)
            .all()
            .await
            .unwrap_err(),
    );
    not_acr(plain.delete_repository("team/app").await.unwrap_err());

    // Deleting the artifact is OCI: it works, and its tags go with it.
    image.delete().await.unwrap();
    assert!(repo.resolve("latest").await.unwrap().is_none());
    assert_eq!(repo.tags().await.unwrap(), ["v2"]);
    drop(registry);
}
