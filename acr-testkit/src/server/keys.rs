//! Signing keys: generated with the `openssl` CLI (no openssl-sys), used through ring.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

use crate::registry::{Error, io_err};

/// A P-256 key with a self-signed certificate, for ES256 JWTs.
pub(crate) struct SigningKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    /// Standard base64 of the certificate's DER, the one `x5c` entry.
    x5c: String,
    /// The libtrust fingerprint docker-registry accepts as `kid`.
    kid: String,
    /// The certificate as PEM, what docker-registry's `rootcertbundle` wants.
    cert_pem: PathBuf,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Runs `openssl` in `dir`; its stderr becomes the error.
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> Result<(), Error> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| {
            Error::Certificates(format!(
                "running openssl: {e} (install the openssl command-line tool)"
            ))
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Certificates(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl SigningKey {
    /// Makes `<name>.key`/`<name>.crt` in `dir` (CN = `subject`) and loads them.
    pub(crate) fn generate(dir: &Path, name: &str, subject: &str) -> Result<Self, Error> {
        let key = format!("{name}.key");
        let crt = format!("{name}.crt");
        let p8 = format!("{name}.p8.der");
        let der = format!("{name}.crt.der");
        let spki = format!("{name}.pub.der");
        let subj = format!("/CN={subject}");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &crt,
                "-days",
                "2",
                "-subj",
                &subj,
            ],
        )?;
        // ring wants DER PKCS#8 (with the public key, which openssl includes).
        openssl(
            dir,
            &[
                "pkcs8", "-topk8", "-nocrypt", "-in", &key, "-outform", "DER", "-out", &p8,
            ],
        )?;
        openssl(dir, &["x509", "-in", &crt, "-outform", "DER", "-out", &der])?;
        openssl(
            dir,
            &[
                "pkey", "-in", &key, "-pubout", "-outform", "DER", "-out", &spki,
            ],
        )?;
        let read =
            |file: &str| std::fs::read(dir.join(file)).map_err(io_err(format!("reading {file}")));
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &read(&p8)?, &rng)
            .map_err(|e| Error::Server(format!("ring rejected the generated P-256 key: {e}")))?;
        Ok(Self {
            pair,
            rng,
            x5c: STANDARD.encode(read(&der)?),
            kid: libtrust_key_id(&read(&spki)?),
            cert_pem: dir.join(crt),
        })
    }

    /// The raw 64-byte R‖S ES256 signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| "ECDSA signing failed".to_owned())
    }

    /// The uncompressed public point, for verification with ring.
    pub(crate) fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub(crate) fn x5c(&self) -> &str {
        &self.x5c
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn cert_pem(&self) -> &Path {
        &self.cert_pem
    }

    /// 16 random bytes as hex (JWT ids).
    pub(crate) fn random_id(&self) -> String {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 16];
        // SystemRandom on Linux only fails if getrandom is unavailable; an all-zero id is harmless.
        let _ = self.rng.fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// libtrust's key id: base32 of the first 30 bytes of SHA-256(DER SubjectPublicKeyInfo), in 12
/// colon-separated groups of 4 (docker-registry 2.8 rejects RFC 7638 thumbprints as `kid`).
pub(crate) fn libtrust_key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
    let bytes = &digest.as_ref()[..30];
    let mut chars = String::with_capacity(48);
    // 30 bytes = 240 bits = exactly 48 base32 digits, so no padding.
    for chunk in bytes.chunks(5) {
        let mut buf = 0u64;
        for b in chunk {
            buf = (buf << 8) | u64::from(*b);
        }
        for i in (0..8).rev() {
            chars.push(char::from(ALPHABET[((buf >> (i * 5)) & 31) as usize]));
        }
    }
    chars
        .as_bytes()
        .chunks(4)
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}
