#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `amqps://` end to end: a TLS endpoint with a private CA in front of the real broker
//! (the broker itself listens in plain AMQP here), a job published and consumed through
//! it; the same URL without the CA, or with another CA, is refused.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{jobs, next_within, test_config};
use imgfeat_amqp::{
    AmqpConfig, AmqpConnection, AmqpConsumer, AmqpPublisher, WorkQueue, delete_queues_blocking,
};
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::JobPublisher;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Terminates TLS for `localhost` with a certificate of `ca` and relays the bytes to
/// the plain broker at `broker` (host:port).
async fn tls_front(ca: &CertifiedIssuer<'static, KeyPair>, broker: String) -> u16 {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, broker) = (acceptor.clone(), broker.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(&broker).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// host:port of the plain broker the tests use.
fn broker_addr(config: &AmqpConfig) -> String {
    let uri: imgfeat_amqp::lapin::uri::AMQPUri = config.url.parse().unwrap();
    format!("{}:{}", uri.authority.host, uri.authority.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_travel_over_amqps_to_a_broker_with_a_private_ca() {
    let plain = test_config("tls");
    let ca = new_ca();
    let port = tls_front(&ca, broker_addr(&plain)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let vhost = plain.url.rsplit('/').next().unwrap().to_string();
    let secure = AmqpConfig {
        url: format!("amqps://guest:guest@localhost:{port}/{vhost}"),
        ca_file: Some(ca_file),
        ..plain.clone()
    };
    secure.validate().unwrap();

    let conn = AmqpConnection::connect(secure.clone()).await.unwrap();
    AmqpPublisher::new(&conn, WorkQueue::Detect)
        .publish(&jobs(41..=42))
        .await
        .unwrap();
    let mut consumer = AmqpConsumer::<DetectJob>::new(&conn, &[WorkQueue::Detect]);
    for want in 41..=42 {
        let d = next_within(&mut consumer, Duration::from_secs(20)).await;
        assert_eq!(d.job.image_id.0, want);
        d.handle.ack().await.unwrap();
    }
    consumer.close().await;
    drop(conn);

    // The system's roots do not know the private CA, nor does another CA.
    let other = new_ca();
    let other_file = dir.path().join("other.pem");
    std::fs::write(&other_file, other.pem()).unwrap();
    for ca_file in [None, Some(other_file)] {
        let refused = AmqpConnection::connect(AmqpConfig {
            ca_file: ca_file.clone(),
            reconnect_max_ms: 200,
            ..secure.clone()
        })
        .await;
        assert!(
            refused.is_err(),
            "connected over TLS with ca_file {ca_file:?}"
        );
    }
    tokio::task::spawn_blocking(move || delete_queues_blocking(plain))
        .await
        .unwrap();
}

#[test]
fn a_ca_file_without_certificates_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let config = AmqpConfig {
        ca_file: Some(path),
        ..AmqpConfig::default()
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("amqp.ca_file"), "{err}");
}
