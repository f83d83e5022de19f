//! A peer that answers every request with the same bytes and hangs up: a
//! proxy's maintenance page, an answer of the wrong shape, a body cut off
//! after its headers promised more. Tests of how a client reads what it
//! should not trust use it instead of a real peer that cannot be made to
//! misbehave.

use std::io::{Read, Write};
use std::net::TcpListener;

/// Serve `head` (status line and headers, ending in the blank line) then
/// `body` to each of up to 16 connections on 127.0.0.1; returns
/// `http://127.0.0.1:<port>`. [`json_ok`] builds a whole 200 answer.
pub fn fixed_answer(head: String, body: &'static str) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            // One read takes the whole small request these clients send.
            let _ = stream.read(&mut [0u8; 8192]);
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    Ok(base)
}

/// The head of a whole `200 OK` answer of `content_type` with `body`.
pub fn ok_head(content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
}

/// A peer answering every request `200 OK` with the JSON `body`.
pub fn json_ok(body: &'static str) -> std::io::Result<String> {
    fixed_answer(ok_head("application/json", body), body)
}
