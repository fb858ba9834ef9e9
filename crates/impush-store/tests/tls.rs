//! `rediss://` means TLS or nothing: the first bytes impush sends are a TLS handshake, never
//! a plain RESP command, so a server without TLS cannot be talked to in clear.

use std::time::Duration;

use impush_store::Store;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// The record type that opens every TLS handshake (a ClientHello); RESP starts with `*`.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[tokio::test]
async fn a_rediss_url_speaks_tls_first_and_fails_against_a_plain_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let first_bytes = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 5];
        socket.read_exact(&mut buf).await.unwrap();
        // Dropping the socket is what a plain server's protocol error amounts to.
        buf
    });
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        Store::connect(&format!("rediss://{addr}"), "impush-test-tls"),
    )
    .await;
    let first_bytes = first_bytes.await.unwrap();
    assert_eq!(
        first_bytes[0], TLS_HANDSHAKE_RECORD,
        "the client opened with a TLS ClientHello, not {first_bytes:?}"
    );
    assert!(
        !matches!(result, Ok(Ok(_))),
        "rediss:// connected without a TLS server"
    );
}
