//! Push files as an OCI 1.1 artifact, list the tags, and pull it back, driven only through
//! `oci-distribution-proto` over a tiny blocking HTTP/1.1 client on `std::net::TcpStream`.
//!
//! ```text
//! cargo run -p oci-distribution-proto --example push_pull -- \
//!     localhost:5000/demo:v1 hello.txt data.bin --pull-to pulled/
//! ```
//!
//! It speaks plain HTTP (no TLS, no authentication), as an anonymous local registry such as
//! Debian's `docker-registry` serves. Files over 1 MiB go up in 1 MiB chunks (`POST`, `PATCH`…,
//! `PUT ?digest=`), hashed while they are sent; smaller ones in one `PUT` after the `POST`.
//! Every pulled layer is streamed to disk through a `BlobVerifier` and only renamed to its
//! title once its size and digest check out.

use std::error::Error as StdError;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use oci_distribution_proto::http::{self, Method, Request, Response, StatusCode};
use oci_distribution_proto::types::{
    Descriptor, Digest, Digester, EMPTY_JSON, ImageManifest, Manifest, ManifestBytes, MediaType,
    Reference, annotations,
};
use oci_distribution_proto::{
    BlobVerifier, Body, ChunkPolicy, ERROR_BODY_LIMIT, Error, Operation, PageRequest, Registry,
    Scheme, UploadSession, check_manifest_size,
};

type Result<T, E = Box<dyn StdError + Send + Sync>> = std::result::Result<T, E>;

/// Files larger than this take the chunked path, in chunks of this size.
const CHUNK: u64 = 1024 * 1024;
const ARTIFACT_TYPE: &str = "application/vnd.acr.demo.v1";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprint!(": {cause}");
                source = cause.source();
            }
            eprintln!();
            ExitCode::FAILURE
        }
    }
}

struct Args {
    reference: Reference,
    files: Vec<PathBuf>,
    pull_to: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    const USAGE: &str =
        "usage: push_pull <registry-host:port>/<repository>:<tag> FILE... [--pull-to DIR]";
    let mut reference = None;
    let mut files = Vec::new();
    let mut pull_to = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--pull-to" {
            pull_to = Some(PathBuf::from(args.next().ok_or(USAGE)?));
        } else if arg == "-h" || arg == "--help" {
            return Err(USAGE.into());
        } else if reference.is_none() {
            let text = arg.to_str().ok_or("the reference is not UTF-8")?;
            reference = Some(text.parse::<Reference>()?);
        } else {
            files.push(PathBuf::from(arg));
        }
    }
    let reference: Reference = reference.ok_or(USAGE)?;
    if reference.tag().is_none() {
        return Err(format!("{reference} has no tag: add one, such as {reference}:v1").into());
    }
    if files.is_empty() {
        return Err(USAGE.into());
    }
    Ok(Args {
        reference,
        files,
        pull_to,
    })
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let reference = &args.reference;
    let registry = Registry::for_reference(reference, Scheme::Http)?;

    let response = send_small(registry.version_request()?)?;
    registry.handle_version_response(&response)?;

    // Push: the empty config, one layer per file, then the manifest (last, so the tag never
    // points at missing blobs).
    let config = Descriptor::empty();
    push_small(&registry, reference, &config.digest, EMPTY_JSON)?;
    let mut layers = Vec::new();
    for path in &args.files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{} has no UTF-8 file name", path.display()))?;
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        let (digest, uploaded) = if size > CHUNK {
            (push_chunked(&registry, reference, path, size)?, true)
        } else {
            let data = std::fs::read(path)?;
            let digest = Digest::sha256_of(&data);
            let uploaded = push_small(&registry, reference, &digest, &data)?;
            (digest, uploaded)
        };
        let verb = if uploaded { "Uploaded" } else { "Exists" };
        println!(
            "{verb} {}:{} {name} ({size} bytes)",
            digest.algorithm_str(),
            digest.short()
        );
        layers.push(
            Descriptor::new(MediaType::ImageLayer, digest, size)
                .with_annotation(annotations::TITLE, name),
        );
    }
    let manifest = ImageManifest::artifact(MediaType::from(ARTIFACT_TYPE), layers);
    let manifest = ManifestBytes::from_manifest(manifest.into());
    let response = send_small(registry.manifest_put_request(reference, &manifest)?)?;
    let pushed = registry.handle_manifest_put_response(&manifest, &response)?;
    println!("Pushed {reference}");
    println!("Digest: {}", pushed.digest);

    // List the tags, following `Link` pages when the registry paginates.
    let mut tags = Vec::new();
    let mut request = registry.tags_request(reference, &PageRequest::new())?;
    loop {
        let uri = request.uri().clone();
        let page = registry.handle_tags_response(&uri, &send_small(request)?)?;
        tags.extend(page.tags);
        match page.next {
            Some(next) => request = registry.tags_next_request(reference, &next)?,
            None => break,
        }
    }
    println!("Tags: {}", tags.join(", "));

    // Pull by tag: the manifest is checked against Docker-Content-Digest, then each layer.
    let request = registry.manifest_get_request(reference)?;
    let response = send(request)?;
    let limit = check_manifest_size(&response)?;
    let response = read_body(response, limit)?;
    let pulled = registry.handle_manifest_get_response(reference, &response)?;
    if pulled.digest() != &pushed.digest {
        return Err(format!(
            "{reference} now points at {}, not the {} just pushed; someone else pushed meanwhile",
            pulled.digest(),
            pushed.digest
        )
        .into());
    }
    let Manifest::Image(image) = pulled.manifest() else {
        return Err(format!(
            "{reference} is a {}, not an image manifest",
            pulled.media_type()
        )
        .into());
    };
    if let Some(dir) = &args.pull_to {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for layer in &image.layers {
        let title = layer
            .title()
            .filter(|t| is_plain_file_name(t))
            .ok_or_else(|| format!("layer {} has no usable title", layer.digest))?;
        pull_blob(&registry, reference, layer, title, args.pull_to.as_deref())?;
        println!("Pulled {title} (verified)");
    }
    Ok(())
}

/// `POST` to open a session, then one `PUT ?digest=` with the whole blob (skipped when the
/// repository has the blob already). Returns whether it uploaded.
fn push_small(
    registry: &Registry,
    reference: &Reference,
    digest: &Digest,
    data: &[u8],
) -> Result<bool> {
    let head = send_small(registry.blob_head_request(reference, digest)?)?;
    if registry.handle_blob_head_response(digest, &head)?.is_some() {
        return Ok(false);
    }
    let response = send_small(registry.upload_start_request(reference)?)?;
    let mut session = registry.handle_upload_start_response(reference, &response)?;
    let request = session.finish_request(digest, Body::from(data.to_vec()))?;
    session.handle_finish_response(&send_small(request)?)?;
    Ok(true)
}

/// `POST`, a `PATCH` per chunk (each to the latest `Location`), then an empty `PUT ?digest=`
/// with the digest computed while the chunks went out.
fn push_chunked(
    registry: &Registry,
    reference: &Reference,
    path: &Path,
    size: u64,
) -> Result<Digest> {
    let response = send_small(registry.upload_start_request(reference)?)?;
    let mut session: UploadSession = registry.handle_upload_start_response(reference, &response)?;
    session.set_chunk_policy(ChunkPolicy { chunk_size: CHUNK });
    let mut file = File::open(path)?;
    let mut digester = Digester::default();
    while session.offset() < size {
        let len = session.next_chunk_len(size - session.offset());
        let mut chunk = vec![0; usize::try_from(len)?];
        file.read_exact(&mut chunk)?;
        digester.update(&chunk);
        let request = session.chunk_request(Body::from(chunk))?;
        session.handle_chunk_response(&send_small(request)?)?;
    }
    let digest = digester.finalize();
    let request = session.finish_request(&digest, Body::Empty)?;
    Ok(session.handle_finish_response(&send_small(request)?)?)
}

/// Streams a blob into `dir/<title>.partial` through a verifier, then renames it.
fn pull_blob(
    registry: &Registry,
    reference: &Reference,
    layer: &Descriptor,
    title: &str,
    dir: Option<&Path>,
) -> Result<()> {
    let response = send(registry.blob_get_request(reference, &layer.digest, None)?)?;
    if !response.status().is_success() {
        let response = read_body(response, ERROR_BODY_LIMIT)?;
        return Err(Error::from_response(Operation::GetBlob, &response).into());
    }
    registry.handle_blob_get_response(&layer.digest, None, &response)?;
    let mut verifier = BlobVerifier::for_descriptor(layer)?;
    let partial = dir.map(|d| d.join(format!("{title}.partial")));
    let mut out = partial.as_ref().map(File::create).transpose()?;
    let mut body = response.into_body();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let bytes = buf.get(..n).unwrap_or_default();
        verifier.update(bytes)?;
        if let Some(out) = &mut out {
            out.write_all(bytes)?;
        }
    }
    verifier.finish()?;
    if let (Some(partial), Some(dir)) = (partial, dir) {
        std::fs::rename(partial, dir.join(title))?;
    }
    Ok(())
}

/// A title that is a plain file name: nothing that could escape the output directory.
fn is_plain_file_name(title: &str) -> bool {
    !title.is_empty() && title != "." && title != ".." && !title.contains(['/', '\\', '\0'])
}

// ---- A minimal blocking HTTP/1.1 client: one connection per request, `Connection: close`.

/// Sends a request and reads the whole (small) response body.
fn send_small(request: Request<Body>) -> Result<Response<Vec<u8>>> {
    let response = send(request)?;
    read_body(response, 1024 * 1024)
}

fn read_body(response: Response<ResponseBody>, limit: u64) -> Result<Response<Vec<u8>>> {
    let (parts, body) = response.into_parts();
    let mut bytes = Vec::new();
    body.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(format!("response body longer than {limit} bytes").into());
    }
    Ok(Response::from_parts(parts, bytes))
}

/// Sends a request, following redirects of `GET`/`HEAD` requests on plain HTTP.
fn send(mut request: Request<Body>) -> Result<Response<ResponseBody>> {
    for _ in 0..5 {
        let response = send_once(&request)?;
        let redirect = matches!(
            response.status(),
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        ) && (request.method() == Method::GET || request.method() == Method::HEAD);
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        match (redirect, location) {
            (true, Some(location)) => {
                let base = url::Url::parse(&request.uri().to_string())?;
                let target = base.join(location)?;
                let mut next = Request::builder()
                    .method(request.method().clone())
                    .uri(target.as_str())
                    .body(Body::Empty)?;
                // Only headers that say what to fetch go along.
                for name in [http::header::ACCEPT, http::header::RANGE] {
                    if let Some(value) = request.headers().get(&name) {
                        next.headers_mut().insert(name, value.clone());
                    }
                }
                request = next;
            }
            _ => return Ok(response),
        }
    }
    Err("too many redirects".into())
}

fn send_once(request: &Request<Body>) -> Result<Response<ResponseBody>> {
    let uri = request.uri();
    if uri.scheme_str() != Some("http") {
        return Err(format!("{uri}: this example speaks plain HTTP only").into());
    }
    let authority = uri.authority().ok_or("request URL without a host")?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = TcpStream::connect((host, port))
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;

    let body = request
        .body()
        .as_bytes()
        .ok_or("this example sends in-memory bodies only")?;
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n",
        request.method()
    );
    for (name, value) in request.headers() {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str()?);
        head.push_str("\r\n");
    }
    let sends_body =
        !body.is_empty() || request.headers().contains_key(http::header::CONTENT_LENGTH);
    if sends_body && !request.headers().contains_key(http::header::CONTENT_LENGTH) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut writer = io::BufWriter::new(&stream);
    writer.write_all(head.as_bytes())?;
    writer.write_all(body)?;
    writer.flush()?;
    drop(writer);

    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader)?;
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    let mut response = response.body(())?;
    let bodiless = request.method() == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let chunked = response
        .headers()
        .get(http::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = if bodiless {
        ResponseBody::Empty
    } else if chunked {
        response
            .headers_mut()
            .remove(http::header::TRANSFER_ENCODING);
        ResponseBody::Chunked {
            reader,
            remaining: 0,
            done: false,
        }
    } else if let Some(length) = length {
        ResponseBody::Length(reader.take(length))
    } else {
        ResponseBody::UntilClose(reader)
    };
    Ok(response.map(|()| body))
}

/// Reads the status line and headers (up to the empty line).
fn read_head(reader: &mut BufReader<TcpStream>) -> Result<(StatusCode, Vec<(String, String)>)> {
    let status_line = read_line(reader)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}").into());
    }
    let code = parts.next().ok_or("status line without a code")?;
    let status = StatusCode::from_bytes(code.as_bytes())?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
        if headers.len() > 200 {
            return Err("too many response headers".into());
        }
    }
    Ok((status, headers))
}

/// One CRLF-terminated line, without the line ending; at most 64 KiB.
fn read_line(reader: &mut impl BufRead) -> Result<String> {
    let mut line = Vec::new();
    reader.take(64 * 1024).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err("connection closed in the middle of the response head".into());
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8(line)?)
}

/// A response body framed by `Content-Length`, chunked encoding, or the connection's end.
enum ResponseBody {
    Empty,
    Length(io::Take<BufReader<TcpStream>>),
    Chunked {
        reader: BufReader<TcpStream>,
        remaining: u64,
        done: bool,
    },
    UntilClose(BufReader<TcpStream>),
}

impl Read for ResponseBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Empty => Ok(0),
            Self::Length(reader) => {
                let limit = reader.limit();
                let n = reader.read(buf)?;
                if n == 0 && limit > 0 && !buf.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection closed with {limit} bytes of the body missing"),
                    ));
                }
                Ok(n)
            }
            Self::Chunked {
                reader,
                remaining,
                done,
            } => {
                if *done || buf.is_empty() {
                    return Ok(0);
                }
                if *remaining == 0 {
                    let line = read_line(reader).map_err(io::Error::other)?;
                    let size = line.split(';').next().unwrap_or_default().trim();
                    *remaining = u64::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad chunk size {line:?}"),
                        )
                    })?;
                    if *remaining == 0 {
                        // Trailers, up to the empty line.
                        while !read_line(reader).map_err(io::Error::other)?.is_empty() {}
                        *done = true;
                        return Ok(0);
                    }
                }
                let want = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = reader.read(buf.get_mut(..want).unwrap_or_default())?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated chunk",
                    ));
                }
                *remaining -= n as u64;
                if *remaining == 0 {
                    read_line(reader).map_err(io::Error::other)?;
                }
                Ok(n)
            }
            Self::UntilClose(reader) => reader.read(buf),
        }
    }
}
