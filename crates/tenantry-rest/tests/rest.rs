//! The REST client against a peer that goes away: a refused connection and
//! an answer cut off mid-body are errors naming their cause — never an empty
//! answer, which a list would read as "nothing there".

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::time::Duration;
use tenantry_rest::{RestClient, RestError, Retry, Scheme};
use tenantry_testenv::fixed_answer::{fixed_answer, ok_head};

fn client(base: &str) -> RestClient {
    let retry = Retry { attempts: 2, first_backoff: Duration::from_millis(10), max_wait: Duration::from_secs(1) };
    let token = tenantry_secret::secret(None, &["TOKEN"], "token", "token", &|_| Some("t0ken-never-printed".into()))
        .expect("token");
    RestClient::new(base, token, Scheme::Token, Duration::from_secs(5)).expect("client").with_retry(retry)
}

#[tokio::test]
async fn an_answer_cut_off_mid_body_is_unreachable_not_an_empty_list() {
    // Promises 1,000 bytes of a list, sends 9, hangs up.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let base = fixed_answer(head.to_string(), "[{\"id\":1}").unwrap();
    let error = client(&base).get("/users?page=1").await.expect_err("a cut-off body is an error");
    assert!(matches!(error, RestError::Unreachable { .. }), "{error}");
    let text = error.to_string();
    assert!(text.starts_with("GET /users?page=1: "), "{text}");
    assert!(!text.contains("t0ken"), "the client's token stays out of errors: {text}");
}

#[tokio::test]
async fn broken_json_is_described_by_its_size_not_quoted() {
    // A garbled answer to a token request: the new token must not reach the error.
    let body = r#"{"id":7,"name":"workstation","sha1":"9f2c6a1e0b7d4c3a"#;
    let base = fixed_answer(ok_head("application/json", body), body).unwrap();
    let error = client(&base).get("/users/alice/tokens").await.expect_err("broken JSON");
    assert!(matches!(error, RestError::Decode { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains(&format!("{} bytes of broken JSON", body.len())) && !text.contains("9f2c6a1e"), "{text}");
}

#[tokio::test]
async fn a_whole_empty_answer_is_still_an_empty_body() {
    let base = fixed_answer(ok_head("application/json", ""), "").unwrap();
    let reply = client(&base).get("/users?page=1").await.expect("an empty answer");
    assert!(reply.body.is_null());
    assert!(reply.into_items("/users?page=1").expect("null is an empty list").is_empty());
}

#[tokio::test]
async fn a_refused_connection_names_the_refusal() {
    // Bind then drop: nothing listens on the port any more.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let error = client(&format!("http://127.0.0.1:{port}")).get("/version").await.expect_err("refused");
    assert!(matches!(error, RestError::Unreachable { .. }), "{error}");
    assert!(error.to_string().to_lowercase().contains("connection refused"), "the cause is named: {error}");
}
