//! The command line, as clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Push, pull and manage OCI artifacts in any registry and in Azure Container Registry.
#[derive(Debug, Parser)]
#[command(name = "acr", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Push files to a registry or an OCI layout as an artifact
    #[command(
        after_help = "Examples:\n  acr push localhost:5000/hello:v1 hi.txt\n  acr push myreg.azurecr.io/sbom:v1 sbom.json:application/spdx+json --artifact-type application/vnd.example.sbom\n  acr push --oci-layout ./layout:v1 a.txt b.bin"
    )]
    Push(PushArgs),
    /// Pull an artifact's files into a folder
    #[command(
        after_help = "Examples:\n  acr pull localhost:5000/hello:v1\n  acr pull localhost:5000/hello:v1 -o out\n  acr pull --oci-layout ./layout:v1 -o out"
    )]
    Pull(PullArgs),
    /// Attach files to an existing artifact as a referrer (signature, SBOM, ...)
    #[command(
        after_help = "Examples:\n  acr attach localhost:5000/hello:v1 sig.json --artifact-type application/vnd.example.signature\n  acr attach --oci-layout ./layout:v1 sbom.json --artifact-type application/spdx+json"
    )]
    Attach(AttachArgs),
    /// Show the referrers of an artifact, recursively
    #[command(
        after_help = "Examples:\n  acr discover localhost:5000/hello:v1\n  acr discover localhost:5000/hello:v1 --artifact-type application/vnd.example.signature --format json"
    )]
    Discover(DiscoverArgs),
    /// Copy an artifact with everything it points at (and with -r its referrers)
    #[command(
        after_help = "Examples:\n  acr copy localhost:5000/hello:v1 localhost:5001/hello:v1\n  acr copy -r myreg.azurecr.io/app:v1 --to-oci-layout ./backup:v1\n  acr copy --from-oci-layout ./backup:v1 localhost:5000/restored:v1"
    )]
    Copy(CopyArgs),
    /// Log in to a registry (credentials go to the docker config or its credential helper)
    #[command(
        after_help = "Examples:\n  acr login myreg.azurecr.io -u admin --password-stdin < pw.txt\n  acr login myreg.azurecr.io -u 00000000-0000-0000-0000-000000000000 -p <refresh token>"
    )]
    Login(LoginArgs),
    /// Remove a registry's credentials
    #[command(after_help = "Example:\n  acr logout myreg.azurecr.io")]
    Logout(LogoutArgs),
    /// Print the digest a tag points at
    #[command(after_help = "Example:\n  acr resolve localhost:5000/hello:v1")]
    Resolve(RefArgs),
    /// Point more tags at a manifest, or (ACR) list, show, update or delete tags' properties
    #[command(
        after_help = "Examples:\n  acr tag localhost:5000/hello:v1 v1.0 latest\n  acr tag list myreg.azurecr.io/hello --orderby time-desc\n  acr tag update myreg.azurecr.io/hello:v1 --write-enabled false",
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Tag(TagCommand),
    /// Delete old manifests of a repository (ACR), keeping the newest, locked ones skipped
    #[command(
        after_help = "Examples:\n  acr purge myreg.azurecr.io/hello --keep 3 --dry-run\n  acr purge myreg.azurecr.io/hello --ago 30d --filter 'dev-*'\n  acr purge myreg.azurecr.io/hello --untagged"
    )]
    Purge(PurgeArgs),
    /// Delete only a tag, keeping its manifest (ACR's tag API; elsewhere only with --via-placeholder)
    #[command(
        after_help = "Examples:\n  acr untag myreg.azurecr.io/hello:old\n  acr untag localhost:5000/hello:old --via-placeholder"
    )]
    Untag {
        #[command(flatten)]
        target: RefArgs,
        /// On registries without a tag API: point the tag at a throw-away manifest and delete that
        #[arg(long)]
        via_placeholder: bool,
    },
    /// Manifest operations
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Blob operations
    #[command(subcommand)]
    Blob(BlobCommand),
    /// Repository operations
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Print the manual page (roff); `cargo xtask man` writes it to target/dist/acr.1
    #[command(hide = true)]
    Manpage,
    /// Print a shell completion script
    #[command(after_help = "Example:\n  acr completion bash > /etc/bash_completion.d/acr")]
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options every command that talks to a registry takes.
#[derive(Debug, Args, Clone)]
pub(crate) struct Remote {
    /// Use plain HTTP (no TLS) for the registry
    #[arg(long, global = true)]
    pub(crate) plain_http: bool,
    /// Skip TLS certificate verification (dangerous)
    #[arg(long, global = true)]
    pub(crate) insecure: bool,
    /// Extra CA certificates (PEM) to trust for the registry
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// User name (with --password or --password-stdin)
    #[arg(short = 'u', long, global = true)]
    pub(crate) username: Option<String>,
    /// Password or token (prefer --password-stdin)
    #[arg(
        short = 'p',
        long,
        global = true,
        env = "ACR_PASSWORD",
        hide_env_values = true
    )]
    pub(crate) password: Option<String>,
    /// Docker config file holding credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) registry_config: Option<PathBuf>,
    /// An extra request header `NAME: VALUE` for the registry (repeatable; never sent elsewhere)
    #[arg(
        short = 'H',
        long = "header",
        global = true,
        value_name = "NAME: VALUE"
    )]
    pub(crate) headers: Vec<String>,
    /// Log every request (method, URL without its query, status, time) to standard error;
    /// credentials and header values are never logged
    #[arg(short = 'd', long, global = true)]
    pub(crate) debug: bool,
    /// No progress bars (they show only on a terminal anyway)
    #[arg(long, global = true)]
    pub(crate) no_progress: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub(crate) enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct Output {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// Where to push: REGISTRY/REPO[:TAG[,TAG...]], or PATH[:TAG] with --oci-layout
    pub(crate) reference: String,
    /// Files to push, each FILE or FILE:MEDIATYPE; `-` is standard input
    #[arg(required = true)]
    pub(crate) files: Vec<String>,
    /// The artifact type
    #[arg(long)]
    pub(crate) artifact_type: Option<String>,
    /// A manifest annotation KEY=VALUE (repeatable)
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub(crate) annotations: Vec<String>,
    /// A JSON file of annotations: {"$manifest": {...}, "<file name>": {...}}
    #[arg(long, value_name = "FILE")]
    pub(crate) annotation_file: Option<PathBuf>,
    /// A config file, FILE or FILE:MEDIATYPE
    #[arg(long)]
    pub(crate) config: Option<String>,
    /// Image spec version of the manifest
    #[arg(long, value_enum, default_value = "v1.1")]
    pub(crate) image_spec: ImageSpecArg,
    /// Write the pushed manifest to this file too
    #[arg(long, value_name = "FILE")]
    pub(crate) export_manifest: Option<PathBuf>,
    /// Push to an OCI image layout folder instead of a registry
    #[arg(long)]
    pub(crate) oci_layout: bool,
    /// Files uploaded at once
    #[arg(long, default_value_t = 5)]
    pub(crate) concurrency: usize,
    /// The file name to give standard input when a file argument is `-`
    #[arg(long, default_value = "stdin", value_name = "NAME")]
    pub(crate) stdin_name: String,
    /// The media type of standard input when a file argument is `-`
    #[arg(long, value_name = "MEDIATYPE")]
    pub(crate) stdin_media_type: Option<String>,
    /// Files larger than this go up in chunks of this size (bytes), each resumable
    #[arg(long, value_name = "BYTES")]
    pub(crate) chunk_size: Option<u64>,
    #[command(flatten)]
    pub(crate) remote: Remote,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ImageSpecArg {
    #[value(name = "v1.1")]
    V1_1,
    #[value(name = "v1.0")]
    V1_0,
}

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// What to pull: REGISTRY/REPO:TAG or @DIGEST, or PATH[:TAG] with --oci-layout
    pub(crate) reference: String,
    /// Output folder; `-` writes a single-file artifact to standard output
    #[arg(short = 'o', long, default_value = ".")]
    pub(crate) output: PathBuf,
    /// The platform to pull when the reference is an index, such as linux/amd64
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub(crate) platform: Option<String>,
    /// Keep files that already exist
    #[arg(long)]
    pub(crate) keep_old_files: bool,
    /// Also pull layers without a title (named by digest)
    #[arg(long)]
    pub(crate) include_untitled: bool,
    /// Also pull the artifact's subject (and its subject, recursively) into the same folder
    #[arg(long)]
    pub(crate) include_subject: bool,
    /// Download each large file with this many parallel range requests (helps against storage
    /// that caps each connection)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) parallel_ranges: usize,
    /// Pull from an OCI image layout folder instead of a registry
    #[arg(long)]
    pub(crate) oci_layout: bool,
    /// Files downloaded at once
    #[arg(long, default_value_t = acr_client::PULL_CONCURRENCY)]
    pub(crate) concurrency: usize,
    #[command(flatten)]
    pub(crate) remote: Remote,
    #[command(flatten)]
    pub(crate) format: Output,
}

#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    /// The artifact to attach to: REGISTRY/REPO:TAG or @DIGEST, or PATH:TAG with --oci-layout
    pub(crate) reference: String,
    /// Files or folders to attach, each FILE or FILE:MEDIATYPE; `-` is standard input (named
    /// `stdin`)
    #[arg(required = true)]
    pub(crate) files: Vec<String>,
    /// The artifact type of what is attached
    #[arg(long, required = true)]
    pub(crate) artifact_type: String,
    /// A manifest annotation KEY=VALUE (repeatable)
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub(crate) annotations: Vec<String>,
    /// The subject is in an OCI image layout folder
    #[arg(long)]
    pub(crate) oci_layout: bool,
    #[command(flatten)]
    pub(crate) remote: Remote,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub(crate) enum DiscoverFormat {
    #[default]
    Tree,
    Table,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct DiscoverArgs {
    /// The subject: REGISTRY/REPO:TAG or @DIGEST, or PATH:TAG with --oci-layout
    pub(crate) reference: String,
    /// Only referrers of this artifact type (first level)
    #[arg(long)]
    pub(crate) artifact_type: Option<String>,
    /// How deep to follow referrers of referrers
    #[arg(long, default_value_t = 8)]
    pub(crate) depth: usize,
    /// Output format
    #[arg(long, value_enum, default_value_t = DiscoverFormat::Tree)]
    pub(crate) format: DiscoverFormat,
    /// The subject is in an OCI image layout folder
    #[arg(long)]
    pub(crate) oci_layout: bool,
    #[command(flatten)]
    pub(crate) remote: Remote,
}

#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// Source: REGISTRY/REPO:TAG or @DIGEST, or PATH:TAG with --from-oci-layout
    pub(crate) source: String,
    /// Destination: REGISTRY/REPO[:TAG], or PATH[:TAG] with --to-oci-layout
    pub(crate) destination: String,
    /// Also copy referrers, recursively
    #[arg(short = 'r', long)]
    pub(crate) recursive: bool,
    /// The source is an OCI image layout folder
    #[arg(long)]
    pub(crate) from_oci_layout: bool,
    /// The destination is an OCI image layout folder
    #[arg(long)]
    pub(crate) to_oci_layout: bool,
    /// Blobs copied at once
    #[arg(long, default_value_t = acr_client::COPY_CONCURRENCY)]
    pub(crate) concurrency: usize,
    #[command(flatten)]
    pub(crate) remote: Remote,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The registry host, such as myreg.azurecr.io or localhost:5000
    pub(crate) registry: String,
    /// Read the password (or token) from standard input
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Log in with an identity token (an ACR refresh token)
    #[arg(long, value_name = "TOKEN")]
    pub(crate) identity_token: Option<String>,
    /// Log in with Azure AD: the first of environment client secret, workload identity,
    /// managed identity and Azure CLI that works (or the one named by --aad-source); the ACR
    /// refresh token it is exchanged for is stored, never the AAD token
    #[arg(long)]
    pub(crate) aad: bool,
    /// With --aad, use only this source: env, workload-identity, managed-identity or cli
    #[arg(long, value_name = "SOURCE", requires = "aad")]
    pub(crate) aad_source: Option<String>,
    /// Read an Azure AD access token from standard input and exchange it
    #[arg(long, conflicts_with = "aad")]
    pub(crate) aad_token_stdin: bool,
    #[command(flatten)]
    pub(crate) remote: Remote,
}

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    /// The registry host
    pub(crate) registry: String,
    #[command(flatten)]
    pub(crate) remote: Remote,
}

#[derive(Debug, Args)]
pub(crate) struct RefArgs {
    /// REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST
    pub(crate) reference: String,
    #[command(flatten)]
    pub(crate) remote: Remote,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct RegistryArgs {
    /// The registry host, such as myreg.azurecr.io or localhost:5000
    pub(crate) registry: String,
    #[command(flatten)]
    pub(crate) remote: Remote,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct TagCommand {
    #[command(subcommand)]
    pub(crate) action: Option<TagAction>,
    /// The manifest to tag: REGISTRY/REPO:TAG or @DIGEST
    #[arg(required = true)]
    pub(crate) reference: Option<String>,
    /// New tags
    #[arg(required = true)]
    pub(crate) tags: Vec<String>,
    #[command(flatten)]
    pub(crate) remote: Remote,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TagAction {
    /// List the tags of a repository with their properties
    List {
        #[command(flatten)]
        target: RefArgs,
        /// Order by last update
        #[arg(long, value_enum)]
        orderby: Option<OrderBy>,
    },
    /// Show one tag's properties
    Show(RefArgs),
    /// Change a tag's properties (lock it against overwrites or deletes)
    Update {
        #[command(flatten)]
        target: RefArgs,
        #[command(flatten)]
        attributes: AttributeArgs,
    },
    /// Delete only the tag (the manifest stays)
    Delete(RefArgs),
}

/// The changeable attributes of a repository, manifest or tag.
#[derive(Debug, Args, Clone)]
pub(crate) struct AttributeArgs {
    /// Whether it can be deleted
    #[arg(long, value_name = "BOOL")]
    pub(crate) delete_enabled: Option<bool>,
    /// Whether it can be overwritten
    #[arg(long, value_name = "BOOL")]
    pub(crate) write_enabled: Option<bool>,
    /// Whether it shows in listings
    #[arg(long, value_name = "BOOL")]
    pub(crate) list_enabled: Option<bool>,
    /// Whether it can be pulled
    #[arg(long, value_name = "BOOL")]
    pub(crate) read_enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OrderBy {
    /// Newest first
    TimeDesc,
    /// Oldest first
    TimeAsc,
}

#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    /// The repository: REGISTRY/REPO
    pub(crate) repository: String,
    /// Keep this many of the newest matching manifests
    #[arg(long, default_value_t = 0)]
    pub(crate) keep: usize,
    /// Only manifests last updated longer ago than this (such as 30d, 12h, 90m)
    #[arg(long, value_name = "DURATION")]
    pub(crate) ago: Option<String>,
    /// Only manifests with a tag matching this glob (`*`, `?`)
    #[arg(long, value_name = "GLOB")]
    pub(crate) filter: Option<String>,
    /// Only manifests without tags
    #[arg(long)]
    pub(crate) untagged: bool,
    /// List what would be deleted, delete nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) remote: Remote,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ManifestCommand {
    /// Print a manifest
    #[command(after_help = "Example:\n  acr manifest fetch localhost:5000/hello:v1 --pretty")]
    Fetch {
        #[command(flatten)]
        target: RefArgs,
        /// Indent the JSON
        #[arg(long)]
        pretty: bool,
        /// Print the manifest's descriptor instead
        #[arg(long)]
        descriptor: bool,
    },
    /// Push a manifest file (its exact bytes) under a tag or by digest
    #[command(
        after_help = "Example:\n  acr manifest push localhost:5000/hello:multi index.json --media-type application/vnd.oci.image.index.v1+json"
    )]
    Push {
        #[command(flatten)]
        target: RefArgs,
        /// The manifest file
        file: PathBuf,
        /// Its media type, when the file has no `mediaType` field
        #[arg(long)]
        media_type: Option<String>,
    },
    /// List a repository's manifests with their properties (ACR)
    #[command(
        after_help = "Example:\n  acr manifest list myreg.azurecr.io/hello --orderby time-desc"
    )]
    List {
        #[command(flatten)]
        target: RefArgs,
        /// Order by last update
        #[arg(long, value_enum)]
        orderby: Option<OrderBy>,
    },
    /// Show a manifest's properties (ACR; size, times, tags, attributes)
    #[command(after_help = "Example:\n  acr manifest show myreg.azurecr.io/hello:v1")]
    Show(RefArgs),
    /// Change a manifest's properties (ACR)
    #[command(
        after_help = "Example:\n  acr manifest update myreg.azurecr.io/hello:v1 --delete-enabled false"
    )]
    Update {
        #[command(flatten)]
        target: RefArgs,
        #[command(flatten)]
        attributes: AttributeArgs,
    },
    /// Print the config blob of an image manifest
    #[command(after_help = "Example:\n  acr manifest fetch-config localhost:5000/hello:v1")]
    FetchConfig(RefArgs),
    /// Delete a manifest (and the tags that point at it)
    #[command(after_help = "Example:\n  acr manifest delete localhost:5000/hello@sha256:...")]
    Delete(RefArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum BlobCommand {
    /// Download a blob, verified
    #[command(
        after_help = "Example:\n  acr blob fetch localhost:5000/hello@sha256:... -o file.bin"
    )]
    Fetch {
        #[command(flatten)]
        target: RefArgs,
        /// Where to write it; `-` for standard output
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Upload a file as a blob and print its descriptor
    #[command(after_help = "Example:\n  acr blob push localhost:5000/hello file.bin")]
    Push {
        #[command(flatten)]
        target: RefArgs,
        /// The file
        file: PathBuf,
    },
    /// Delete a blob from a repository
    #[command(after_help = "Example:\n  acr blob delete localhost:5000/hello@sha256:...")]
    Delete(RefArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum RepoCommand {
    /// Show a repository's properties (ACR)
    #[command(after_help = "Example:\n  acr repo show myreg.azurecr.io/hello")]
    Show(RefArgs),
    /// Change a repository's properties (ACR)
    #[command(
        after_help = "Example:\n  acr repo update myreg.azurecr.io/hello --write-enabled false"
    )]
    Update {
        #[command(flatten)]
        target: RefArgs,
        #[command(flatten)]
        attributes: AttributeArgs,
    },
    /// Delete a repository with all its manifests and tags (ACR)
    #[command(after_help = "Example:\n  acr repo delete myreg.azurecr.io/hello")]
    Delete(RefArgs),
    /// List the repositories of a registry
    #[command(after_help = "Example:\n  acr repo ls localhost:5000")]
    Ls(RegistryArgs),
    /// List a repository's tags
    #[command(
        after_help = "Example:\n  acr repo tags localhost:5000/hello\n  acr repo tags localhost:5000/hello --last v1.2"
    )]
    Tags {
        #[command(flatten)]
        target: RefArgs,
        /// Only tags sorting after this one
        #[arg(long)]
        last: Option<String>,
    },
}
