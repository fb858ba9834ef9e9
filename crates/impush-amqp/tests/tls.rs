//! `amqps://` means TLS or nothing: pointed at a plain AMQP port, the connection fails with
//! a TLS error instead of quietly speaking plain AMQP (and sending the password in clear).

use std::time::Duration;

const PLAIN_AMQP_PORT: &str = "127.0.0.1:5672";

#[tokio::test]
async fn an_amqps_url_to_a_plain_port_fails_with_a_tls_error_instead_of_downgrading() {
    let url = format!("amqps://guest:guest@{PLAIN_AMQP_PORT}/%2f");
    let result = tokio::time::timeout(Duration::from_secs(20), impush_amqp::connect(&url))
        .await
        .expect("a TLS handshake with a plain AMQP port ends quickly");
    let err = match result {
        Ok(_) => panic!("amqps:// connected to a port without TLS"),
        Err(err) => err.to_string(),
    };
    eprintln!("amqps:// to a plain port: {err}");
    let lower = err.to_lowercase();
    assert!(
        [
            "tls",
            "ssl",
            "handshake",
            "certificate",
            "invalidcontenttype",
            "corrupt message"
        ]
        .iter()
        .any(|word| lower.contains(word)),
        "the error says the TLS layer failed: {err}"
    );
}
