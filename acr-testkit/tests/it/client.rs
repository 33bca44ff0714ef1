//! A bare HTTP/1.1 client over std TcpStream (one request per connection) and token helpers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

/// A blob and its digest (sha256 of `hello from acr-testkit`).
pub(crate) const BLOB: &[u8] = b"hello from acr-testkit";
pub(crate) const BLOB_DIGEST: &str =
    "sha256:039ed7575ae469fec6141f331cee6bc440e98b578636061ecf31c9dda9b3d519";

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }
}

/// Sends one request; `path` may be absolute-form-free (`/v2/`) or a full `http://host/...` URL
/// (a registry Location), whose path is then used.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let path = match path.find("://") {
        Some(i) => {
            let rest = &path[i + 3..];
            &rest[rest.find('/').unwrap_or(rest.len())..]
        }
        None => path,
    };
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head_only: bool) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if head_only {
        body.clear();
    } else if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

pub(crate) fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", path, headers, b"")
}

/// POSTs an urlencoded form.
pub(crate) fn post_form(addr: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Reply {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form(fields).as_bytes(),
    )
}

pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The claims of a JWT (not verified: the registry does that).
pub(crate) fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).unwrap()
}

/// The JWT header.
pub(crate) fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).unwrap()
}

/// Starts an upload of [`BLOB`] to `repo` with `token`; returns the POST reply (202 on success).
pub(crate) fn start_upload(addr: SocketAddr, repo: &str, token: &str) -> Reply {
    let auth = bearer(token);
    request(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[("Authorization", &auth)],
        b"",
    )
}

/// Pushes [`BLOB`] to `repo` (POST + PUT) and asserts it worked; returns the upload Location.
pub(crate) fn push_blob(addr: SocketAddr, repo: &str, token: &str) -> String {
    let started = start_upload(addr, repo, token);
    assert_eq!(started.status, 202, "upload start: {started:?}");
    let location = started
        .header("Location")
        .expect("upload Location")
        .to_owned();
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = format!("{location}{separator}digest={}", encode(BLOB_DIGEST));
    let auth = bearer(token);
    let done = request(
        addr,
        "PUT",
        &put,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/octet-stream"),
        ],
        BLOB,
    );
    assert_eq!(done.status, 201, "upload PUT: {done:?}");
    location
}

/// GETs [`BLOB`] from `repo`.
pub(crate) fn pull_blob(addr: SocketAddr, repo: &str, token: &str) -> Reply {
    let auth = bearer(token);
    get(
        addr,
        &format!("/v2/{repo}/blobs/{BLOB_DIGEST}"),
        &[("Authorization", &auth)],
    )
}
