//! `charrnn serve`, run as a user would: the built binary on port 0, spoken to over HTTP with a
//! plain client (ureq). Each request's text must be what `charrnn sample` gives for the same
//! prompt, seed and settings, alone or among others; every bad request gets its status and
//! OpenAI error object, and the server keeps serving.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

/// POST JSON; (status, body as JSON, Retry-After).
fn post(url: &str, body: &str) -> (u16, Value, Option<String>) {
    let r = ureq::post(&format!("{url}/v1/completions"))
        .set("content-type", "application/json")
        .send_string(body);
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    let retry = resp.header("retry-after").map(String::from);
    let text = resp.into_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        retry,
    )
}

fn get(url: &str, path: &str) -> (u16, String) {
    match ureq::get(&format!("{url}{path}")).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

/// A streamed completion: the text of each choice, the finish reasons, the seed, the usage
/// chunk (if any), and whether it ended with [DONE].
struct Streamed {
    texts: Vec<String>,
    finish: Vec<Option<String>>,
    usage: Option<Value>,
    done: bool,
    seed: u64,
    /// Chunks that carried text.
    pieces: usize,
}

fn post_stream(url: &str, body: &Value) -> Streamed {
    let r = ureq::post(&format!("{url}/v1/completions"))
        .set("content-type", "application/json")
        .send_string(&(body.clone().to_string()))
        .unwrap();
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    read_stream(BufReader::new(r.into_reader()))
}

fn read_stream(mut reader: impl BufRead) -> Streamed {
    let mut s = Streamed {
        texts: Vec::new(),
        finish: Vec::new(),
        usage: None,
        done: false,
        seed: 0,
        pieces: 0,
    };
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            if data == "[DONE]" {
                s.done = true;
            } else {
                let v: Value = serde_json::from_str(data).unwrap();
                if v.get("error").is_some() {
                    panic!("error event: {v}");
                }
                assert_eq!(v["object"], "text_completion");
                s.seed = v["seed"].as_u64().unwrap();
                if !v["usage"].is_null() {
                    s.usage = Some(v["usage"].clone());
                }
                let choices = v["choices"].as_array().unwrap();
                if choices.iter().any(|c| c["text"] != "") {
                    s.pieces += 1;
                }
                for c in choices {
                    let i = c["index"].as_u64().unwrap() as usize;
                    if s.texts.len() <= i {
                        s.texts.resize(i + 1, String::new());
                        s.finish.resize(i + 1, None);
                    }
                    s.texts[i].push_str(c["text"].as_str().unwrap());
                    if let Some(f) = c["finish_reason"].as_str() {
                        s.finish[i] = Some(f.to_string());
                    }
                }
            }
        }
        line.clear();
    }
    s
}

/// What `charrnn sample` writes for these settings, without the prime and the final newline.
fn sample(d: &Dir, ck: &str, prime: &str, seed: u64, length: usize, extra: &[&str]) -> String {
    let (seed, length) = (seed.to_string(), length.to_string());
    let mut a = vec![
        "sample",
        ck,
        "--prime",
        prime,
        "--seed",
        &seed,
        "--length",
        &length,
        "--temperature",
        "0.8",
    ];
    a.extend_from_slice(extra);
    let out = d.run(&a).ok().stdout();
    out.strip_prefix(prime)
        .unwrap()
        .strip_suffix('\n')
        .unwrap()
        .to_string()
}

/// A small model of tiny Shakespeare's first 200,000 characters.
fn shakespeare(d: &Dir) -> String {
    d.write(
        "shake.txt",
        shakespeare_chars()[..200_000].iter().collect::<String>(),
    );
    train_small(d, "shake.txt", "shake", "150")
}

#[test]
fn completions_whole_and_streamed_are_what_sample_gives() {
    let d = Dir::new("serve-equal");
    let ck = shakespeare(&d);
    let s = serve(&d, &[&format!("bard={ck}")]);
    let want = sample(&d, &ck, "ROMEO:", 7, 200, &[]);
    let (status, v, _) = post(
        &s.url,
        r#"{"model":"bard","prompt":"ROMEO:","max_tokens":200,"temperature":0.8,"seed":7}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-") && v["created"].as_u64().is_some());
    assert_eq!(v["model"], "bard");
    assert_eq!(v["choices"][0]["text"], want.as_str());
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["choices"][0]["index"], 0);
    assert!(v["choices"][0]["logprobs"].is_null());
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 200, "total_tokens": 206})
    );
    let st = post_stream(
        &s.url,
        &json!({"model":"bard","prompt":"ROMEO:","max_tokens":200,"temperature":0.8,"seed":7,"stream":true,
                "stream_options":{"include_usage":true}}),
    );
    assert!(st.done);
    assert_eq!(st.texts, vec![want]);
    assert_eq!(st.finish, vec![Some("length".to_string())]);
    // The text goes out 16 characters to a chunk (--stream-interval), not one by one: with
    // 20 ms allowed per 16 characters, at least 5 a chunk on average.
    assert!(st.pieces <= 40, "200 characters in {} chunks", st.pieces);
    assert_eq!(st.usage.unwrap()["completion_tokens"], 200);
    // n choices: choice k is seed + k; a stop string ends each on its own and is left out.
    let st = post_stream(
        &s.url,
        &json!({"model":"bard","prompt":"ROMEO:","max_tokens":300,"temperature":0.8,"seed":11,"n":3,"stop":["\n"],"stream":true}),
    );
    for k in 0..3u64 {
        let want = sample(&d, &ck, "ROMEO:", 11 + k, 300, &["--stop", "\n"]);
        assert_eq!(st.texts[k as usize], want, "choice {k}");
        assert_eq!(
            st.finish[k as usize].as_deref(),
            Some(if want.chars().count() < 300 {
                "stop"
            } else {
                "length"
            })
        );
    }
    // Without a seed the server picks one and says which: it reproduces the text.
    let st = post_stream(
        &s.url,
        &json!({"model":"bard","prompt":"ROMEO:","max_tokens":50,"temperature":0.8,"stream":true}),
    );
    assert_eq!(st.texts[0], sample(&d, &ck, "ROMEO:", st.seed, 50, &[]));
    // The other routes.
    let (status, models) = get(&s.url, "/v1/models");
    let m: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(
        (status, m["object"].as_str(), m["data"][0]["id"].as_str()),
        (200, Some("list"), Some("bard"))
    );
    assert_eq!(m["data"][0]["object"], "model");
    assert_eq!(get(&s.url, "/health"), (200, r#"{"status":"ok"}"#.into()));
    let (status, page) = get(&s.url, "/");
    assert!(
        status == 200
            && page.contains("<title>charrnn</title>")
            && page.contains("/v1/completions")
    );
}

/// Client i's request among 32: a completion, streamed for even i, or (every fourth) a chat;
/// its text.
fn ask(url: &str, i: usize, prompts: &[&str]) -> String {
    let stream = i.is_multiple_of(2);
    if i % 4 == 3 {
        let body = json!({"model":"bard","messages":[{"role":"user","content":prompts[i % 8]}],
            "max_tokens":120,"temperature":0.8,"seed":100 + i});
        let r = ureq::post(&format!("{url}/v1/chat/completions"))
            .send_string(&body.to_string())
            .unwrap();
        let v: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        return v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let body = json!({"model":"bard","prompt":prompts[i % 8],"max_tokens":120,"temperature":0.8,"seed":100 + i,"stream": stream});
    if stream {
        post_stream(url, &body).texts[0].clone()
    } else {
        let (_, v, _) = post(url, &body.to_string());
        v["choices"][0]["text"].as_str().unwrap().to_string()
    }
}

#[test]
fn thirty_two_clients_at_once_each_get_their_text_alone() {
    let d = Dir::new("serve-crowd");
    let ck = shakespeare(&d);
    let s = serve(&d, &[&format!("bard={ck}")]);
    let prompts = [
        "ROMEO:",
        "KING",
        "First Citizen:\n",
        "O",
        "What",
        "Thou art",
        "MENENIUS:",
        "And",
    ];
    let solo: Vec<String> = (0..32).map(|i| ask(&s.url, i, &prompts)).collect();
    let url = s.url.clone();
    let together: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (url, prompts) = (url.clone(), &prompts);
                sc.spawn(move || ask(&url, i, prompts))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(together, solo);
    assert_eq!(solo[2], sample(&d, &ck, prompts[2], 102, 120, &[]));
}

/// A metric's value from /metrics (the first line that starts with `name`).
fn metric(url: &str, name: &str) -> f64 {
    let (_, text) = get(url, "/metrics");
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_client_that_leaves_frees_its_slot_at_once() {
    let d = Dir::new("serve-leave");
    let ck = shakespeare(&d);
    let s = serve(&d, &[&format!("bard={ck}"), "--max-tokens", "1000000"]);
    let r = ureq::post(&format!("{}/v1/completions", s.url))
        .set("content-type", "application/json")
        .send_string(
            &(json!({"model":"bard","prompt":"ROMEO:","max_tokens":1000000,"stream":true})
                .to_string()),
        )
        .unwrap();
    let mut reader = BufReader::new(r.into_reader());
    let mut line = String::new();
    for _ in 0..20 {
        reader.read_line(&mut line).unwrap();
    }
    assert_eq!(
        metric(&s.url, "charrnn_active_streams{model=\"bard\"}"),
        1.0
    );
    drop(reader); // the client goes away
    let t0 = Instant::now();
    while metric(&s.url, "charrnn_active_streams{model=\"bard\"}") != 0.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the stream was not dropped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // and the server goes on serving
    let (status, _, _) = post(&s.url, r#"{"model":"bard","prompt":"O","max_tokens":5}"#);
    assert_eq!(status, 200);
}

#[test]
fn every_bad_request_gets_its_status_and_error_object_and_the_server_keeps_serving() {
    let d = Dir::new("serve-bad");
    let ck = shakespeare(&d);
    let s = serve(
        &d,
        &[
            &format!("bard={ck}"),
            "--max-body",
            "2000",
            "--queue",
            "1",
            "--max-streams",
            "1",
            "--max-choices",
            "1",
            "--max-tokens",
            "1000000",
        ],
    );
    for (body, status, param) in [
        ("{not json", 400, None),
        ("[]", 400, None),
        (r#"{"prompt":"x"}"#, 400, Some("model")),
        (
            r#"{"model":"bard","max_tokens":"many"}"#,
            400,
            Some("max_tokens"),
        ),
        (
            r#"{"model":"bard","max_tokens":1e30}"#,
            400,
            Some("max_tokens"),
        ),
        (
            r#"{"model":"bard","max_tokens":-3}"#,
            400,
            Some("max_tokens"),
        ),
        (
            r#"{"model":"bard","temperature":-1}"#,
            400,
            Some("temperature"),
        ),
        (r#"{"model":"bard","seed":-1}"#, 400, Some("seed")),
        (r#"{"model":"bard","n":2}"#, 400, Some("n")),
        (r#"{"model":"bard","prompt":[1,2,3]}"#, 400, Some("prompt")),
        (r#"{"model":"nobody","prompt":"x"}"#, 404, Some("model")),
        (
            r#"{"model":"bard","prompt":"Zürich ☃"}"#,
            400,
            Some("prompt"),
        ),
    ] {
        let (got, v, _) = post(&s.url, body);
        assert_eq!(got, status, "{body}: {v}");
        let e = &v["error"];
        assert!(
            e["message"].is_string() && e["type"].is_string() && e.get("code").is_some(),
            "{v}"
        );
        assert_eq!(e["param"].as_str(), param, "{body}: {v}");
    }
    let (_, v, _) = post(&s.url, r#"{"model":"bard","prompt":"Zürich ☃"}"#);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("'☃'"),
        "{v}"
    );
    let (_, v, _) = post(
        &s.url,
        r#"{"model":"bard","prompt":"Zürich ☃","skip_unknown":true,"max_tokens":3}"#,
    );
    assert_eq!(v["usage"]["prompt_tokens"], 6, "{v}"); // "Zrich " kept
    let (got, v, _) = post(
        &s.url,
        &format!(r#"{{"model":"bard","prompt":"{}"}}"#, "a".repeat(3000)),
    );
    assert_eq!(got, 413, "{v}");
    assert_eq!(v["error"]["code"], "request_too_large");
    // Queue full: one stream runs, one request waits, the next is turned away with 429.
    let long = json!({"model":"bard","prompt":"O","max_tokens":1000000,"stream":true});
    let running = ureq::post(&format!("{}/v1/completions", s.url))
        .set("content-type", "application/json")
        .send_string(&(long.clone().to_string()))
        .unwrap_or_else(|e| match e {
            ureq::Error::Status(_, r) => panic!("{}", r.into_string().unwrap()),
            e => panic!("{e}"),
        });
    let mut running = BufReader::new(running.into_reader());
    let mut first = String::new();
    running.read_line(&mut first).unwrap();
    assert!(first.starts_with("data: "), "{first}");
    let url = s.url.clone();
    let waiting = std::thread::spawn(move || {
        ureq::post(&format!("{url}/v1/completions"))
            .set("content-type", "application/json")
            .send_string(&(json!({"model":"bard","prompt":"O","max_tokens":3}).to_string()))
            .map(|r| r.status())
            .map_err(|e| e.to_string())
    });
    let t0 = Instant::now();
    while metric(&s.url, "charrnn_queue_length{model=\"bard\"}") < 1.0 {
        assert!(t0.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = get(&s.url, "/metrics").1;
    let (got, v, retry) = post(&s.url, r#"{"model":"bard","prompt":"O","max_tokens":3}"#);
    assert_eq!((got, retry.as_deref()), (429, Some("1")), "{v}\n{before}");
    assert_eq!(v["error"]["code"], "queue_full");
    drop(running); // its slot frees; the waiting request runs
    assert_eq!(waiting.join().unwrap(), Ok(200));
    let (got, _, _) = post(&s.url, r#"{"model":"bard","prompt":"O","max_tokens":3}"#);
    assert_eq!(got, 200);
    // /metrics counted what happened.
    assert!(metric(&s.url, "charrnn_requests_total{status=\"400\"}") >= 11.0);
    assert_eq!(
        metric(&s.url, "charrnn_requests_total{status=\"404\"}"),
        1.0
    );
    assert_eq!(
        metric(&s.url, "charrnn_requests_total{status=\"413\"}"),
        1.0
    );
    assert_eq!(
        metric(&s.url, "charrnn_requests_total{status=\"429\"}"),
        1.0
    );
    assert!(metric(&s.url, "charrnn_generated_characters_total") >= 9.0);
    let (_, text) = get(&s.url, "/metrics");
    assert!(
        text.contains("charrnn_step_seconds_bucket")
            && text.contains("charrnn_time_to_first_character_seconds_count")
    );
    let (status, body) = get(&s.url, "/nowhere");
    assert!(status == 404 && body.contains("\"error\""), "{body}");
}

#[test]
fn sigterm_ends_open_streams_cleanly_and_exits_0() {
    let d = Dir::new("serve-term");
    let ck = shakespeare(&d);
    let mut s = serve(
        &d,
        &[
            &format!("bard={ck}"),
            "--shutdown-grace",
            "0.5",
            "--max-tokens",
            "1000000",
        ],
    );
    let r = ureq::post(&format!("{}/v1/completions", s.url))
        .set("content-type", "application/json")
        .send_string(
            &(json!({"model":"bard","prompt":"O","max_tokens":1000000,"stream":true}).to_string()),
        )
        .unwrap();
    let mut reader = BufReader::new(r.into_reader());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert!(
        rest.contains("\"shutting_down\"") && rest.trim_end().ends_with("data: [DONE]"),
        "{rest}"
    );
    let code = s.child.wait().unwrap().code();
    assert_eq!(code, Some(0));
}
