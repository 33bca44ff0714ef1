//! `bench-hash FILE`: times `oci_spec_types::Digester` (SHA-256, the digester `acr` uses)
//! over a file in 1 MiB reads. Built in release by `cargo xtask bench`, which reads the
//! seconds it prints (process start-up excluded) and the digest.
#![forbid(unsafe_code)]

use std::io::Read;
use std::time::Instant;

use oci_spec_types::Digester;

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args_os().nth(1) else {
        return Err(std::io::Error::other("usage: bench-hash FILE"));
    };
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let started = Instant::now();
    let mut digester = Digester::default();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        digester.update(&buf[..n]);
    }
    let digest = digester.finalize();
    println!("{:.6} {digest}", started.elapsed().as_secs_f64());
    Ok(())
}
