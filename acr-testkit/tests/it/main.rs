//! The registry launcher against the real docker-registry, in each mode.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use acr_testkit::{Auth, BASIC_PASSWORD, BASIC_USER, Registry, RegistryOptions};

/// A bare HTTP/1.1 GET; returns the status line and body.
fn get(registry: &Registry, path: &str, authorization: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(registry.addr()).unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
        registry.host()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

#[test]
fn anonymous_registry_answers_the_version_check() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let (status, body) = get(&registry, "/v2/", None);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "{}");
    assert!(registry.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(registry.ca_file(), None);
}

#[test]
fn basic_registry_wants_the_test_password() {
    let registry = Registry::start(RegistryOptions {
        auth: Auth::Basic,
        ..Default::default()
    })
    .unwrap();
    let (status, _) = get(&registry, "/v2/", None);
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    let wrong = format!("Basic {}", base64(&format!("{BASIC_USER}:wrong")));
    assert_eq!(
        get(&registry, "/v2/", Some(&wrong)).0,
        "HTTP/1.1 401 Unauthorized"
    );
    let right = format!(
        "Basic {}",
        base64(&format!("{BASIC_USER}:{BASIC_PASSWORD}"))
    );
    assert_eq!(get(&registry, "/v2/", Some(&right)).0, "HTTP/1.1 200 OK");
}

#[test]
fn tls_registry_is_trusted_through_its_ca_file() {
    let registry = Registry::start(RegistryOptions {
        tls: true,
        ..Default::default()
    })
    .unwrap();
    let ca = registry.ca_file().unwrap();
    let url = format!("{}/v2/", registry.base_url());
    let verified = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(verified.stdout, b"{}");
    // Without the CA the certificate must not verify: the test CA is not trusted by default.
    let unverified = Command::new("curl").args(["-sS", &url]).output().unwrap();
    assert!(!unverified.status.success());
    // Also served for "localhost", the other name in the certificate.
    let by_name = url.replace("127.0.0.1", "localhost");
    let named = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .arg(&by_name)
        .output()
        .unwrap();
    assert!(
        named.status.success(),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
}

#[test]
fn dropping_the_registry_stops_it() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let addr = registry.addr();
    drop(registry);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening on {addr}"
    );
}

fn base64(text: &str) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    out.stdin
        .as_ref()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
}

#[cfg(feature = "server")]
mod acr;
#[cfg(feature = "server")]
mod client;
#[cfg(feature = "server")]
mod token;
