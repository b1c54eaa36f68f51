//! The HTTP source over TLS against a real HTTPS server in this process: a private CA
//! made here with rcgen signs the server's certificate, and the source trusts that CA
//! only through its `ca_file` setting.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{ImageSource, SourceError};
use imgfeat_sources::{HttpSource, HttpSourceConfig, HttpSourceError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A CA able to sign server certificates, and its certificate as PEM.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn new_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// An axum listener that does the TLS handshake of each connection it accepts; a
/// client refusing the certificate fails only its own handshake.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn photo() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos/darknet_dog.jpg");
    std::fs::read(path).unwrap()
}

/// Serves `/1.jpg` (a real photo) over HTTPS with a certificate for 127.0.0.1 that
/// `ca` signs; returns the source's URL template.
async fn serve_https(ca: &Ca, body: Vec<u8>) -> String {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let app = Router::new().route("/1.jpg", get(move || async move { body }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("https://{addr}/{{id}}.jpg")
}

fn write_pem(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

fn source(url_template: String, ca_file: Option<PathBuf>) -> Result<HttpSource, HttpSourceError> {
    HttpSource::new(
        HttpSourceConfig {
            url_template,
            ca_file,
            ..HttpSourceConfig::default()
        },
        10 * 1024 * 1024,
    )
}

#[tokio::test]
async fn https_source_fetches_from_a_server_its_ca_file_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca("imgfeat test CA");
    let image = photo();
    let template = serve_https(&ca, image.clone()).await;
    let src = source(template, Some(write_pem(dir.path(), "ca.pem", &ca.pem))).unwrap();
    let got = src.fetch(ImageId(1)).await.unwrap();
    assert_eq!(got.len(), image.len());
    assert!(got == image, "the bytes differ from the photo served");
}

#[tokio::test]
async fn https_source_refuses_a_certificate_no_trusted_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = new_ca("server's CA");
    let other_ca = new_ca("another CA");
    let template = serve_https(&server_ca, photo()).await;

    // Neither the system's roots nor a CA file of another CA vouch for the server.
    let other = write_pem(dir.path(), "other.pem", &other_ca.pem);
    for ca_file in [None, Some(other)] {
        let src = source(template.clone(), ca_file.clone()).unwrap();
        let err = src.fetch(ImageId(1)).await.unwrap_err();
        let SourceError::Unavailable(message) = &err else {
            panic!("expected the source to be unavailable, got {err}");
        };
        assert!(
            message.contains("certificate") && message.contains("UnknownIssuer"),
            "the error should say the certificate is not trusted ({ca_file:?}): {message}"
        );
    }
}

#[test]
fn ca_file_mistakes_are_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write_pem(dir.path(), "ca.pem", &new_ca("a CA").pem);
    let empty = write_pem(dir.path(), "empty.pem", "not a certificate\n");
    let https = "https://images.internal/{id}.jpg".to_string();
    assert!(matches!(
        source("http://images.internal/{id}.jpg".into(), Some(ca)),
        Err(HttpSourceError::CaWithoutTls(_))
    ));
    assert!(matches!(
        source(https.clone(), Some(empty)),
        Err(HttpSourceError::CaFile { .. })
    ));
    assert!(matches!(
        source(https.clone(), Some(dir.path().join("missing.pem"))),
        Err(HttpSourceError::CaFile { .. })
    ));
    assert!(matches!(
        source("ftp://images.internal/{id}.jpg".into(), None),
        Err(HttpSourceError::Scheme(_))
    ));
    assert!(source(https, None).is_ok());
}
