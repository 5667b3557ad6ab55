//! TLS settings for streams: rustls client and server configurations.
//!
//! Certificate validation is on by default (Mozilla's roots from
//! `webpki-roots`, or the CAs of a PEM file instead); turning it off is an
//! explicit option. Configurations are built once and shared (`Arc`), since
//! building one parses every root certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::{Code, Error, Result};

/// What a TLS client checks and offers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsClientOptions {
    /// Check the server's certificate chain and name (default: true).
    pub validate_cert: bool,
    /// Trust the CAs in this PEM file instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key (PEM files), for servers
    /// that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// ALPN protocols to offer, in order of preference (e.g. `b"http/1.1"`).
    pub alpn: Vec<Vec<u8>>,
}

impl Default for TlsClientOptions {
    fn default() -> Self {
        TlsClientOptions {
            validate_cert: true,
            ca_file: None,
            client_cert: None,
            alpn: Vec::new(),
        }
    }
}

/// A TLS error with its context, as the stream reports it.
pub(crate) fn tls_error(detail: impl std::fmt::Display) -> Error {
    Error::new(Code::TLS, format!("tls: {detail}"))
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(crypto::ring::default_provider()))
        .clone()
}

/// The client configuration for `options`, built once per distinct options
/// and cached for the life of the process (there are few distinct ones).
pub fn client_config(options: &TlsClientOptions) -> Result<Arc<ClientConfig>> {
    type Cache = Mutex<Vec<(TlsClientOptions, Arc<ClientConfig>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cached = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, config)) = cached.iter().find(|(o, _)| o == options) {
        return Ok(config.clone());
    }
    let config = Arc::new(build_client_config(options)?);
    // Files may change between calls; only the file-free configs are kept.
    if options.ca_file.is_none() && options.client_cert.is_none() {
        cached.push((options.clone(), config.clone()));
    }
    Ok(config)
}

fn build_client_config(options: &TlsClientOptions) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let builder = if options.validate_cert {
        builder.with_root_certificates(root_store(options.ca_file.as_deref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
    };
    let mut config = match &options.client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(tls_error)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = options.alpn.clone();
    Ok(config)
}

fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|e| {
                    tls_error(format_args!(
                        "bad CA certificate in {}: {e}",
                        path.display()
                    ))
                })?;
            }
        }
    }
    Ok(roots)
}

/// A server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config_from_pem_files(
    cert_file: &Path,
    key_file: &Path,
    alpn: &[Vec<u8>],
) -> Result<Arc<ServerConfig>> {
    server_config(load_certs(cert_file)?, load_key(key_file)?, alpn)
}

/// A server configuration from a PEM certificate chain and key held in memory.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    alpn: &[Vec<u8>],
) -> Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format_args!("bad certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error("no certificate in the PEM data"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| tls_error(format_args!("bad private key PEM: {e}")))?;
    server_config(certs, key, alpn)
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[Vec<u8>],
) -> Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls_error)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(Arc::new(config))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            tls_error(format_args!(
                "cannot read certificates from {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(tls_error(format_args!(
            "no certificate in {}",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        tls_error(format_args!(
            "cannot read a private key from {}: {e}",
            path.display()
        ))
    })
}

/// The name a client checks the certificate against and sends as SNI; an IP
/// address is checked against the certificate's IP entries (no SNI is sent).
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|_| Error::invalid(format!("not a valid TLS server name: {host:?}")))
}

/// Validation turned off (`validate_cert = false`): any certificate is
/// accepted, but the handshake signatures are still checked, so the peer
/// must hold the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
