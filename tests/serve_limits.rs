//! `charrnn serve` against clients that misbehave, spoken to with raw sockets (std::net): half a
//! header, a body that stalls, a body declared too large, streams nobody reads (memory, the
//! other clients, the slot freed at `--timeout`), shutdown with such clients connected; and
//! the small manners: JSON errors on 404 and 405, CORS off by default and on for `--cors`.
//! The model is the small fixture checkpoint: no training, so each test takes seconds.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The fixture checkpoint, served as `fox`.
fn model() -> String {
    format!(
        "fox={}",
        fixture("format-v1-lstm-2x16.safetensors").display()
    )
}

/// host:port of a server's URL.
fn addr(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// Sends `bytes` on a new connection (and nothing more).
fn connect(s: &Server, bytes: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(addr(s)).unwrap();
    c.write_all(bytes).unwrap();
    c
}

/// Reads until the server closes the connection, or `limit` passes (then panics): what it
/// sent, and when it closed.
fn read_until_closed(c: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let t0 = Instant::now();
    c.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the connection was still open after {:?} ({e}); it sent: {}",
                t0.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
}

/// A whole request on its own connection: (status, headers in lower case, body).
fn request(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(&format!("{h}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut c = connect(s, head.as_bytes());
    let (got, _) = read_until_closed(&mut c, Duration::from_secs(10));
    let (head, body) = got.split_once("\r\n\r\n").unwrap_or((&got, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

fn error_code(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert!(
        v["error"]["message"].is_string() && v["error"]["type"].is_string(),
        "{v}"
    );
    v["error"]["code"].clone()
}

/// A metric's value (the first line that starts with `name`).
fn metric(s: &Server, name: &str) -> f64 {
    let text = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Polls until `ok` holds (panics after `limit`).
fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn post(s: &Server, body: &Value) -> Value {
    let r = ureq::post(&format!("{}/v1/completions", s.url))
        .set("content-type", "application/json")
        .send_string(&body.to_string())
        .unwrap();
    serde_json::from_str(&r.into_string().unwrap()).unwrap()
}

#[test]
fn a_half_header_a_stalled_body_and_a_body_declared_too_large_are_refused_in_time() {
    let d = Dir::new("limits-read");
    let s = serve(&d, &[&model(), "--read-timeout", "1", "--max-body", "1000"]);
    // Half a header: hyper's header timeout closes the connection.
    let mut half = connect(
        &s,
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Ty",
    );
    let (_, took) = read_until_closed(&mut half, Duration::from_secs(5));
    assert!(
        took >= Duration::from_millis(800),
        "closed before the timeout: {took:?}"
    );
    // Headers and part of the body: 408 with the error object, and the connection closes.
    let mut stalled = connect(
        &s,
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\":",
    );
    let (got, took) = read_until_closed(&mut stalled, Duration::from_secs(5));
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    let body = got.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(error_code(body), "request_timeout");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    // A declared length over --max-body: 413 at once, without a byte of the body sent.
    let t0 = Instant::now();
    let mut big = connect(
        &s,
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n",
    );
    let (got, _) = read_until_closed(&mut big, Duration::from_secs(5));
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(
        t0.elapsed() < Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        error_code(got.split_once("\r\n\r\n").unwrap().1),
        "request_too_large"
    );
    // And the server goes on serving.
    let v = post(&s, &json!({"model":"fox","prompt":"the ","max_tokens":5}));
    assert_eq!(v["usage"]["completion_tokens"], 5);
}

/// The server's resident memory in MB (Linux), or None elsewhere.
fn rss_mb(s: &Server) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

#[test]
fn clients_that_do_not_read_pause_their_own_streams_until_the_timeout_frees_their_slots() {
    let d = Dir::new("limits-slow");
    let s = serve(&d, &[&model(), "--max-streams", "160", "--timeout", "8"]);
    let quiet = json!({"model":"fox","prompt":"the ","max_tokens":3000,"seed":5,"temperature":0.9});
    let alone = post(&s, &quiet)["choices"][0]["text"].clone();
    let before = rss_mb(&s);
    // Eight clients each ask for 16 × 8192 characters streamed, and never read.
    let body =
        json!({"model":"fox","prompt":"the ","n":16,"max_tokens":8192,"stream":true}).to_string();
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let t0 = Instant::now();
    let sleepers: Vec<TcpStream> = (0..8).map(|_| connect(&s, head.as_bytes())).collect();
    let paused = "charrnn_paused_streams{model=\"fox\"}";
    wait_for("8 × 16 streams paused", Duration::from_secs(6), || {
        metric(&s, paused) == 128.0
    });
    // Paused: nothing more is generated for them.
    let generated = metric(&s, "charrnn_generated_characters_total");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(metric(&s, "charrnn_generated_characters_total"), generated);
    assert!(
        generated < (8 * 16 * 8192) as f64 / 2.0,
        "{generated} characters generated"
    );
    if let (Some(before), Some(after)) = (before, rss_mb(&s)) {
        assert!(
            after - before < 40.0,
            "RSS {before:.1} MB before, {after:.1} MB with 8 sleepers"
        );
        eprintln!("RSS {before:.1} MB before, {after:.1} MB with 8 clients that do not read");
    }
    // Another client is served meanwhile, its text what it was alone.
    let t1 = Instant::now();
    assert_eq!(post(&s, &quiet)["choices"][0]["text"], alone);
    assert!(t1.elapsed() < Duration::from_secs(3), "{:?}", t1.elapsed());
    assert!(
        t0.elapsed() < Duration::from_secs(7),
        "too slow to test the timeout"
    );
    // At --timeout their slots are free, though their connections stay open.
    let active = "charrnn_active_streams{model=\"fox\"}";
    wait_for("the sleepers' slots freed", Duration::from_secs(12), || {
        metric(&s, active) == 0.0 && metric(&s, paused) == 0.0
    });
    assert!(t0.elapsed() >= Duration::from_secs(7), "{:?}", t0.elapsed());
    drop(sleepers);
}

#[test]
fn shutdown_ends_within_the_grace_period_whatever_clients_do() {
    let d = Dir::new("limits-term");
    let mut s = serve(&d, &[&model(), "--shutdown-grace", "1", "--timeout", "600"]);
    let _half = connect(&s, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
    let _stalled = connect(
        &s,
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    );
    let body =
        json!({"model":"fox","prompt":"the ","n":16,"max_tokens":8192,"stream":true}).to_string();
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _sleepers: Vec<TcpStream> = (0..2).map(|_| connect(&s, head.as_bytes())).collect();
    let paused = "charrnn_paused_streams{model=\"fox\"}";
    wait_for("2 × 16 streams paused", Duration::from_secs(6), || {
        metric(&s, paused) == 32.0
    });
    let t0 = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        // 1 s of grace and half a second for the last events; the rest is a loaded machine's.
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "still running after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn unknown_routes_and_methods_get_the_error_object() {
    let d = Dir::new("limits-routes");
    let s = serve(&d, &[&model()]);
    let (status, _, body) = request(&s, "GET", "/nowhere", &[], "");
    assert_eq!((status, error_code(&body)), (404, json!("not_found")));
    let (status, head, body) = request(&s, "GET", "/v1/completions", &[], "");
    assert_eq!(
        (status, error_code(&body)),
        (405, json!("method_not_allowed"))
    );
    assert!(
        head.contains("content-type: application/json") && head.contains("allow: post"),
        "{head}"
    );
    let (status, head, body) = request(&s, "DELETE", "/v1/models", &[], "");
    assert_eq!(
        (status, error_code(&body)),
        (405, json!("method_not_allowed"))
    );
    assert!(head.contains("allow: get,head"), "{head}");
}

/// A browser's preflight for a POST from `origin`, and the POST itself: their headers.
fn preflight_and_post(s: &Server, origin: &str) -> (u16, String, String) {
    let o = format!("Origin: {origin}");
    let (status, pre, _) = request(
        s,
        "OPTIONS",
        "/v1/completions",
        &[
            &o,
            "Access-Control-Request-Method: POST",
            "Access-Control-Request-Headers: content-type, authorization",
        ],
        "",
    );
    let body = r#"{"model":"fox","prompt":"the ","max_tokens":2}"#;
    let (ok, post, _) = request(
        s,
        "POST",
        "/v1/completions",
        &[&o, "Content-Type: application/json"],
        body,
    );
    assert_eq!(ok, 200);
    (status, pre, post)
}

#[test]
fn cors_is_off_by_default_and_on_for_the_origins_given() {
    let d = Dir::new("limits-cors");
    let off = serve(&d, &[&model()]);
    let (_, pre, post) = preflight_and_post(&off, "http://localhost:3000");
    assert!(
        !pre.contains("access-control-allow-origin")
            && !post.contains("access-control-allow-origin"),
        "{pre}\n{post}"
    );
    let on = serve(&d, &[&model(), "--cors", "http://localhost:3000"]);
    let (status, pre, post) = preflight_and_post(&on, "http://localhost:3000");
    assert_eq!(status, 200, "{pre}");
    assert!(
        pre.contains("access-control-allow-origin: http://localhost:3000"),
        "{pre}"
    );
    assert!(
        pre.contains("access-control-allow-methods: get,post"),
        "{pre}"
    );
    assert!(pre.contains("access-control-allow-headers: *"), "{pre}");
    assert!(
        post.contains("access-control-allow-origin: http://localhost:3000"),
        "{post}"
    );
    let (_, pre, post) = preflight_and_post(&on, "http://elsewhere.example");
    assert!(
        !pre.contains("access-control-allow-origin")
            && !post.contains("access-control-allow-origin"),
        "{pre}\n{post}"
    );
    let any = serve(&d, &[&model(), "--cors", "*"]);
    let (_, _, post) = preflight_and_post(&any, "http://elsewhere.example");
    assert!(post.contains("access-control-allow-origin: *"), "{post}");
    d.run(&["serve", &model(), "--cors", "localhost:3000/"])
        .bad("--cors localhost:3000/");
}
