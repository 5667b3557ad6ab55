//! A test CA and a server certificate it signed, generated at test time.

#![allow(dead_code)]

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

pub struct TestPki {
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA certificate as a PEM file (what `ca_file`/`ca_certs` take).
    pub ca_file: PathBuf,
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
    TestPki {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_file,
        dir,
    }
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
