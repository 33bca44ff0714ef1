//! Fixture loading and a std-only executor.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use oci_distribution_proto::http::{Response, StatusCode};

/// A captured response: `tests/fixtures/<dir>/<name>.http`, raw HTTP/1.1 as received.
pub(crate) fn fixture(dir: &str, name: &str) -> Response<Vec<u8>> {
    let raw = fixture_bytes(dir, &format!("{name}.http"));
    parse_response(&raw).unwrap_or_else(|e| panic!("fixture {dir}/{name}: {e}"))
}

pub(crate) fn fixture_bytes(dir: &str, file: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", dir, file]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A header of a fixture, for comparing built requests with what the registry sent.
pub(crate) fn header<'a>(response: &'a Response<Vec<u8>>, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

fn parse_response(raw: &[u8]) -> Result<Response<Vec<u8>>, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no blank line after the head")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|e| e.to_string())?;
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty")?;
    let code = status_line.split(' ').nth(1).ok_or("no status code")?;
    let status = StatusCode::from_bytes(code.as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = Response::builder().status(status);
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header {line:?}"))?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(body).map_err(|e| e.to_string())
}

/// Runs a future to completion on this thread. Everything here is ready at once, so polling in
/// a loop is enough; no runtime is needed.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}
