//! Real clients of `charrnn serve`: the official `openai` Python package, unmodified
//! (`examples/openai_client.py`: completions and chat, whole and streamed), and the page in
//! headless Chromium driven by playwright-core (`tests/browser/page.mjs`). Each skips with a
//! message where its client is not installed, and fails instead when
//! `CHARRNN_REQUIRE_CLIENTS=1` (CI installs them: see `.ci/run`).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Whether a missing client is a failure (CI) or a skip (a developer's machine).
fn required() -> bool {
    std::env::var_os("CHARRNN_REQUIRE_CLIENTS").is_some_and(|v| v == "1")
}

fn skip(what: &str) {
    assert!(!required(), "{what} (CHARRNN_REQUIRE_CLIENTS=1)");
    eprintln!("skipped: {what}");
}

/// A small trained model served on a free port.
fn served_model(d: &Dir) -> (Server, String) {
    d.write(
        "shake.txt",
        shakespeare_chars()[..200_000].iter().collect::<String>(),
    );
    let ck = train_small(d, "shake.txt", "shake", "150");
    (serve(d, &[&ck]), ck)
}

fn sample(d: &Dir, ck: &str, length: &str) -> String {
    let out = d
        .run(&[
            "sample",
            ck,
            "--prime",
            "ROMEO:",
            "--seed",
            "7",
            "--temperature",
            "0.8",
            "--length",
            length,
        ])
        .ok()
        .stdout();
    out.strip_suffix('\n').unwrap().to_string()
}

#[test]
fn the_openai_python_client_works_unchanged() {
    let has = Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        return skip("the openai Python package is not installed (pip install openai)");
    }
    let d = Dir::new("openai-client");
    let (s, ck) = served_model(&d);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/openai_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("{}/v1", s.url))
        .arg("shake")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = sample(&d, &ck, "200");
    let completion = want.strip_prefix("ROMEO:").unwrap();
    let repr = |s: &str| {
        let o = Command::new("python3")
            .args(["-c", "import sys; print(repr(sys.argv[1]))", s])
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim_end().to_string()
    };
    let quoted = repr(completion);
    assert!(
        stdout.contains(&format!("WHOLE {quoted} length 200")),
        "{stdout}\nwant {quoted}"
    );
    assert!(stdout.contains(&format!("STREAM {quoted} ")), "{stdout}");
    // The chat: the default template's prompt completed up to its turn marker, whole and
    // streamed alike.
    let body = serde_json::json!({"model":"shake","prompt":"User: Good morrow.\n\nAssistant: ",
        "max_tokens":1000,"temperature":0.8,"seed":3,"stop":"\n\n"});
    let r = ureq::post(&format!("{}/v1/completions", s.url))
        .send_string(&body.to_string())
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
    let (reply, finish) = (&v["choices"][0]["text"], &v["choices"][0]["finish_reason"]);
    let quoted = repr(reply.as_str().unwrap());
    let finish = finish.as_str().unwrap();
    assert!(
        stdout.contains(&format!("CHAT WHOLE {quoted} {finish}\n")),
        "{stdout}\nwant {quoted} {finish}"
    );
    assert!(
        stdout.contains(&format!("CHAT STREAM {quoted} ")),
        "{stdout}"
    );
}

#[test]
fn the_page_streams_text_in_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHARRNN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return skip("no Chromium at /usr/bin/chromium (apt install chromium)");
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        return skip("playwright-core is not installed (cd tests/browser && npm install)");
    }
    let d = Dir::new("page");
    let (s, ck) = served_model(&d);
    let shot = d.path("page.png");
    let out = Command::new("node")
        .arg(dir.join("page.mjs"))
        .arg(format!("{}/", s.url))
        .arg(&shot)
        .arg(&chromium)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // The page shows the prime and then exactly what `charrnn sample` gives for its settings.
    assert_eq!(v["text"].as_str().unwrap(), sample(&d, &ck, "300"));
    let cmd = v["cmd"].as_str().unwrap();
    assert!(
        cmd.starts_with("charrnn sample ")
            && cmd.contains("--prime ROMEO: --temperature 0.8 --length 300 --seed 7"),
        "{cmd}"
    );
    assert!(
        v["stats"].as_str().unwrap().contains("chars/s, seed 7"),
        "{v}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    if let Some(keep) = std::env::var_os("CHARRNN_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
