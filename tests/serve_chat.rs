//! `charrnn serve`'s chat completions and log-probabilities, over HTTP (ureq) on the small
//! fixture checkpoint: a chat is the completion of its templated prompt up to the turn
//! marker, whole or streamed in OpenAI's chunk shapes; an echoed prompt's log-probabilities
//! are what `charrnn eval` measures on it; generated characters' log-probabilities follow the
//! text (stop strings, streaming) and are the model's own distribution (the greedy pick is the
//! most likely).

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};

/// The fixture checkpoint (a lowercase vocabulary with space, '.' and newline), as `fox`.
fn model() -> String {
    format!(
        "fox={}",
        fixture("format-v1-lstm-2x16.safetensors").display()
    )
}

fn post(s: &Server, route: &str, body: &Value) -> (u16, Value) {
    let r = ureq::post(&format!("{}{route}", s.url))
        .set("content-type", "application/json")
        .send_string(&body.to_string());
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = r.status();
    (
        status,
        serde_json::from_str(&r.into_string().unwrap()).unwrap(),
    )
}

/// A stream's `data:` objects, checking that it ends with `[DONE]`.
fn chunks(s: &Server, route: &str, body: &Value) -> Vec<Value> {
    let r = ureq::post(&format!("{}{route}", s.url))
        .set("content-type", "application/json")
        .send_string(&body.to_string())
        .unwrap();
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let data: Vec<String> = BufReader::new(r.into_reader())
        .lines()
        .map(Result::unwrap)
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// A play's template in the fixture's alphabet: each message its content and a full stop,
/// the reply stopping at the next full stop.
const TEMPLATE: &str = "{% set stop = '.' %}{% for m in messages %}{{ m.content }}. {% endfor %}";

#[test]
fn a_chat_is_the_completion_of_its_templated_prompt_whole_or_streamed() {
    let d = Dir::new("chat-template");
    let t = d.write("play.jinja", TEMPLATE);
    let s = serve(&d, &[&model(), "--chat-template", t.to_str().unwrap()]);
    let messages = json!([{"role":"user","content":"the quick brown fox"},{"role":"assistant","content":"jumps"}]);
    let chat = json!({"model":"fox","messages":messages,"seed":9,"n":3,"temperature":0.9,"max_completion_tokens":60});
    let (status, whole) = post(&s, "/v1/chat/completions", &chat);
    assert_eq!(status, 200, "{whole}");
    assert_eq!(whole["object"], "chat.completion");
    assert!(whole["id"].as_str().unwrap().starts_with("chatcmpl-"));
    // The same as a completion of the prompt the template makes, stopping at its marker.
    let prompt = "the quick brown fox. jumps. ";
    let (_, plain) = post(
        &s,
        "/v1/completions",
        &json!({"model":"fox","prompt":prompt,"seed":9,"n":3,"temperature":0.9,"max_tokens":60,"stop":"."}),
    );
    assert_eq!(whole["usage"], plain["usage"]);
    for k in 0..3 {
        let (c, p) = (&whole["choices"][k], &plain["choices"][k]);
        assert_eq!(
            c["message"],
            json!({"role":"assistant","content":p["text"]})
        );
        assert_eq!(
            (&c["index"], &c["finish_reason"]),
            (&json!(k), &p["finish_reason"])
        );
        assert!(c["logprobs"].is_null());
    }
    assert!(whole["choices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["finish_reason"] == "stop"));
    // Streamed: each choice's role first, its text in pieces, an empty delta with its finish.
    let mut body = chat.clone();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&s, "/v1/chat/completions", &body);
    let mut texts = vec![String::new(); 3];
    let mut seen_role = [false; 3];
    for c in &got[..got.len() - 1] {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], got[0]["id"]);
        for ch in c["choices"].as_array().unwrap() {
            let k = ch["index"].as_u64().unwrap() as usize;
            let delta = &ch["delta"];
            if delta.get("role").is_some() {
                assert_eq!((&delta["role"], seen_role[k]), (&json!("assistant"), false));
                seen_role[k] = true;
            } else {
                assert!(seen_role[k], "text before the role");
            }
            if let Some(f) = ch["finish_reason"].as_str() {
                assert_eq!(
                    (delta, f),
                    (
                        &json!({}),
                        whole["choices"][k]["finish_reason"].as_str().unwrap()
                    )
                );
            }
            texts[k].push_str(delta["content"].as_str().unwrap_or(""));
        }
    }
    for (k, text) in texts.iter().enumerate() {
        assert_eq!(
            text,
            whole["choices"][k]["message"]["content"].as_str().unwrap()
        );
    }
    let last = got.last().unwrap();
    assert_eq!(
        (&last["choices"], &last["usage"]),
        (&json!([]), &whole["usage"])
    );
    // The template's own refusal, and a message it cannot spell, are 400s naming the messages.
    let (status, e) = post(
        &s,
        "/v1/chat/completions",
        &json!({"model":"fox","messages":[{"role":"user","content":"Zebra!"}]}),
    );
    assert_eq!(
        (status, &e["error"]["code"]),
        (400, &json!("unknown_characters")),
        "{e}"
    );
}

#[test]
fn a_bad_chat_template_is_refused_at_start() {
    let d = Dir::new("chat-bad-template");
    let t = d.write("bad.jinja", "{% for m in messages %}{{ m.content }}");
    d.run(&["serve", &model(), "--chat-template", t.to_str().unwrap()])
        .bad("--chat-template");
    d.run(&["serve", &model(), "--chat-template", "nowhere.jinja"])
        .bad("nowhere.jinja");
}

/// What `charrnn eval` gives for `text`, in nats per character.
fn eval(d: &Dir, text: &str) -> f64 {
    let f = d.write("text.txt", text);
    let ck = fixture("format-v1-lstm-2x16.safetensors");
    let out = d
        .run(&["eval", ck.to_str().unwrap(), f.to_str().unwrap()])
        .ok()
        .stdout();
    let nats = out.split(", ").find(|p| p.ends_with("nats/char")).unwrap();
    nats.trim_end_matches(" nats/char").parse().unwrap()
}

/// Checks a choice's legacy `logprobs` against its text: one token per character, offsets
/// from `offset`, each top list holding its token; returns the log-probabilities.
fn check_text_logprobs(c: &Value, text: &str, offset: usize, k: usize) -> Vec<Option<f64>> {
    let lp = &c["logprobs"];
    let tokens: Vec<&str> = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tokens.concat(), text);
    assert!(tokens.iter().all(|t| t.chars().count() == 1));
    let offsets: Vec<usize> = (offset..offset + tokens.len()).collect();
    assert_eq!(lp["text_offset"], json!(offsets));
    let lps: Vec<Option<f64>> = lp["token_logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect();
    for (i, top) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
        match lps[i] {
            None => assert!(top.is_null()),
            Some(l) => {
                let top = top.as_object().unwrap();
                assert!((k..=k + 1).contains(&top.len()), "{top:?}");
                assert_eq!(top[tokens[i]].as_f64(), Some(l));
                assert!(top.values().all(|v| v.as_f64().unwrap() <= 0.0));
            }
        }
    }
    lps
}

#[test]
fn an_echoed_prompts_log_probabilities_are_what_eval_measures() {
    let d = Dir::new("logprobs-eval");
    let s = serve(&d, &[&model()]);
    let text = "the quick brown fox jumps over the lazy dog.\nthe lazy dog sleeps. a fox quick and brown jumps.\n";
    let body = json!({"model":"fox","prompt":text,"echo":true,"max_tokens":0,"logprobs":0});
    let (status, v) = post(&s, "/v1/completions", &body);
    assert_eq!(status, 200, "{v}");
    let c = &v["choices"][0];
    assert_eq!(
        (c["text"].as_str(), &c["finish_reason"]),
        (Some(text), &json!("length"))
    );
    let lps = check_text_logprobs(c, text, 0, 0);
    assert_eq!(lps[0], None, "the first character has nothing before it");
    let scored: Vec<f64> = lps[1..].iter().map(|l| l.unwrap()).collect();
    let nats = -scored.iter().sum::<f64>() / scored.len() as f64;
    let want = eval(&d, text);
    assert!((nats - want).abs() < 1e-3, "served {nats}, eval {want}");
    // Streamed, the same, in one chunk with the prompt.
    let mut body = body.clone();
    body["stream"] = json!(true);
    let got = chunks(&s, "/v1/completions", &body);
    assert_eq!(got[0]["choices"][0]["logprobs"], c["logprobs"]);
    assert_eq!(got[0]["choices"][0]["text"], c["text"]);
}

#[test]
fn generated_log_probabilities_follow_the_text_and_are_the_models_own() {
    let d = Dir::new("logprobs-text");
    let s = serve(&d, &[&model()]);
    // With a stop string, echo, three alternatives, n = 2: whole and streamed agree.
    let body = json!({"model":"fox","prompt":"the ","echo":true,"max_tokens":80,"logprobs":3,"stop":["o", "zz"],"seed":4,"n":2});
    let (_, v) = post(&s, "/v1/completions", &body);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let got = chunks(&s, "/v1/completions", &streamed);
    for k in 0..2 {
        let c = &v["choices"][k];
        let text = c["text"].as_str().unwrap();
        assert!(text.starts_with("the "));
        let lps = check_text_logprobs(c, text, 0, 3);
        assert!(lps[0].is_none() && lps[1..].iter().all(Option::is_some));
        // The stream's pieces, joined, are the whole answer's.
        let mine: Vec<&Value> = got
            .iter()
            .flat_map(|g| g["choices"].as_array().unwrap())
            .filter(|ch| ch["index"] == k)
            .collect();
        let mut joined =
            json!({"tokens":[],"token_logprobs":[],"top_logprobs":[],"text_offset":[]});
        for ch in mine.iter().filter(|ch| !ch["logprobs"].is_null()) {
            for key in ["tokens", "token_logprobs", "top_logprobs", "text_offset"] {
                let more = ch["logprobs"][key].as_array().unwrap().clone();
                joined[key].as_array_mut().unwrap().extend(more);
            }
        }
        assert_eq!(joined, c["logprobs"], "choice {k}");
    }
    assert!(
        v["choices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["finish_reason"] == "stop"),
        "{v}"
    );
    // Greedy: each character taken is the most likely, and so the first of its alternatives.
    let (_, g) = post(
        &s,
        "/v1/completions",
        &json!({"model":"fox","prompt":"the ","max_tokens":30,"temperature":0,"logprobs":2}),
    );
    let c = &g["choices"][0];
    let lps = check_text_logprobs(c, c["text"].as_str().unwrap(), 0, 2);
    for (i, top) in c["logprobs"]["top_logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let best = top
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert_eq!(Some(best), lps[i]);
    }
    // Chat's shape: content entries with their bytes and the top alternatives.
    let t = d.write("play.jinja", TEMPLATE);
    let s = serve(&d, &[&model(), "--chat-template", t.to_str().unwrap()]);
    let chat = json!({"model":"fox","messages":[{"role":"user","content":"the lazy dog"}],"seed":2,"max_tokens":40,"logprobs":true,"top_logprobs":2});
    let (_, v) = post(&s, "/v1/chat/completions", &chat);
    let c = &v["choices"][0];
    let content = c["logprobs"]["content"].as_array().unwrap();
    let tokens: String = content
        .iter()
        .map(|e| e["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, c["message"]["content"].as_str().unwrap());
    for e in content {
        let token = e["token"].as_str().unwrap();
        assert_eq!(e["bytes"], json!(token.as_bytes()));
        assert_eq!(e["top_logprobs"].as_array().unwrap().len(), 2);
    }
}
