//! The pair checks and the client subject, on certificates made here (rcgen).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use super::{pair, peer, Tls, TlsError};
use crate::config::cert_subject::CertSubject;
use crate::config::TlsSettings;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA");
    Ca { cert, key }
}

/// A certificate from `ca` and its key, as PEM.
fn issue(ca: &Ca, cn: &str, names: &[&str]) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example Office");
    let cert = params.signed_by(&key, &ca.cert, &ca.key).expect("issued");
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn files(dir: &Path, cert: &str, key: &str) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert).expect("write cert");
    std::fs::write(&k, key).expect("write key");
    (c, k)
}

fn load(cert: &Path, key: &Path) -> Result<pair::Pair, TlsError> {
    pair::load(cert, key, &rustls::crypto::ring::default_provider())
}

#[test]
fn a_good_pair_reports_its_names_and_issuer() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = ca("Office CA");
    let (cert, key, _) = issue(&ca, "relay", &["relay.example.com", "192.0.2.7", "::1"]);
    let (c, k) = files(dir.path(), &format!("{cert}{}", ca.cert.pem()), &key);
    let info = load(&c, &k).expect("loads").info;
    assert_eq!(info.subject, "CN=relay, O=Example Office");
    assert_eq!(info.issuer, "CN=Office CA");
    assert_eq!(info.names, ["relay.example.com", "192.0.2.7", "::1"]);
    assert_eq!(info.chain_len, 2);
    assert!(info.not_after > info.not_before);
}

/// A certificate file's text, a key file's text, and the error expected of the pair.
type Case<'a> = (&'a str, &'a str, fn(&TlsError) -> bool);

#[test]
fn each_broken_pair_says_what_is_wrong() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = ca("Office CA");
    let (cert, key, _) = issue(&ca, "relay", &["relay.example.com"]);
    let (_, other_key, _) = issue(&ca, "other", &["other.example.com"]);
    let (no_names, no_names_key, _) = issue(&ca, "relay", &[]);
    let cases: [Case; 6] = [
        (&cert, &other_key, |e| {
            matches!(e, TlsError::KeyMismatch { .. })
        }),
        ("", &key, |e| matches!(e, TlsError::NoCertificate(_))),
        (&cert, "", |e| matches!(e, TlsError::NoKey(_))),
        (&key, &key, |e| matches!(e, TlsError::NoCertificate(_))),
        (&no_names, &no_names_key, |e| {
            matches!(e, TlsError::NoNames(_))
        }),
        (
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            &key,
            |e| matches!(e, TlsError::Pem { .. }),
        ),
    ];
    for (i, (c, k, expected)) in cases.iter().enumerate() {
        let (cp, kp) = files(dir.path(), c, k);
        match load(&cp, &kp) {
            Err(e) => assert!(expected(&e), "case {i}: unexpected error {e}"),
            Ok(_) => panic!("case {i}: a broken pair loaded"),
        }
    }
    let missing = load(&dir.path().join("none.pem"), &dir.path().join("key.pem"));
    assert!(matches!(missing, Err(TlsError::Read { .. })));
}

#[test]
fn a_chain_out_of_order_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = ca("Office CA");
    let unrelated = ca_unrelated();
    let (cert, key, _) = issue(&ca, "relay", &["relay.example.com"]);
    let (c, k) = files(dir.path(), &format!("{cert}{}", unrelated.cert.pem()), &key);
    match load(&c, &k) {
        Err(TlsError::ChainOrder {
            n, issuer, next, ..
        }) => {
            assert_eq!(
                (n, issuer.as_str(), next.as_str()),
                (1, "CN=Office CA", "CN=Other CA")
            );
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("an out-of-order chain loaded"),
    }
}

fn ca_unrelated() -> Ca {
    ca("Other CA")
}

#[test]
fn a_failed_reload_keeps_the_pair_in_use_and_says_why() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = ca("Office CA");
    let (cert, key, _) = issue(&ca, "relay", &["relay.example.com"]);
    let (c, k) = files(dir.path(), &cert, &key);
    let settings = TlsSettings {
        cert: c.clone(),
        key: k,
        client_ca: None,
    };
    let tls = Tls::load(&settings).expect("loads");
    let before = tls.info();
    std::fs::write(&c, "garbage").expect("break the cert");
    assert!(tls.reload().is_err());
    assert_eq!(tls.info(), before);
    assert!(tls
        .refused()
        .is_some_and(|(_, why)| why.contains("no PEM certificate")));
    let (cert2, key2, _) = issue(&ca, "relay2", &["relay.example.com"]);
    files(dir.path(), &cert2, &key2);
    let after = tls.reload().expect("the fixed pair loads");
    assert_eq!(after.subject, "CN=relay2, O=Example Office");
    assert!(tls.refused().is_none());
}

#[test]
fn a_client_subject_is_read_from_its_certificate_and_matched_by_attributes() {
    let ca = ca("Clients CA");
    let (_, _, der) = issue(&ca, "crm.example.com", &[]);
    let subject = peer::subject_of(&der).expect("parses");
    assert_eq!(subject.to_string(), "CN=crm.example.com, O=Example Office");
    let wanted = CertSubject::parse("CN=crm.example.com").expect("valid");
    assert!(wanted.matches(&subject.0));
    let both = CertSubject::parse("cn=crm.example.com, O=Example Office").expect("valid");
    assert!(both.matches(&subject.0));
    let other = CertSubject::parse("CN=shop.example.com").expect("valid");
    assert!(!other.matches(&subject.0));
    assert!(peer::subject_of(b"not a certificate").is_none());
}
