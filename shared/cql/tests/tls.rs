//! The CQL session speaks TLS when `[store.cql.tls]` is set, and only to a node whose
//! certificate chains to the trusted CA (and names the node's IP, unless told not to).
//! No CQL server runs here: the node is a TLS endpoint that records whether the
//! driver's handshake completed. The CQL exchange after it fails, which is expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use imgfeat_cql::ConsistencyLevel;
use imgfeat_cql::session::{self, ConnectOptions};
use imgfeat_cql::tls::CqlTls;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem_file(&self, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.issuer.pem()).unwrap();
        path
    }

    /// A node certificate naming `names` (IP strings become IP SANs).
    fn node(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            vec![cert.der().clone(), self.issuer.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// A TLS endpoint on 127.0.0.1: reports the outcome of every handshake attempted on it.
async fn node(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> (String, mpsc::UnboundedReceiver<Result<(), String>>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let outcome = acceptor.accept(stream).await.map(drop);
                let _ = tx.send(outcome.map_err(|e| e.to_string()));
            });
        }
    });
    (addr, rx)
}

/// Opens a session (which fails: no CQL behind the TLS) and returns the first
/// handshake outcome the node saw.
async fn handshake(
    addr: &str,
    tls: Option<&CqlTls>,
    seen: &mut mpsc::UnboundedReceiver<Result<(), String>>,
) -> Result<(), String> {
    let nodes = vec![addr.to_string()];
    let opts = ConnectOptions {
        nodes: &nodes,
        local_dc: None,
        username: None,
        password: None,
        tls,
        consistency: ConsistencyLevel::default(),
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(3),
    };
    let session = session::open(&opts).await;
    assert!(session.is_err(), "no CQL server here, yet a session opened");
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the driver never reached the node")
        .expect("node task alive")
}

#[tokio::test]
async fn the_session_completes_a_handshake_only_with_a_trusted_node() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (chain, key) = ca.node(&["127.0.0.1"]);
    let (addr, mut seen) = node(chain, key).await;

    let trusted = CqlTls {
        ca_file: Some(ca.pem_file(dir.path(), "ca.pem")),
        verify_hostname: true,
    };
    let outcome = handshake(&addr, Some(&trusted), &mut seen).await;
    assert_eq!(outcome, Ok(()), "a trusted node's handshake must complete");

    let stranger = Ca::new();
    let untrusted = CqlTls {
        ca_file: Some(stranger.pem_file(dir.path(), "other-ca.pem")),
        verify_hostname: true,
    };
    let outcome = handshake(&addr, Some(&untrusted), &mut seen).await;
    assert!(outcome.is_err(), "a node signed by another CA was accepted");

    // Without `[store.cql.tls]` the driver speaks plain CQL: no TLS handshake.
    let outcome = handshake(&addr, None, &mut seen).await;
    assert!(outcome.is_err(), "plain CQL looked like a TLS handshake");
}

#[tokio::test]
async fn a_node_certificate_without_its_ip_passes_only_when_names_are_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (chain, key) = ca.node(&["cassandra.internal"]);
    let (addr, mut seen) = node(chain, key).await;
    let ca_file = Some(ca.pem_file(dir.path(), "ca.pem"));

    let strict = CqlTls {
        ca_file: ca_file.clone(),
        verify_hostname: true,
    };
    let outcome = handshake(&addr, Some(&strict), &mut seen).await;
    assert!(
        outcome.is_err(),
        "a certificate for another name was accepted"
    );

    let chain_only = CqlTls {
        ca_file,
        verify_hostname: false,
    };
    let outcome = handshake(&addr, Some(&chain_only), &mut seen).await;
    assert_eq!(
        outcome,
        Ok(()),
        "the chain is trusted; only the name differs"
    );
}

#[test]
fn a_bad_ca_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for (path, want) in [
        (empty, "holds no PEM certificate"),
        (dir.path().join("missing.pem"), "missing.pem"),
    ] {
        let tls = CqlTls {
            ca_file: Some(path),
            verify_hostname: true,
        };
        let err = imgfeat_cql::tls::client_config(&tls)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
}

/// A CA file that can't be read is a configuration error at start-up (`Invalid`), not
/// an outage (`Unavailable`) that callers would retry forever.
#[tokio::test]
async fn a_store_with_a_bad_ca_file_refuses_to_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = imgfeat_cql::CqlConfig {
        // Nothing listens here: the TLS settings must fail before any connection.
        nodes: vec!["127.0.0.1:1".to_string()],
        tls: Some(CqlTls {
            ca_file: Some(dir.path().join("missing.pem")),
            verify_hostname: true,
        }),
        ..imgfeat_cql::CqlConfig::default()
    };
    match imgfeat_cql::CqlStore::connect(&cfg).await {
        Err(imgfeat_core::ports::StoreError::Invalid(reason)) => {
            assert!(reason.contains("missing.pem"), "{reason}")
        }
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("a store opened with a missing CA file"),
    }
}
