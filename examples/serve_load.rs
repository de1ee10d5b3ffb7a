//! A load generator for `charrnn serve` (used by `bench/serve.sh`): C clients, each on its own
//! thread with a blocking HTTP client (ureq), send streaming completions back to back and time
//! every chunk. Prints one JSON line: characters per second over all clients, the time to the
//! first character (p50, p99), the gap between chunks (p99, with how many characters a chunk
//! carried on average), and the errors.
//!
//!   cargo run --release --example serve_load -- URL MODEL CLIENTS REQUESTS_PER_CLIENT MAX_TOKENS

use std::io::{BufRead, BufReader};
use std::time::Instant;

/// One client's times to the first character, gaps between chunks, characters, chunks and
/// errors.
type Client = (Vec<f64>, Vec<f64>, usize, usize, usize);

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let [_, url, model, clients, requests, max_tokens] = &a[..] else {
        eprintln!("usage: serve_load URL MODEL CLIENTS REQUESTS_PER_CLIENT MAX_TOKENS");
        std::process::exit(2);
    };
    let (clients, requests, max_tokens): (usize, usize, usize) = (
        clients.parse().unwrap(),
        requests.parse().unwrap(),
        max_tokens.parse().unwrap(),
    );
    let agent = ureq::AgentBuilder::new()
        .max_idle_connections_per_host(clients)
        .build();
    let t0 = Instant::now();
    let results: Vec<Client> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|c| {
                let agent = agent.clone();
                s.spawn(move || {
                    let (mut first, mut gaps, mut chars, mut chunks, mut errors) = (Vec::new(), Vec::new(), 0, 0, 0);
                    for r in 0..requests {
                        let body = serde_json::json!({
                            "model": model, "prompt": "The ", "max_tokens": max_tokens, "temperature": 0.8,
                            "seed": (c * requests + r) as u64, "stream": true,
                        });
                        let start = Instant::now();
                        let resp = match agent
                            .post(&format!("{url}/v1/completions"))
                            .set("content-type", "application/json")
                            .send_string(&body.to_string()) {
                            Ok(resp) => resp,
                            Err(_) => {
                                errors += 1;
                                continue;
                            }
                        };
                        let mut last: Option<Instant> = None;
                        let mut got = 0;
                        for line in BufReader::new(resp.into_reader()).lines() {
                            let Ok(line) = line else {
                                errors += 1;
                                break;
                            };
                            let Some(data) = line.strip_prefix("data: ") else { continue };
                            if data == "[DONE]" {
                                break;
                            }
                            let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
                            if v.get("error").is_some() {
                                errors += 1;
                                break;
                            }
                            let n: usize = v["choices"]
                                .as_array()
                                .map(|cs| cs.iter().map(|c| c["text"].as_str().unwrap_or("").chars().count()).sum())
                                .unwrap_or(0);
                            if n == 0 {
                                continue;
                            }
                            let now = Instant::now();
                            match last {
                                None => first.push(now.duration_since(start).as_secs_f64()),
                                Some(l) => gaps.push(now.duration_since(l).as_secs_f64()),
                            }
                            last = Some(now);
                            got += n;
                            chunks += 1;
                        }
                        if got != max_tokens {
                            errors += 1;
                        }
                        chars += got;
                    }
                    (first, gaps, chars, chunks, errors)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let (mut first, mut gaps) = (Vec::new(), Vec::new());
    let (mut chars, mut chunks, mut errors) = (0, 0, 0);
    for (f, g, c, k, e) in results {
        first.extend(f);
        gaps.extend(g);
        chars += c;
        chunks += k;
        errors += e;
    }
    println!(
        "{}",
        serde_json::json!({
            "clients": clients,
            "requests": clients * requests,
            "chars": chars,
            "seconds": wall,
            "chars_per_s": chars as f64 / wall,
            "ttfc_p50_ms": 1e3 * percentile(&mut first.clone(), 0.5),
            "ttfc_p99_ms": 1e3 * percentile(&mut first, 0.99),
            "gap_p99_ms": 1e3 * percentile(&mut gaps, 0.99),
            "chars_per_chunk": chars as f64 / chunks.max(1) as f64,
            "errors": errors,
        })
    );
}
