//! A test CA, and a server certificate and a client certificate it signed,
//! generated at test time.

#![allow(dead_code)]

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

pub struct TestPki {
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA certificate as a PEM file (what `ca_file`/`ca_certs` take).
    pub ca_file: PathBuf,
    /// A client certificate the CA signed, and its key, as PEM files
    /// (what `client_cert`/`client_key` take).
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    pub dir: tempfile::TempDir,
}

pub fn test_pki(names: &[&str]) -> TestPki {
    test_pki_with(names, |_| {})
}

/// As [`test_pki`], letting the test change the server certificate's
/// parameters (validity dates, say) before the CA signs it.
pub fn test_pki_with(names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    edit(&mut params);
    let cert = params.signed_by(&key, &ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let (client_cert, client_key) = client_certificate(&ca);
    let client_cert_file = dir.path().join("client.pem");
    let client_key_file = dir.path().join("client.key");
    std::fs::write(&client_cert_file, client_cert).unwrap();
    std::fs::write(&client_key_file, client_key).unwrap();
    TestPki {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_file,
        client_cert_file,
        client_key_file,
        dir,
    }
}

/// A certificate for TLS client authentication signed by `ca`, as
/// (certificate PEM, key PEM).
fn client_certificate(ca: &CertifiedIssuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "tornado_rs test client");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A self-signed certificate for `names`, as (certificate PEM, key PEM):
/// what a server shows when no CA vouches for it.
pub fn self_signed(names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}
