//! The rustls configuration: Mozilla and platform roots (loaded at the first handshake), an
//! optional extra CA file, and the explicit opt-out of verification.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{Error, TransportConfig};

/// Builds the TLS configuration for `config`.
pub(crate) fn client_config(config: &TransportConfig) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("no usable TLS protocol version: {e}")))?;
    let roots = if config.insecure_skip_verify {
        None
    } else {
        // A bad CA file is an error now, not at the first handshake.
        let mut extra = RootCertStore::empty();
        if let Some(path) = &config.ca_file {
            for cert in read_ca_file(path)? {
                extra.add(cert).map_err(|e| {
                    Error::Tls(format!(
                        "CA file {}: unusable certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        Some(LazyRoots {
            extra,
            verifier: OnceLock::new(),
        })
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { provider, roots }))
        .with_no_client_auth())
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Tls(format!("cannot read CA file {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Tls(format!("CA file {} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "CA file {} holds no `BEGIN CERTIFICATE` block",
            path.display()
        )));
    }
    Ok(certs)
}

/// Server certificates checked by rustls' WebPKI verifier against [`LazyRoots`], or with
/// `--insecure` (no roots) not at all. Handshake signatures are checked either way, so even an
/// insecure connection is encrypted to whoever holds the presented key.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    roots: Option<LazyRoots>,
}

/// Mozilla's roots, the platform's and the CA file's, made into a verifier at the first
/// handshake: reading the platform's few hundred certificate files costs milliseconds that
/// commands against plain-HTTP registries need not pay.
#[derive(Debug)]
struct LazyRoots {
    extra: RootCertStore,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

impl LazyRoots {
    fn verifier(
        &self,
        provider: &Arc<CryptoProvider>,
    ) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                let mut roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                // Platform roots carry corporate and private CAs; a machine without them
                // still has Mozilla's.
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                roots.roots.extend(self.extra.roots.iter().cloned());
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("no usable root certificates: {e}"))
            })
            .as_ref()
            .map_err(|e| rustls::Error::General(e.clone()))
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.roots {
            Some(roots) => roots.verifier(&self.provider)?.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
