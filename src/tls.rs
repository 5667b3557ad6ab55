//! TLS settings for streams: rustls client and server configurations.
//!
//! Certificate validation is on by default, against the system's trust
//! store (see [`system_roots`]), or the CAs of a PEM file instead; turning
//! it off is an explicit option. Configurations are built once and shared
//! (`Arc`), and the system's roots are read once per process, since
//! reading them parses every root certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::{Error, Result};

/// What a TLS client checks and offers (Python's `ssl.SSLContext` for a
/// client, as Tornado's `ssl_options` make one).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TlsClientOptions {
    /// Check the server's certificate chain and name (default: true).
    pub validate_cert: bool,
    /// Trust the CAs in this PEM file instead of the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key (PEM files), for servers
    /// that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// ALPN protocols to offer, in order of preference (e.g. `b"http/1.1"`).
    pub alpn: Vec<Vec<u8>>,
    /// CA certificates as PEM bytes (Python's `cadata`): trusted instead of
    /// the system's store, together with `ca_file`'s when both are given.
    pub ca_pem: Option<Arc<[u8]>>,
    /// A client certificate chain and its key as PEM bytes, (chain, key);
    /// used instead of `client_cert` when both are set.
    pub client_cert_pem: Option<CertKeyPem>,
    /// The lowest TLS version accepted (None: 1.2, rustls's lowest).
    pub min_version: Option<TlsVersion>,
}

/// A certificate chain and its private key, as PEM bytes (chain, key).
pub type CertKeyPem = (Arc<[u8]>, Arc<[u8]>);

/// A TLS protocol version (rustls speaks 1.2 and 1.3 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 (Python's `TLSVersion.TLSv1_2`).
    Tls12,
    /// TLS 1.3 (Python's `TLSVersion.TLSv1_3`).
    Tls13,
}

impl TlsVersion {
    /// "1.2" or "1.3" (Python's `TLSVersion.TLSv1_2` / `TLSv1_3`, curl's
    /// `--tlsv1.2` / `--tlsv1.3`); anything else is `invalid`.
    pub fn parse(text: &str) -> Result<TlsVersion> {
        match text {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            other => Err(Error::invalid(format!(
                "unsupported TLS version {other:?} (\"1.2\" or \"1.3\")"
            ))),
        }
    }
}

/// Key material stays out of logs: PEM fields show their lengths only.
impl std::fmt::Debug for TlsClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = |pem: &Option<Arc<[u8]>>| pem.as_ref().map(|p| p.len());
        f.debug_struct("TlsClientOptions")
            .field("validate_cert", &self.validate_cert)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("alpn", &self.alpn)
            .field("ca_pem_len", &len(&self.ca_pem))
            .field(
                "client_cert_pem_len",
                &self.client_cert_pem.as_ref().map(|(c, _)| c.len()),
            )
            .field("min_version", &self.min_version)
            .finish()
    }
}

impl Default for TlsClientOptions {
    fn default() -> Self {
        TlsClientOptions {
            validate_cert: true,
            ca_file: None,
            client_cert: None,
            alpn: Vec::new(),
            ca_pem: None,
            client_cert_pem: None,
            min_version: None,
        }
    }
}

/// A TLS error with its context, as the stream reports it.
pub(crate) fn tls_error(detail: impl std::fmt::Display) -> Error {
    Error::of_kind(crate::error::ErrorKind::Tls, detail)
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(crypto::ring::default_provider()))
        .clone()
}

/// Configurations kept by [`client_config`]; past this the oldest goes.
const CONFIG_CACHE_SIZE: usize = 32;

/// The client configuration for `options`, built once per distinct options
/// and cached for the life of the process (there are few distinct ones;
/// at most 32 are kept, the oldest dropped first).
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
        if cached.len() >= CONFIG_CACHE_SIZE {
            cached.remove(0);
        }
        cached.push((options.clone(), config.clone()));
    }
    Ok(config)
}

fn build_client_config(options: &TlsClientOptions) -> Result<ClientConfig> {
    let versions: &[&rustls::SupportedProtocolVersion] = match options.min_version {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        Some(TlsVersion::Tls12) | None => rustls::DEFAULT_VERSIONS,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(tls_error)?;
    let builder = if options.validate_cert {
        builder.with_root_certificates(root_store(
            options.ca_file.as_deref(),
            options.ca_pem.as_deref(),
        )?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
    };
    let mut config = match (&options.client_cert_pem, &options.client_cert) {
        (Some((cert, key)), _) => builder
            .with_client_auth_cert(
                certs_from_pem(cert, "client certificate")?,
                key_from_pem(key)?,
            )
            .map_err(tls_error)?,
        (None, Some((cert, key))) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(tls_error)?,
        (None, None) => builder.with_no_client_auth(),
    };
    config.alpn_protocols = options.alpn.clone();
    Ok(config)
}

fn root_store(ca_file: Option<&Path>, ca_pem: Option<&[u8]>) -> Result<Arc<RootCertStore>> {
    if ca_file.is_none() && ca_pem.is_none() {
        return Ok(system_roots().clone());
    }
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca_file {
        for cert in load_certs(path)? {
            roots.add(cert).map_err(|e| {
                tls_error(format_args!(
                    "bad CA certificate in {}: {e}",
                    path.display()
                ))
            })?;
        }
    }
    if let Some(pem) = ca_pem {
        for cert in certs_from_pem(pem, "CA")? {
            roots
                .add(cert)
                .map_err(|e| tls_error(format_args!("bad CA certificate in the PEM data: {e}")))?;
        }
    }
    Ok(Arc::new(roots))
}

/// The certificates of PEM bytes: at least one, all well-formed, else a
/// `tls` error naming `what` they were for.
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format_args!("bad {what} PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(format_args!(
            "no certificate in the {what} PEM data"
        )));
    }
    Ok(certs)
}

/// The private key of PEM bytes (PKCS#8, PKCS#1 or SEC1), else a `tls` error.
pub fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| tls_error(format_args!("bad private key PEM: {e}")))
}

/// Where the default roots came from (see [`system_roots`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootsSource {
    /// `SSL_CERT_FILE` and/or `SSL_CERT_DIR`.
    Environment,
    /// The system's store (on Linux the OpenSSL locations, e.g.
    /// /etc/ssl/certs/ca-certificates.crt and /etc/ssl/certs).
    System,
    /// Mozilla's roots compiled into the library (`webpki-roots`): the
    /// system has no store, or none that yields a certificate.
    Bundled,
}

/// The roots a client trusts when validation is on and no CA file is
/// given, as curl and Python's `ssl` (Tornado) do: the certificates in
/// `SSL_CERT_FILE` and the directories of `SSL_CERT_DIR` (colon-separated,
/// OpenSSL's hashed directories) when either variable is set, and only
/// those; otherwise the system's trust store (what the administrator
/// installed with `update-ca-certificates`; the keychain on macOS, the
/// system store on Windows), read with `rustls-native-certs`. Only where
/// the variables are unset and the system yields no certificate at all are
/// Mozilla's roots built into the library used instead.
///
/// Read on first use and kept for the life of the process (the variables
/// and the store are read then, once: a change later is not seen), so no
/// connection pays for reading it.
pub fn system_roots() -> &'static Arc<RootCertStore> {
    default_roots().0
}

/// Where [`system_roots`] came from, and how many certificates it holds.
pub fn system_roots_source() -> (RootsSource, usize) {
    let (roots, source) = default_roots();
    (source, roots.len())
}

fn default_roots() -> (&'static Arc<RootCertStore>, RootsSource) {
    static ROOTS: OnceLock<(Arc<RootCertStore>, RootsSource)> = OnceLock::new();
    let (roots, source) = ROOTS.get_or_init(load_default_roots);
    (roots, *source)
}

fn load_default_roots() -> (Arc<RootCertStore>, RootsSource) {
    // As rustls-native-certs decides it: SSL_CERT_FILE set at all, or an
    // SSL_CERT_DIR with a directory in it.
    let from_env = std::env::var_os("SSL_CERT_FILE").is_some()
        || std::env::var_os("SSL_CERT_DIR")
            .is_some_and(|dirs| std::env::split_paths(&dirs).any(|d| !d.as_os_str().is_empty()));
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        crate::log::warn(&format!("tls: reading the trust store: {error}"));
    }
    let mut roots = RootCertStore::empty();
    // Stores hold certificates webpki cannot use (old encodings): skipped.
    let (_added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        crate::log::warn(&format!(
            "tls: {ignored} certificates of the trust store could not be used"
        ));
    }
    if from_env {
        // The variables name the trust store: nothing else is trusted,
        // even when they yield nothing (as OpenSSL, curl and Python do).
        if roots.is_empty() {
            crate::log::warn(
                "tls: SSL_CERT_FILE / SSL_CERT_DIR hold no usable certificate: \
                 no server certificate will validate",
            );
        }
        return (Arc::new(roots), RootsSource::Environment);
    }
    if roots.is_empty() {
        let mut bundled = RootCertStore::empty();
        bundled.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return (Arc::new(bundled), RootsSource::Bundled);
    }
    (Arc::new(roots), RootsSource::System)
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
    server_config(
        certs_from_pem(cert_pem, "certificate")?,
        key_from_pem(key_pem)?,
        alpn,
    )
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

/// TLS for a client connection (Tornado's `ssl_options` and
/// `server_hostname`): the configuration and the name the server's
/// certificate must carry. `tcpclient::connect` takes it in
/// `ConnectOptions::tls`.
#[derive(Clone)]
pub struct TlsConnect {
    /// The rustls client configuration (from `client_config`).
    pub config: Arc<ClientConfig>,
    /// The name sent by SNI and checked against the server's certificate.
    pub server_name: ServerName<'static>,
}

impl TlsConnect {
    /// `options`' configuration, checking the certificate against `host`.
    pub fn new(options: &TlsClientOptions, host: &str) -> Result<TlsConnect> {
        let server_name = server_name(host)?;
        Ok(TlsConnect {
            config: client_config(options)?,
            server_name,
        })
    }
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
