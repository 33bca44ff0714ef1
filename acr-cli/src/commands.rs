//! What each command does, on top of `acr-client`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use acr_auth::{Credential, CredentialSource, DockerConfig, Secret, StoredCredential};
use acr_client::{
    Client, ClientConfig, ContentStore, FileToPush, ImageSpec, OciLayout, PlainHttp, PullOptions,
    PushOptions, TransportConfig, pull_files, push_files,
};
use anyhow::{Context, bail};
use clap::CommandFactory;
use oci_spec_types::{Annotations, Digest, MediaType, Reference};
use serde_json::json;

use crate::args::{
    AttachArgs, AttributeArgs, BlobCommand, Command, CopyArgs, DiscoverArgs, DiscoverFormat,
    Format, ImageSpecArg, LoginArgs, LogoutArgs, ManifestCommand, OrderBy, PullArgs, PurgeArgs,
    PushArgs, RefArgs, RegistryArgs, Remote, RepoCommand, TagAction, TagCommand,
};

pub(crate) async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Push(args) => push(args).await,
        Command::Pull(args) => pull(args).await,
        Command::Attach(args) => attach(args).await,
        Command::Discover(args) => discover(args).await,
        Command::Copy(args) => copy(args).await,
        Command::Login(args) => login(args).await,
        Command::Logout(args) => logout(args),
        Command::Resolve(args) => resolve(args).await,
        Command::Tag(args) => tag(args).await,
        Command::Purge(args) => purge(args).await,
        Command::Untag {
            target,
            via_placeholder,
        } => {
            let reference = parse_reference(&target.reference)?;
            let tag = reference
                .tag()
                .context("name the tag to delete: REGISTRY/REPO:TAG")?
                .to_owned();
            let repo = client_for(&target.remote, reference.registry())?.repository(&reference)?;
            repo.delete_tag(&tag, via_placeholder).await?;
            println!("Untagged {reference}");
            Ok(())
        }
        Command::Manifest(command) => manifest(command).await,
        Command::Blob(command) => blob(command).await,
        Command::Repo(RepoCommand::Tags { target, last }) => repo_tags(target, last).await,
        Command::Repo(RepoCommand::Ls(args)) => repo_ls(args).await,
        Command::Repo(RepoCommand::Show(args)) => {
            let (registry, reference) = management(&args)?;
            let properties = registry
                .repository(reference.repository())
                .properties()
                .await?;
            print_json(&serde_json::to_value(properties)?)
        }
        Command::Repo(RepoCommand::Update { target, attributes }) => {
            let (registry, reference) = management(&target)?;
            let properties = registry
                .repository(reference.repository())
                .update_properties(&attributes_update(&attributes)?)
                .await?;
            print_json(&serde_json::to_value(properties)?)
        }
        Command::Repo(RepoCommand::Delete(args)) => {
            let (registry, reference) = management(&args)?;
            let deleted = registry.delete_repository(reference.repository()).await?;
            match args.output.format {
                Format::Text => println!("Deleted {}", reference.repository_only()),
                Format::Json => print_json(&json!({
                    "repository": reference.repository_only().to_string(),
                    "deletedManifests": deleted.manifests_deleted,
                    "deletedTags": deleted.tags_deleted,
                }))?,
            }
            Ok(())
        }
        Command::Manpage => {
            clap_mangen::Man::new(crate::args::Cli::command()).render(&mut std::io::stdout())?;
            Ok(())
        }
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut crate::args::Cli::command(),
                "acr",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

fn parse_reference(text: &str) -> anyhow::Result<Reference> {
    // With `REGISTRY_ENDPOINT` (what the Azure SDK samples read) or `ACR_REGISTRY` set, a
    // reference whose first part is not a host (no `.` or `:`, not `localhost`) is in that
    // registry: `samples/artifact:readme`, as docker decides.
    let first = text.split('/').next().unwrap_or_default();
    let looks_like_host =
        first.contains('.') || first.contains(':') || first == "localhost" || !text.contains('/');
    let full = match default_registry() {
        Some(registry) if !looks_like_host || !text.contains('/') => format!("{registry}/{text}"),
        _ => text.to_owned(),
    };
    full.parse::<Reference>()
        .with_context(|| format!("invalid reference {text:?}"))
}

/// The registry from `ACR_REGISTRY` or `REGISTRY_ENDPOINT` (scheme and slashes dropped).
fn default_registry() -> Option<String> {
    ["ACR_REGISTRY", "REGISTRY_ENDPOINT"]
        .iter()
        .find_map(|name| {
            let value = std::env::var(name).ok()?;
            let host = value
                .trim()
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            (!host.is_empty()).then(|| host.to_owned())
        })
}

fn docker_config(remote: &Remote) -> anyhow::Result<DockerConfig> {
    let path = match &remote.registry_config {
        Some(path) => path.clone(),
        None => DockerConfig::default_path().context(
            "cannot find the docker config: set HOME or DOCKER_CONFIG, or pass --registry-config",
        )?,
    };
    Ok(DockerConfig::load(&path)?)
}

/// A client for `reference`'s registry with the flags' TLS settings and credentials: `-u/-p`
/// when given, else what `acr login` (or `docker login`) stored.
fn client_for(remote: &Remote, registry: &str) -> anyhow::Result<Client> {
    client_with(remote, registry, None)
}

/// [`client_for`] with a chunk size for uploads.
fn client_with(remote: &Remote, registry: &str, chunk_size: Option<u64>) -> anyhow::Result<Client> {
    let transport = TransportConfig {
        // A CA file or --insecure means TLS is wanted, even on loopback.
        plain_http: match (
            remote.plain_http,
            remote.ca_file.is_some() || remote.insecure,
        ) {
            (true, _) => PlainHttp::Always,
            (false, true) => PlainHttp::Never,
            (false, false) => PlainHttp::LoopbackOnly,
        },
        insecure_skip_verify: remote.insecure,
        ca_file: remote.ca_file.clone(),
        ..TransportConfig::default()
    };
    let mut headers = http::HeaderMap::new();
    for header in &remote.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("header {header:?} must be NAME: VALUE"))?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("invalid header name in {header:?}"))?;
        let mut value = http::HeaderValue::from_str(value.trim())
            .with_context(|| format!("invalid header value in {header:?}"))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    init_log(remote.debug);
    let defaults = ClientConfig::default();
    let chunk_size = chunk_size.unwrap_or(defaults.chunk_size).max(1);
    let client = Client::new(ClientConfig {
        transport,
        headers,
        upload_state_dir: upload_state_dir(),
        chunk_size,
        monolithic_limit: defaults.monolithic_limit.min(chunk_size),
        ..defaults
    })?;
    match (&remote.username, &remote.password) {
        (Some(user), Some(password)) => client.set_credential(
            registry,
            Credential::from_login(user, Secret::new(password.clone())),
        ),
        (None, Some(token)) => client.set_credential(
            registry,
            Credential::AccessToken(Secret::new(token.clone())),
        ),
        (Some(_), None) => bail!("-u/--username needs -p/--password (or use `acr login`)"),
        (None, None) => {
            if let Ok(config) = docker_config(remote) {
                client.use_docker_config(config);
            }
        }
    }
    Ok(client)
}

/// `PATH[:TAG]` of an OCI layout reference.
fn split_layout(text: &str) -> (PathBuf, Option<String>) {
    match text.rsplit_once(':') {
        Some((path, tag)) if !tag.is_empty() && !tag.contains('/') && !path.is_empty() => {
            (PathBuf::from(path), Some(tag.to_owned()))
        }
        _ => (PathBuf::from(text), None),
    }
}

/// `REGISTRY/REPO:t1,t2` -> the reference with the first tag, and all tags.
fn split_tags(text: &str) -> (String, Vec<String>) {
    let slash = text.rfind('/').map_or(0, |i| i + 1);
    let (head, tail) = text.split_at(slash);
    match tail.split_once(':') {
        Some((repo, tags)) if tags.contains(',') && !text.contains('@') => {
            let tags: Vec<String> = tags
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            (
                format!(
                    "{head}{repo}:{}",
                    tags.first().map(String::as_str).unwrap_or_default()
                ),
                tags,
            )
        }
        _ => (text.to_owned(), Vec::new()),
    }
}

/// A file argument: `FILE` or `FILE:MEDIATYPE`. The media type is split off the last colon only
/// when what follows looks like a media type (`type/subtype`), so `C:\x` and `a:b.txt` stay names.
fn parse_file_arg(arg: &str) -> FileToPush {
    if let Some((path, media_type)) = arg.rsplit_once(':')
        && looks_like_media_type(media_type)
        && !path.is_empty()
    {
        let mut file = FileToPush::new(Path::new(path));
        file.media_type = MediaType::from(media_type);
        return file;
    }
    FileToPush::new(Path::new(arg))
}

/// The FILE[:MEDIATYPE] arguments of `push` and `attach`: files and folders that exist, and
/// standard input (`-`, named `stdin`) at most once.
fn files_to_push(args: &[String]) -> anyhow::Result<Vec<FileToPush>> {
    let mut files: Vec<FileToPush> = args.iter().map(|f| parse_file_arg(f)).collect();
    if files.iter().filter(|f| f.path.as_os_str() == "-").count() > 1 {
        bail!("standard input (`-`) can be given only once");
    }
    for file in &mut files {
        if file.path.as_os_str() == "-" {
            file.name = "stdin".to_owned();
        } else if !file.path.exists() {
            bail!("{} does not exist", file.path.display());
        }
    }
    Ok(files)
}

fn looks_like_media_type(text: &str) -> bool {
    let Some((kind, sub)) = text.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    token(kind) && token(sub)
}

fn parse_annotations(
    args: &PushArgs,
) -> anyhow::Result<(Annotations, BTreeMap<String, Annotations>)> {
    let mut manifest = Annotations::new();
    let mut files = BTreeMap::new();
    if let Some(path) = &args.annotation_file {
        let text = std::fs::read(path)
            .with_context(|| format!("reading annotation file {}", path.display()))?;
        let parsed: BTreeMap<String, Annotations> = serde_json::from_slice(&text)
            .with_context(|| format!("annotation file {} must map names to string maps, such as {{\"$manifest\": {{\"k\": \"v\"}}}}", path.display()))?;
        for (key, values) in parsed {
            if key == "$manifest" {
                manifest.extend(values);
            } else {
                files.insert(key, values);
            }
        }
    }
    for pair in &args.annotations {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("annotation {pair:?} must be KEY=VALUE");
        };
        manifest.insert(key.to_owned(), value.to_owned());
    }
    Ok((manifest, files))
}

async fn push(args: PushArgs) -> anyhow::Result<()> {
    let (annotations, file_annotations) = parse_annotations(&args)?;
    let mut files = files_to_push(&args.files)?;
    for file in &mut files {
        if file.path.as_os_str() == "-" {
            file.name = args.stdin_name.clone();
            if let Some(media_type) = &args.stdin_media_type {
                file.media_type = MediaType::from(media_type.as_str());
            }
        }
    }
    let config = args.config.as_deref().map(|c| {
        let file = parse_file_arg(c);
        let media_type = if c.ends_with(file.media_type.as_str()) {
            file.media_type
        } else {
            MediaType::ImageConfig
        };
        (file.path, media_type)
    });
    let mut options = PushOptions {
        artifact_type: args.artifact_type.as_deref().map(MediaType::from),
        annotations,
        file_annotations,
        config,
        image_spec: match args.image_spec {
            ImageSpecArg::V1_1 => ImageSpec::V1_1,
            ImageSpecArg::V1_0 => ImageSpec::V1_0,
        },
        concurrency: args.concurrency,
        ..PushOptions::default()
    };
    let (store, shown): (Box<dyn ContentStore>, String) = if args.oci_layout {
        let (path, tag) = split_layout(&args.reference);
        options.tags = tag.into_iter().collect();
        let shown = path.display().to_string();
        (Box::new(OciLayout::create(&path).await?), shown)
    } else {
        let (text, tags) = split_tags(&args.reference);
        let reference = parse_reference(&text)?;
        options.tags = if tags.is_empty() {
            reference.tag().map(str::to_owned).into_iter().collect()
        } else {
            tags
        };
        let client = client_with(&args.remote, reference.registry(), args.chunk_size)?;
        (
            Box::new(with_progress(client.repository(&reference)?, &args.remote)),
            reference.repository_only().to_string(),
        )
    };
    let text = args.output.format == Format::Text;
    if text {
        for file in &files {
            eprintln!("Uploading {}", file.name);
        }
    }
    let manifest = push_files(store.as_ref(), &files, &options).await?;
    if args.output.format == Format::Text
        && let oci_spec_types::Manifest::Image(image) = manifest.manifest()
    {
        for layer in &image.layers {
            eprintln!(
                "Uploaded  {} {}",
                layer.digest.short(),
                layer.title().unwrap_or(layer.media_type.as_str())
            );
        }
    }
    if let Some(path) = &args.export_manifest {
        std::fs::write(path, manifest.bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let descriptor = manifest.descriptor();
    let tagged: Vec<String> = if options.tags.is_empty() {
        vec![descriptor.digest.to_string()]
    } else {
        options.tags.clone()
    };
    if text {
        for tag in &tagged {
            let sep = if tag.starts_with("sha256:") { "@" } else { ":" };
            println!("Pushed {shown}{sep}{tag}");
        }
        if let Some(artifact_type) = manifest.manifest().artifact_type() {
            println!("ArtifactType: {artifact_type}");
        }
        println!("Digest: {}", descriptor.digest);
    } else {
        print_json(&json!({
            "reference": shown,
            "tags": options.tags,
            "mediaType": descriptor.media_type.as_str(),
            "digest": descriptor.digest.as_str(),
            "size": descriptor.size,
            "artifactType": manifest.manifest().artifact_type().map(MediaType::as_str),
        }))?;
    }
    Ok(())
}

async fn pull(args: PullArgs) -> anyhow::Result<()> {
    let (store, target): (Box<dyn ContentStore>, String) = if args.oci_layout {
        let (path, tag) = split_layout(&args.reference);
        let target = tag.context("name the tag to pull: PATH:TAG")?;
        (Box::new(OciLayout::open(&path).await?), target)
    } else {
        let reference = parse_reference(&args.reference)?;
        let target = reference
            .target()
            .context("name a tag or digest to pull, such as REGISTRY/REPO:TAG")?
            .to_owned();
        let client = client_for(&args.remote, reference.registry())?;
        (
            Box::new(with_progress(client.repository(&reference)?, &args.remote)),
            target,
        )
    };
    let platform = args
        .platform
        .as_deref()
        .map(oci_spec_types::Platform::parse)
        .transpose()?;
    if args.output.as_os_str() == "-" {
        return pull_to_stdout(store.as_ref(), &target, platform).await;
    }
    let options = PullOptions {
        keep_old_files: args.keep_old_files,
        include_untitled: args.include_untitled,
        concurrency: args.concurrency,
        platform,
        parallel_ranges: args.parallel_ranges,
    };
    let (manifest, mut files) = pull_files(store.as_ref(), &target, &args.output, &options).await?;
    if args.include_subject {
        // Follow `subject` links (signature -> image -> ...), each manifest once.
        let mut seen = std::collections::HashSet::from([manifest.digest().clone()]);
        let mut next = manifest.manifest().subject().cloned();
        while let Some(subject) = next.take() {
            if !seen.insert(subject.digest.clone()) || seen.len() > 16 {
                break;
            }
            let (parent, more) = pull_files(
                store.as_ref(),
                subject.digest.as_str(),
                &args.output,
                &options,
            )
            .await?;
            files.extend(more);
            next = parent.manifest().subject().cloned();
        }
    }
    if args.format.format == Format::Json {
        let files: Vec<_> = files
            .iter()
            .map(|f| json!({"path": f.path, "digest": f.descriptor.digest.as_str(), "size": f.descriptor.size, "mediaType": f.descriptor.media_type.as_str(), "skipped": f.skipped}))
            .collect();
        return print_json(
            &json!({"reference": args.reference, "digest": manifest.digest().as_str(), "files": files}),
        );
    }
    for file in &files {
        let verb = if file.skipped {
            "Skipped"
        } else {
            "Downloaded"
        };
        eprintln!(
            "{verb} {} {}",
            file.descriptor.digest.short(),
            file.path.display()
        );
    }
    println!("Pulled {}", args.reference);
    println!("Digest: {}", manifest.digest());
    Ok(())
}

/// A store and the tag or digest in it that a reference names.
async fn open_target(
    text: &str,
    oci_layout: bool,
    remote: &Remote,
    create: bool,
) -> anyhow::Result<(Box<dyn ContentStore>, Option<String>)> {
    if oci_layout {
        let (path, tag) = split_layout(text);
        let layout = if create {
            OciLayout::create(&path).await?
        } else {
            OciLayout::open(&path).await?
        };
        return Ok((Box::new(layout), tag));
    }
    let reference = parse_reference(text)?;
    let client = client_for(remote, reference.registry())?;
    let target = reference.target().map(str::to_owned);
    Ok((Box::new(client.repository(&reference)?), target))
}

async fn attach(args: AttachArgs) -> anyhow::Result<()> {
    let (store, target) =
        open_target(&args.reference, args.oci_layout, &args.remote, false).await?;
    let target = target.context("name the artifact to attach to by tag or digest")?;
    let subject = store.get_manifest(&target).await?.descriptor();
    let mut annotations = Annotations::new();
    for pair in &args.annotations {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("annotation {pair:?} must be KEY=VALUE"))?;
        annotations.insert(key.to_owned(), value.to_owned());
    }
    let files = files_to_push(&args.files)?;
    let options = PushOptions {
        artifact_type: Some(MediaType::from(args.artifact_type.as_str())),
        annotations,
        subject: Some(subject.clone()),
        ..PushOptions::default()
    };
    let manifest = push_files(store.as_ref(), &files, &options).await?;
    if args.output.format == Format::Text
        && let oci_spec_types::Manifest::Image(image) = manifest.manifest()
    {
        for layer in &image.layers {
            eprintln!(
                "Uploaded  {} {}",
                layer.digest.short(),
                layer.title().unwrap_or(layer.media_type.as_str())
            );
        }
    }
    match args.output.format {
        Format::Text => {
            println!("Attached to {} ({})", args.reference, subject.digest);
            println!("Digest: {}", manifest.digest());
        }
        Format::Json => print_json(&json!({
            "subject": subject.digest.as_str(),
            "digest": manifest.digest().as_str(),
            "mediaType": manifest.media_type().as_str(),
            "artifactType": args.artifact_type,
            "size": manifest.bytes().len(),
        }))?,
    }
    Ok(())
}

async fn discover(args: DiscoverArgs) -> anyhow::Result<()> {
    let (store, target) =
        open_target(&args.reference, args.oci_layout, &args.remote, false).await?;
    let target = target.context("name the subject by tag or digest")?;
    let subject = store.get_manifest(&target).await?.descriptor();
    let artifact_type = args.artifact_type.as_deref().map(MediaType::from);
    let tree = acr_client::discover(
        store.as_ref(),
        &subject.digest,
        artifact_type.as_ref(),
        args.depth,
    )
    .await?;
    match args.format {
        DiscoverFormat::Json => print_json(&json!({
            "subject": subject.digest.as_str(),
            "referrers": tree.iter().map(node_json).collect::<Vec<_>>(),
        })),
        DiscoverFormat::Table => {
            println!("{:<64}  {:<40}  SIZE", "DIGEST", "ARTIFACT TYPE");
            fn rows(nodes: &[acr_client::ReferrerNode]) {
                for node in nodes {
                    let d = &node.descriptor;
                    let artifact_type = d.artifact_type.as_ref().map_or("-", MediaType::as_str);
                    println!("{:<64}  {artifact_type:<40}  {}", d.digest.as_str(), d.size);
                    rows(&node.referrers);
                }
            }
            rows(&tree);
            Ok(())
        }
        DiscoverFormat::Tree => {
            println!("{} ({})", args.reference, subject.digest);
            print_tree(&tree, "");
            Ok(())
        }
    }
}

fn node_json(node: &acr_client::ReferrerNode) -> serde_json::Value {
    let d = &node.descriptor;
    json!({
        "digest": d.digest.as_str(),
        "mediaType": d.media_type.as_str(),
        "artifactType": d.artifact_type.as_ref().map(MediaType::as_str),
        "size": d.size,
        "annotations": d.annotations,
        "referrers": node.referrers.iter().map(node_json).collect::<Vec<_>>(),
    })
}

fn print_tree(nodes: &[acr_client::ReferrerNode], indent: &str) {
    for (i, node) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let (branch, next) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let artifact_type = node
            .descriptor
            .artifact_type
            .as_ref()
            .map_or("<unknown>", MediaType::as_str);
        println!("{indent}{branch}{artifact_type}");
        println!(
            "{indent}{next}{} {}",
            if node.referrers.is_empty() {
                "└──"
            } else {
                "├──"
            },
            node.descriptor.digest
        );
        print_tree(&node.referrers, &format!("{indent}{next}│   "));
    }
}

async fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let (source, target) =
        open_target(&args.source, args.from_oci_layout, &args.remote, false).await?;
    let target = target.context("name what to copy by tag or digest")?;
    let (destination, dest_tag) =
        open_target(&args.destination, args.to_oci_layout, &args.remote, true).await?;
    // Without a destination tag the source's tag is kept (a digest copies by digest only).
    let tags: Vec<String> = match dest_tag {
        Some(tag) if Digest::parse(&tag).is_err() => vec![tag],
        Some(_) => Vec::new(),
        None if Digest::parse(&target).is_err() => vec![target.clone()],
        None => Vec::new(),
    };
    let options = acr_client::CopyOptions {
        referrers: args.recursive,
        tags,
        concurrency: args.concurrency,
    };
    let (root, stats) =
        acr_client::copy(source.as_ref(), destination.as_ref(), &target, &options).await?;
    match args.output.format {
        Format::Text => {
            eprintln!(
                "Copied {} blobs, mounted {}, skipped {} already there; {} manifests",
                stats.blobs_copied, stats.blobs_mounted, stats.blobs_skipped, stats.manifests
            );
            println!(
                "Copied [{}] {} => [{}] {}",
                source.describe(),
                args.source,
                destination.describe(),
                args.destination
            );
            println!("Digest: {}", root.digest);
        }
        Format::Json => print_json(&json!({
            "digest": root.digest.as_str(),
            "mediaType": root.media_type.as_str(),
            "size": root.size,
            "blobsCopied": stats.blobs_copied,
            "blobsMounted": stats.blobs_mounted,
            "blobsSkipped": stats.blobs_skipped,
            "manifests": stats.manifests,
        }))?,
    }
    Ok(())
}

/// `pull -o -`: the one file of a single-file artifact, verified as it streams to stdout.
async fn pull_to_stdout(
    store: &dyn ContentStore,
    target: &str,
    platform: Option<oci_spec_types::Platform>,
) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut manifest = store.get_manifest(target).await?;
    if let oci_spec_types::Manifest::Index(index) = manifest.manifest() {
        let wanted = platform.context("the reference is an index: choose one with --platform")?;
        let chosen = index
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)))
            .with_context(|| format!("no manifest for {wanted} in the index"))?;
        manifest = store.get_manifest(chosen.digest.as_str()).await?;
    }
    let layers: Vec<&oci_spec_types::Descriptor> = match manifest.manifest() {
        oci_spec_types::Manifest::Image(m) => m.layers.iter().collect(),
        _ => bail!("-o - needs an image manifest"),
    };
    let [layer] = layers.as_slice() else {
        bail!(
            "-o - writes one file, but the artifact has {} layers; pull it into a folder instead",
            layers.len()
        );
    };
    let mut stream = store.open_blob_stream(layer).await?;
    let mut stdout = tokio::io::stdout();
    while let Some(chunk) = std::future::poll_fn(|cx| futures_core_poll(&mut stream, cx)).await {
        stdout.write_all(&chunk?).await?;
    }
    stdout.flush().await?;
    Ok(())
}

fn futures_core_poll(
    stream: &mut acr_client::auth::proto::ByteStream,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<std::io::Result<bytes::Bytes>>> {
    futures_core::Stream::poll_next(stream.as_mut(), cx)
}

async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let registry = args
        .registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let credential = if let Some(token) = args.identity_token {
        StoredCredential::IdentityToken(Secret::new(token))
    } else if args.aad || args.aad_token_stdin {
        StoredCredential::IdentityToken(aad_refresh_token(&args, &registry).await?)
    } else {
        let username = match &args.remote.username {
            Some(user) => user.clone(),
            None => bail!(
                "give a user name with -u (use 00000000-0000-0000-0000-000000000000 with an ACR refresh token as password)"
            ),
        };
        let password = if args.password_stdin {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the password from standard input")?;
            text.trim_end_matches(['\r', '\n']).to_owned()
        } else {
            match &args.remote.password {
                Some(p) => p.clone(),
                None => bail!("give the password with --password-stdin (or -p)"),
            }
        };
        if username == acr_auth::NULL_GUID_USER {
            StoredCredential::IdentityToken(Secret::new(password))
        } else {
            StoredCredential::Basic {
                username,
                password: Secret::new(password),
            }
        }
    };
    // Check the credential against the registry before storing it.
    let client = client_for(
        &Remote {
            username: None,
            password: None,
            ..args.remote.clone()
        },
        &registry,
    )?;
    client.set_credential(&registry, Credential::from_stored(credential.clone()));
    let probe = parse_reference(&format!("{registry}/acr-login-probe"))?;
    verify_login(&client, &probe)
        .await
        .with_context(|| format!("login to {registry} failed"))?;
    let mut config = docker_config(&args.remote)?;
    let source = match config.store(&registry, &credential) {
        Ok(source) => source,
        Err(e) => {
            eprintln!(
                "Warning: {e}; storing the credential in {} instead",
                config.path().display()
            );
            config.store_file(&registry, &credential)?;
            CredentialSource::File(config.path().to_owned())
        }
    };
    println!("Login Succeeded (credentials stored in {source})");
    Ok(())
}

/// Exchanges an AAD token (from stdin, or from the credential chain) for the registry's ACR
/// refresh token.
async fn aad_refresh_token(args: &LoginArgs, registry: &str) -> anyhow::Result<Secret> {
    let client = client_for(
        &Remote {
            username: None,
            password: None,
            ..args.remote.clone()
        },
        registry,
    )?;
    let credential = if args.aad_token_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the Azure AD token from standard input")?;
        Credential::AadAccessToken {
            token: Secret::new(text.trim().to_owned()),
            tenant: None,
        }
    } else {
        let mut chain = match &args.aad_source {
            Some(source) => {
                acr_auth::CredentialChain::only(source.parse().map_err(|e| anyhow::anyhow!("{e}"))?)
            }
            None => acr_auth::CredentialChain::new(),
        };
        chain = chain.with_transport(client.transport().clone());
        if let Some(cloud) = acr_auth::AzureCloud::for_login_server(registry) {
            chain = chain.with_cloud(cloud);
        }
        Credential::Aad(std::sync::Arc::new(chain))
    };
    let auth = acr_auth::Authenticator::new(credential);
    // The registry's challenge names the realm and service to exchange at.
    let probe = parse_reference(&format!("{registry}/acr-login-probe"))?;
    let proto = client.registry(&probe)?;
    let response = client
        .transport()
        .send(proto.version_request()?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let challenges =
        acr_client::auth::proto::parse_challenges_from(response.headers()).unwrap_or_default();
    Ok(auth
        .exchange_refresh_token(registry, &challenges, client.transport().as_ref())
        .await?)
}

/// `GET /v2/` with the credential: a registry that answers 200 (or 401 only for lack of a
/// scope) accepted it.
async fn verify_login(client: &Client, probe: &Reference) -> anyhow::Result<()> {
    let registry = client.registry(probe)?;
    let request = registry.version_request()?;
    let response = client.send(&registry, request).await?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    bail!("the registry answered {status} to the credential")
}

fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    let registry = args
        .registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut config = docker_config(&args.remote)?;
    if config.erase(registry)? {
        println!("Removed login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(())
}

async fn resolve(args: RefArgs) -> anyhow::Result<()> {
    let reference = parse_reference(&args.reference)?;
    let target = reference
        .target()
        .context("name a tag or digest to resolve")?;
    let repo = client_for(&args.remote, reference.registry())?.repository(&reference)?;
    let descriptor = repo
        .resolve(target)
        .await?
        .with_context(|| format!("{reference} not found"))?;
    match args.output.format {
        Format::Text => println!("{}", descriptor.digest),
        Format::Json => print_json(&serde_json::to_value(&descriptor)?)?,
    }
    Ok(())
}

async fn tag(args: TagCommand) -> anyhow::Result<()> {
    if let Some(action) = args.action {
        return manage_tag(action).await;
    }
    let reference = parse_reference(
        args.reference
            .as_deref()
            .context("name the manifest to tag")?,
    )?;
    let target = reference
        .target()
        .context("name the manifest to tag by tag or digest")?;
    let repo = client_for(&args.remote, reference.registry())?.repository(&reference)?;
    let manifest = repo.get_manifest(target).await?;
    for tag in &args.tags {
        repo.put_manifest(&manifest, Some(tag)).await?;
        println!("Tagged {}:{tag}", reference.repository_only());
    }
    println!("Digest: {}", manifest.digest());
    Ok(())
}

async fn manifest(command: ManifestCommand) -> anyhow::Result<()> {
    match command {
        ManifestCommand::Fetch {
            target,
            pretty,
            descriptor,
        } => {
            let reference = parse_reference(&target.reference)?;
            let what = reference.target().context("name a tag or digest")?;
            let repo = client_for(&target.remote, reference.registry())?.repository(&reference)?;
            let manifest = repo.get_manifest(what).await?;
            if descriptor {
                return print_json(&serde_json::to_value(manifest.descriptor())?);
            }
            let mut out = std::io::stdout().lock();
            if pretty {
                let value: serde_json::Value = serde_json::from_slice(manifest.bytes())?;
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                // The exact bytes: piping them keeps the digest.
                out.write_all(manifest.bytes())?;
                if out_is_terminal() {
                    writeln!(out)?;
                }
            }
            Ok(())
        }
        ManifestCommand::Push {
            target,
            file,
            media_type,
        } => {
            let reference = parse_reference(&target.reference)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let media_type = media_type.as_deref().map(MediaType::from);
            let manifest = oci_spec_types::ManifestBytes::parse(bytes, media_type.as_ref())
                .with_context(|| format!("{} is not a manifest", file.display()))?;
            let repo = client_for(&target.remote, reference.registry())?.repository(&reference)?;
            let digest = repo.put_manifest(&manifest, reference.tag()).await?;
            println!("Pushed {reference}");
            println!("Digest: {digest}");
            Ok(())
        }
        ManifestCommand::List { target, orderby } => {
            let (registry, reference) = management(&target)?;
            let manifests = registry
                .repository(reference.repository())
                .manifest_properties(order(orderby))
                .all()
                .await?;
            match target.output.format {
                Format::Text => {
                    for m in &manifests {
                        println!(
                            "{}  {}  {}",
                            m.digest,
                            m.last_update_time.as_deref().unwrap_or("-"),
                            m.tags.join(",")
                        );
                    }
                    Ok(())
                }
                Format::Json => print_json(&serde_json::to_value(manifests)?),
            }
        }
        ManifestCommand::Show(args) => {
            let (registry, reference) = management(&args)?;
            let target = reference
                .target()
                .context("name the manifest by tag or digest")?;
            let properties = registry
                .artifact(reference.repository(), target)
                .manifest_properties()
                .await?;
            print_json(&serde_json::to_value(properties)?)
        }
        ManifestCommand::Update { target, attributes } => {
            let (registry, reference) = management(&target)?;
            let what = reference
                .target()
                .context("name the manifest by tag or digest")?;
            let properties = registry
                .artifact(reference.repository(), what)
                .update_manifest_properties(&attributes_update(&attributes)?)
                .await?;
            print_json(&serde_json::to_value(properties)?)
        }
        ManifestCommand::FetchConfig(args) => {
            let reference = parse_reference(&args.reference)?;
            let what = reference.target().context("name a tag or digest")?;
            let repo = client_for(&args.remote, reference.registry())?.repository(&reference)?;
            let manifest = repo.get_manifest(what).await?;
            let config = match manifest.manifest() {
                oci_spec_types::Manifest::Image(m) | oci_spec_types::Manifest::DockerImage(m) => {
                    m.config.clone()
                }
                _ => bail!("{reference} is not an image manifest, so it has no config"),
            };
            let bytes = repo.fetch_bytes(&config).await?;
            std::io::stdout().lock().write_all(&bytes)?;
            Ok(())
        }
        ManifestCommand::Delete(args) => {
            let reference = parse_reference(&args.reference)?;
            let repo = client_for(&args.remote, reference.registry())?.repository(&reference)?;
            let digest = match reference.digest() {
                Some(d) => d.clone(),
                None => {
                    let tag = reference
                        .tag()
                        .context("name the manifest by tag or digest")?;
                    repo.resolve(tag)
                        .await?
                        .with_context(|| format!("{reference} not found"))?
                        .digest
                }
            };
            repo.delete_manifest(&digest).await?;
            println!("Deleted {}@{digest}", reference.repository_only());
            Ok(())
        }
    }
}

fn out_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

async fn blob(command: BlobCommand) -> anyhow::Result<()> {
    let digest_of = |reference: &Reference| -> anyhow::Result<Digest> {
        reference
            .digest()
            .cloned()
            .context("name the blob by digest: REGISTRY/REPO@sha256:...")
    };
    match command {
        BlobCommand::Fetch { target, output } => {
            let reference = parse_reference(&target.reference)?;
            let digest = digest_of(&reference)?;
            let repo = client_for(&target.remote, reference.registry())?.repository(&reference)?;
            let size = repo.blob_exists(&digest).await?.with_context(|| {
                format!("blob {digest} not found in {}", reference.repository_only())
            })?;
            let descriptor = oci_spec_types::Descriptor::new(
                MediaType::from("application/octet-stream"),
                digest,
                size,
            );
            if output.as_os_str() == "-" {
                let mut stdout = tokio::io::stdout();
                repo.fetch_to_writer(&descriptor, &mut stdout).await?;
            } else {
                repo.fetch_to_file(&descriptor, &output).await?;
                eprintln!(
                    "Downloaded {} {}",
                    descriptor.digest.short(),
                    output.display()
                );
            }
            Ok(())
        }
        BlobCommand::Push { target, file } => {
            let reference = parse_reference(&target.reference)?;
            let repo = client_for(&target.remote, reference.registry())?.repository(&reference)?;
            let descriptor = repo
                .push_file(MediaType::from("application/octet-stream"), &file)
                .await?;
            match target.output.format {
                Format::Text => {
                    println!(
                        "Pushed {}@{}",
                        reference.repository_only(),
                        descriptor.digest
                    );
                    println!("Digest: {}", descriptor.digest);
                }
                Format::Json => print_json(&serde_json::to_value(&descriptor)?)?,
            }
            Ok(())
        }
        BlobCommand::Delete(args) => {
            let reference = parse_reference(&args.reference)?;
            let digest = digest_of(&reference)?;
            let repo = client_for(&args.remote, reference.registry())?.repository(&reference)?;
            repo.delete_blob(&digest).await?;
            println!("Deleted {}@{digest}", reference.repository_only());
            Ok(())
        }
    }
}

async fn repo_tags(args: RefArgs, last: Option<String>) -> anyhow::Result<()> {
    let reference = parse_reference(&args.reference)?;
    let repo = client_for(&args.remote, reference.registry())?.repository(&reference)?;
    let mut tags = repo.tags().await?;
    tags.sort();
    if let Some(last) = &last {
        tags.retain(|t| t > last);
    }

    match args.output.format {
        Format::Text => {
            for tag in tags {
                println!("{tag}");
            }
        }
        Format::Json => print_json(
            &json!({"repository": reference.repository_only().to_string(), "tags": tags}),
        )?,
    }
    Ok(())
}

async fn repo_ls(args: RegistryArgs) -> anyhow::Result<()> {
    let host = args
        .registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    // Any repository name makes a reference to the registry itself.
    let reference = parse_reference(&format!("{host}/catalog"))?;
    let client = client_for(&args.remote, reference.registry())?;
    // ACR's own catalog where there is one (it forgets deleted repositories; distribution's
    // /v2/_catalog does not), the OCI catalog elsewhere.
    let names = acr_client::ContainerRegistry::new(&client, reference.registry())?
        .repository_names()
        .all()
        .await?;
    match args.output.format {
        Format::Text => {
            for name in &names {
                println!("{name}");
            }
        }
        Format::Json => print_json(&json!({"registry": host, "repositories": names}))?,
    }
    Ok(())
}

/// Where interrupted chunked uploads are remembered: `$XDG_CACHE_HOME/acr/uploads`, else
/// `~/.cache/acr/uploads`.
fn upload_state_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(cache.join("acr").join("uploads"))
}

/// The repository with progress bars when standard error is a terminal.
fn with_progress(repository: acr_client::Repository, remote: &Remote) -> acr_client::Repository {
    match crate::progress::Bars::for_terminal(remote.no_progress || remote.debug) {
        Some(bars) => repository.with_progress(bars),
        None => repository,
    }
}

/// The management view (ACR's `/acr/v1` API) of a reference's registry.
fn management(args: &RefArgs) -> anyhow::Result<(acr_client::ContainerRegistry, Reference)> {
    let reference = parse_reference(&args.reference)?;
    let client = client_for(&args.remote, reference.registry())?;
    Ok((
        acr_client::ContainerRegistry::new(&client, reference.registry())?,
        reference,
    ))
}

fn order(orderby: Option<OrderBy>) -> acr_client::ArtifactOrder {
    match orderby {
        None => acr_client::ArtifactOrder::None,
        Some(OrderBy::TimeDesc) => acr_client::ArtifactOrder::LastUpdatedDescending,
        Some(OrderBy::TimeAsc) => acr_client::ArtifactOrder::LastUpdatedAscending,
    }
}

fn attributes_update(args: &AttributeArgs) -> anyhow::Result<acr_client::AttributesUpdate> {
    let mut update = acr_client::AttributesUpdate::new();
    let mut any = false;
    for (value, set) in [
        (
            args.delete_enabled,
            acr_client::AttributesUpdate::can_delete
                as fn(acr_client::AttributesUpdate, bool) -> acr_client::AttributesUpdate,
        ),
        (args.write_enabled, acr_client::AttributesUpdate::can_write),
        (args.list_enabled, acr_client::AttributesUpdate::can_list),
        (args.read_enabled, acr_client::AttributesUpdate::can_read),
    ] {
        if let Some(value) = value {
            update = set(update, value);
            any = true;
        }
    }
    if !any {
        bail!(
            "nothing to change: give --delete-enabled, --write-enabled, --list-enabled or --read-enabled"
        );
    }
    Ok(update)
}

async fn manage_tag(action: TagAction) -> anyhow::Result<()> {
    match action {
        TagAction::List { target, orderby } => {
            let (registry, reference) = management(&target)?;
            let tags = registry
                .repository(reference.repository())
                .tag_properties(order(orderby), None, None)
                .all()
                .await?;
            match target.output.format {
                Format::Text => {
                    for tag in &tags {
                        println!("{tag}");
                    }
                    Ok(())
                }
                Format::Json => print_json(&serde_json::to_value(tags)?),
            }
        }
        TagAction::Show(args) => {
            let (registry, reference) = management(&args)?;
            let tag = reference.tag().context("name the tag: REGISTRY/REPO:TAG")?;
            let properties = registry
                .artifact(reference.repository(), tag)
                .get_tag_properties(tag)
                .await?;
            print_json(&serde_json::to_value(properties)?)
        }
        TagAction::Update { target, attributes } => {
            let (registry, reference) = management(&target)?;
            let tag = reference.tag().context("name the tag: REGISTRY/REPO:TAG")?;
            let properties = registry
                .artifact(reference.repository(), tag)
                .update_tag_properties(tag, &attributes_update(&attributes)?)
                .await?;
            print_json(&serde_json::to_value(properties)?)
        }
        TagAction::Delete(args) => {
            let (registry, reference) = management(&args)?;
            let tag = reference.tag().context("name the tag: REGISTRY/REPO:TAG")?;
            registry
                .artifact(reference.repository(), tag)
                .delete_tag(tag)
                .await?;
            println!("Deleted tag {reference}");
            Ok(())
        }
    }
}

/// `30d`, `12h`, `90m`, `45s`.
fn parse_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .with_context(|| format!("duration {text:?}: expected a number and a unit, such as 30d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("duration {text:?}: the unit must be s, m, h or d"),
    };
    Ok(std::time::Duration::from_secs(n * seconds))
}

async fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    let reference = parse_reference(&args.repository)?;
    let client = client_for(&args.remote, reference.registry())?;
    let registry = acr_client::ContainerRegistry::new(&client, reference.registry())?;
    let options = acr_client::PurgeOptions {
        keep: args.keep,
        older_than: args.ago.as_deref().map(parse_duration).transpose()?,
        tag_filter: args.filter.clone(),
        untagged_only: args.untagged,
        dry_run: args.dry_run,
        now: None,
    };
    let report = registry
        .repository(reference.repository())
        .purge(&options)
        .await?;
    match args.output.format {
        Format::Text => {
            let verb = if args.dry_run {
                "Would delete"
            } else {
                "Deleted"
            };
            for m in &report.deleted {
                println!("{verb} {} {}", m.digest, m.tags.join(","));
            }
            for m in &report.locked {
                println!("Skipped (locked: {}) {}", m.locked.join(", "), m.digest);
            }
            println!(
                "{} deleted, {} locked, {} kept",
                report.deleted.len(),
                report.locked.len(),
                report.kept.len()
            );
        }
        Format::Json => print_json(&json!({
            "dryRun": args.dry_run,
            "deleted": report.deleted.iter().map(|m| json!({"digest": m.digest, "tags": m.tags})).collect::<Vec<_>>(),
            "locked": report.locked.iter().map(|m| json!({"digest": m.digest, "locked": m.locked})).collect::<Vec<_>>(),
            "kept": report.kept,
        }))?,
    }
    Ok(())
}

/// Warnings (such as a broken credential helper) always reach standard error; with `--debug`
/// every request does too.
fn init_log(debug: bool) {
    let level = if debug {
        tracing_subscriber::filter::LevelFilter::DEBUG
    } else {
        tracing_subscriber::filter::LevelFilter::WARN
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .try_init();
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_arguments_split_media_types_only_when_they_look_like_one() {
        let f = parse_file_arg("sbom.json:application/spdx+json");
        assert_eq!(
            (f.path, f.media_type.as_str().to_owned()),
            (
                PathBuf::from("sbom.json"),
                "application/spdx+json".to_owned()
            )
        );
        let f = parse_file_arg("C:\\dir\\file.txt");
        assert_eq!(f.path, PathBuf::from("C:\\dir\\file.txt"));
        let f = parse_file_arg("a:b.txt");
        assert_eq!(f.path, PathBuf::from("a:b.txt"));
        assert_eq!(f.media_type.as_str(), acr_client::DEFAULT_FILE_MEDIA_TYPE);
        let f = parse_file_arg("time:12:30.log");
        assert_eq!(f.path, PathBuf::from("time:12:30.log"));
    }

    #[test]
    fn several_tags() {
        assert_eq!(
            split_tags("localhost:5000/a/b:v1,v2"),
            (
                "localhost:5000/a/b:v1".to_owned(),
                vec!["v1".to_owned(), "v2".to_owned()]
            )
        );
        assert_eq!(
            split_tags("localhost:5000/a:v1"),
            ("localhost:5000/a:v1".to_owned(), vec![])
        );
        assert_eq!(
            split_layout("./out:v1"),
            (PathBuf::from("./out"), Some("v1".to_owned()))
        );
        assert_eq!(split_layout("./out"), (PathBuf::from("./out"), None));
    }
}
