//! What a careful attacker found (issue 29): sizes past memory, folders that drop texts,
//! weights that are not finite, advice naming flags a command lacks, losses that cancel at
//! large logits, and smaller frictions. Each case is run as a user would, on the built binary.

mod common;
use charrnn::checkpoint::{self, TrainRef};
use charrnn::model::Layout;
use common::*;
use std::path::PathBuf;

/// A copy of fixture checkpoint `name` at `to` in `d`, with `edit(tensor name, values)` applied
/// to every parameter tensor; the training state (moments, carried state) is kept when the
/// fixture has one.
fn edited(d: &Dir, name: &str, to: &str, edit: impl Fn(&str, &mut [f32])) -> PathBuf {
    let ck = checkpoint::load(&fixture(name)).unwrap();
    let mut params = ck.params;
    for t in &Layout::new(ck.model).tensors {
        edit(&t.name, &mut params[t.offset..][..t.len]);
    }
    let path = d.path(to);
    let train = ck.train.as_ref().map(|tr| {
        let r = tr.resume.as_ref().unwrap();
        TrainRef {
            config: &tr.config,
            state: &tr.state,
            adam: &r.adam,
            carry: &r.carry,
        }
    });
    checkpoint::save(&path, &ck.model, &ck.vocab, &params, train).unwrap();
    path
}

/// The number just before `unit` in `text` (e.g. the 1.2345 of "1.2345 nats/char").
fn number_before(text: &str, unit: &str) -> f64 {
    let head = &text[..text
        .find(unit)
        .unwrap_or_else(|| panic!("no {unit} in {text}"))];
    head.trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches('(')
        .parse()
        .unwrap_or_else(|_| panic!("no number before {unit} in {text}"))
}

#[test]
fn eval_gives_the_right_loss_at_logits_near_the_largest_float() {
    let d = Dir::new("huge-logits");
    // Every output bias at 3e38: the logits are all equal (W·h is far below their spacing),
    // so the model guesses uniformly and the loss is ln V.
    let ck = edited(
        &d,
        "format-v1-lstm-2x16.safetensors",
        "huge.safetensors",
        |n, v| {
            if n == "head.bias" {
                v.fill(3e38);
            }
        },
    );
    let vocab = checkpoint::load(&ck).unwrap().vocab.len() as f64;
    let text = d.write("t.txt", LINE.repeat(3));
    let out = d
        .run(&["eval", ck.to_str().unwrap(), text.to_str().unwrap()])
        .ok()
        .stdout();
    let nats = number_before(&out, "nats/char");
    assert!(
        (nats - vocab.ln()).abs() < 1e-3,
        "want ln {vocab}; got {out}"
    );
    let out = d
        .run(&[
            "sample",
            ck.to_str().unwrap(),
            "--length",
            "20",
            "--seed",
            "1",
            "--show-logprob",
        ])
        .ok();
    let bits = number_before(&out.stderr(), "bits/char");
    assert!(
        (bits - vocab.log2()).abs() < 1e-3,
        "want log2 {vocab}; got {}",
        out.stderr()
    );
}

#[test]
fn weights_that_are_not_finite_are_refused_by_every_command_that_loads_them() {
    let d = Dir::new("non-finite");
    let text = d.write("t.txt", LINE.repeat(3));
    let text = text.to_str().unwrap();
    for (tensor, value) in [
        ("head.bias", f32::NAN),
        ("lstm.weight_hh_l1", f32::INFINITY),
        ("lstm.bias_ih_l0", f32::NEG_INFINITY),
    ] {
        let ck = edited(
            &d,
            "format-v1-lstm-2x16-step40.safetensors",
            "bad.safetensors",
            |n, v| {
                if n == tensor {
                    v[3] = value;
                }
            },
        );
        let ck = ck.to_str().unwrap();
        let named = format!("tensor {tensor} has {value} at index 3");
        d.run(&["sample", ck, "--length", "5", "--seed", "1"])
            .bad(&named);
        d.run(&["eval", ck, text]).bad(&named);
        d.run(&["info", ck]).bad(&named);
        d.run(&["serve", ck, "--port", "0"]).bad(&named);
        d.run(&["train", text, "--resume", ck, "--steps", "41"])
            .bad(&named);
        let e = charrnn::Model::load(ck).err().expect("refused");
        assert!(e.msg.contains(&named), "{}", e.msg);
    }
    // The moments and the carried state, which only a resume reads.
    let first = Layout::new(
        checkpoint::load(&fixture("format-v1-lstm-2x16.safetensors"))
            .unwrap()
            .model,
    )
    .tensors[0]
        .name
        .clone();
    for (what, named) in [
        (
            "moments",
            format!("tensor adam.v.{first} has NaN at index 7"),
        ),
        ("state", "tensor state.h has inf at index 7".to_string()),
    ] {
        let mut full =
            checkpoint::load(&fixture("format-v1-lstm-2x16-step40.safetensors")).unwrap();
        let tr = full.train.as_mut().unwrap();
        let r = tr.resume.as_mut().unwrap();
        match what {
            "moments" => r.adam.v[7] = f32::NAN,
            _ => r.carry.h[7] = f32::INFINITY,
        }
        let train = TrainRef {
            config: &tr.config,
            state: &tr.state,
            adam: &r.adam,
            carry: &r.carry,
        };
        let bad = d.path("resume.safetensors");
        checkpoint::save(&bad, &full.model, &full.vocab, &full.params, Some(train)).unwrap();
        d.run(&[
            "train",
            text,
            "--resume",
            bad.to_str().unwrap(),
            "--steps",
            "41",
        ])
        .bad(&named);
    }
}

#[test]
fn an_empty_stop_string_is_refused_by_sample_the_server_and_the_library_alike() {
    let d = Dir::new("empty-stop");
    let ck = fixture("format-v1-lstm-2x16.safetensors");
    let ck = ck.to_str().unwrap();
    let why = charrnn::sample::stop::refused(&[String::new()]).expect("refused");
    d.run(&["sample", ck, "--stop", "", "--length", "5"])
        .bad(&format!("--stop {why}"));
    d.run(&["sample", ck, "--stop", "\n", "--stop", "", "--length", "5"])
        .bad(&format!("--stop {why}"));
    let settings = charrnn::Settings {
        stop: vec!["a".into(), String::new()],
        ..charrnn::Settings::default()
    };
    let model = charrnn::Model::load(ck).unwrap();
    let e = model.generate("the ", &settings).err().expect("refused");
    assert!(e.msg.contains(why), "{}", e.msg);
    let server = serve(&d, &[&format!("m={ck}")]);
    let r = ureq::post(&format!("{}/v1/completions", server.url))
        .set("content-type", "application/json")
        .send_string(r#"{"model":"m","prompt":"the","stop":[""]}"#);
    let Err(ureq::Error::Status(400, resp)) = r else {
        panic!("expected 400, got {r:?}");
    };
    let body = resp.into_string().unwrap();
    assert!(body.contains(why), "{body}");
}

/// A mirror that answers every request with `body`.
fn mirror_serving(body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    base
}

#[test]
fn a_mirror_that_answers_with_no_text_is_named_without_flags_fetch_lacks() {
    let d = Dir::new("mirror-not-text");
    // UTF-16 without a mark: reading a file, the advice is --encoding utf-16le, which fetch
    // does not have (`bad` checks every flag the error names).
    let u16: Vec<u8> = "*** START OF IT\nOnce upon a time.\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for body in [u16, Vec::new()] {
        let base = mirror_serving(body);
        d.run(&[
            "fetch",
            "gutenberg",
            "8",
            "--mirror",
            &base,
            "--cache",
            "cache",
        ])
        .bad("the mirror's answer for book 8 is not a text");
    }
}

/// A mirror that accepts connections and never answers (kept open until the test ends);
/// `headers`: it sends the response's headers and then falls silent in the body.
fn silent_mirror(headers: bool) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            if headers {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nOnce upon");
            }
            open.push(s);
        }
    });
    base
}

#[test]
fn a_download_from_a_silent_mirror_says_it_timed_out_and_which_flag_waits_longer() {
    let d = Dir::new("silent-mirror");
    for headers in [false, true] {
        let base = silent_mirror(headers);
        let started = std::time::Instant::now();
        let args = [
            "--mirror",
            &base,
            "--cache",
            "cache",
            "--download-timeout",
            "1",
        ];
        let mut fetch = vec!["fetch", "gutenberg", "7"];
        fetch.extend(args);
        d.run(&fetch).bad("did not answer for 1 s (timed out)");
        let r = d.run(&fetch);
        assert!(r.stderr().contains("--download-timeout"), "{}", r.stderr());
        let mut train = vec!["train", "--gutenberg", "7"];
        train.extend(args);
        d.run(&train).bad("did not answer for 1 s (timed out)");
        assert!(
            started.elapsed().as_secs() < 20,
            "it waited {:?}",
            started.elapsed()
        );
    }
    for bad in ["0", "-1", "1e300", "1e18", "NaN"] {
        d.run(&["fetch", "gutenberg", "7", "--download-timeout", bad])
            .bad("--download-timeout must be a positive number of seconds");
    }
    let ck = fixture("format-v1-lstm-2x16.safetensors");
    for flag in ["--timeout", "--shutdown-grace"] {
        for bad in ["1e300", "1e18"] {
            d.run(&["serve", ck.to_str().unwrap(), flag, bad])
                .bad(&format!("{flag} must be a positive number of seconds"));
        }
    }
    for bad in ["0", "65"] {
        d.run(&["serve", ck.to_str().unwrap(), "--stream-interval", bad])
            .bad("--stream-interval must be 1 to 64 characters");
    }
}

/// Seconds of an `H:MM:SS` clock.
fn seconds(hms: &str) -> u64 {
    hms.split(':').fold(0, |s, part| {
        s * 60 + part.parse::<u64>().unwrap_or_else(|_| panic!("{hms}"))
    })
}

/// The clock just before `what` in `line`.
fn clock_before(line: &str, what: &str) -> u64 {
    let head = &line[..line
        .find(what)
        .unwrap_or_else(|| panic!("no {what:?} in {line}"))];
    seconds(head.rsplit(" ").next().unwrap().trim_start_matches('('))
}

#[test]
fn after_a_resume_the_closing_line_never_has_in_all_shorter_than_training() {
    let d = Dir::new("resume-clock");
    let f = repetitive(&d);
    // Three seconds of training, then a resume of a few steps: the run has trained longer
    // than the resumed invocation took in all.
    let r = train(&d, &f, "run", &["--minutes", "0.05", "--sample-every", "0"]).ok();
    let closing = r.stderr().lines().last().unwrap().to_string();
    let step: u64 = closing
        .split("at step ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{closing}"));
    let first = clock_before(&closing, " of training (");
    assert!(
        first >= 3 && clock_before(&closing, " in all") >= first,
        "{closing}"
    );
    let r = resume(&d, &f, "run/last.safetensors", &(step + 5).to_string()).ok();
    let closing = r.stderr().lines().last().unwrap().to_string();
    let session = clock_before(&closing, " of training (");
    let in_all = clock_before(&closing, " in all");
    assert!(in_all >= session && in_all < first, "{closing}");
    let total = clock_before(&closing, " of training since step 0");
    assert!(total >= first && total >= session, "{closing}");
}

#[test]
fn eval_on_a_text_mostly_outside_the_vocabulary_says_what_share_it_scored() {
    let d = Dir::new("oov-share");
    // 15 known characters, 83 unknown: 40 '春', 30 '€', 13 '眠'.
    let text = format!(
        "{}{}{}the fox jumps.\n",
        "春".repeat(40),
        "€".repeat(30),
        "眠".repeat(13)
    );
    let f = d.write("mostly-unknown.txt", &text);
    let ck = fixture("format-v1-lstm-2x16.safetensors");
    let out = d
        .run(&["eval", ck.to_str().unwrap(), f.to_str().unwrap()])
        .ok()
        .stdout();
    assert!(
        out.contains("83 of 98 characters (84.7%) are outside the vocabulary and left out: the loss is on the other 15 (15.3%)")
            && out.contains("most frequent first: '春'×40 '€'×30 '眠'×13"),
        "{out}"
    );
    // A model with an unknown symbol scores them as it.
    let fox = repetitive(&d);
    train(
        &d,
        &fox,
        "unk",
        &["--steps", "2", "--max-vocab", "10", "--sample-every", "0"],
    )
    .ok();
    let out = d
        .run(&["eval", "unk/last.safetensors", f.to_str().unwrap()])
        .ok()
        .stdout();
    assert!(
        out.contains("characters (")
            && out.contains("scored as the unknown symbol: the loss is on "),
        "{out}"
    );
    let first = out
        .split("most frequent first: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"));
    assert!(first.starts_with("'春'×40 '€'×30 '眠'×13"), "{out}");
}

#[test]
fn a_folder_names_every_file_it_skips_and_why_in_the_output_and_config_json() {
    let d = Dir::new("skips");
    std::fs::create_dir_all(d.path("notes/more")).unwrap();
    d.write("notes/a.txt", LINE.repeat(300));
    // A long text with one bad byte far in: a flag reads it.
    let mut one_bad = "it was the best of times, ".repeat(400).into_bytes();
    one_bad[9000] = 0xFF;
    d.write("notes/one-bad-byte.txt", &one_bad);
    d.write("notes/empty.txt", "");
    d.write(
        "notes/logo.png",
        [0x89u8, b'P', b'N', b'G', 0, 0, 0, 13].repeat(8),
    );
    let u16: Vec<u8> = "hello there, general."
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    d.write("notes/more/utf16.txt", u16.repeat(20));
    let r = train(
        &d,
        std::path::Path::new("notes"),
        "run",
        &["--steps", "2", "--sample-every", "0"],
    )
    .ok();
    let err = r.stderr();
    let sep = std::path::MAIN_SEPARATOR;
    for line in [
        format!("charrnn: skipped notes{sep}one-bad-byte.txt: it is not valid UTF-8: invalid byte 0xFF at offset 9000; "),
        format!("charrnn: skipped notes{sep}empty.txt: it is empty\n"),
        format!("charrnn: skipped notes{sep}logo.png: it looks like binary data (a NUL byte at offset 4)\n"),
        format!("charrnn: skipped notes{sep}more{sep}utf16.txt: it looks like UTF-16 without a byte-order mark"),
    ] {
        assert!(err.contains(&line), "no {line:?} in:\n{err}");
    }
    let bad_line = err.lines().find(|l| l.contains("one-bad-byte")).unwrap();
    assert!(
        bad_line.contains("--lossy") && bad_line.contains("--encoding"),
        "{bad_line}"
    );
    assert!(err.contains("--encoding utf-16le"), "{err}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("run/config.json")).unwrap()).unwrap();
    let skipped = config["corpus"]["skipped_files"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    let bad = skipped
        .iter()
        .find(|s| s["path"].as_str().unwrap().ends_with("one-bad-byte.txt"))
        .unwrap();
    assert_eq!(
        bad["reason"],
        "is not valid UTF-8: invalid byte 0xFF at offset 9000"
    );
    assert!(bad["advice"].as_str().unwrap().contains("--lossy"), "{bad}");
    // Many binary files: the first 20 are named, config.json has every one.
    for i in 0..25 {
        d.write(&format!("notes/more/blob{i:02}.bin"), [0u8, 1, 2, 3]);
    }
    let r = train(
        &d,
        std::path::Path::new("notes"),
        "run2",
        &["--steps", "2", "--sample-every", "0"],
    )
    .ok();
    let err = r.stderr();
    assert_eq!(err.matches("charrnn: skipped ").count(), 20, "{err}");
    assert!(
        err.contains("… and 9 more files skipped (the run's config.json lists them all)"),
        "{err}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("run2/config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["corpus"]["skipped_files"].as_array().unwrap().len(),
        29
    );
    // A folder with no text names a file it skipped and the flag that reads it.
    std::fs::create_dir_all(d.path("latin")).unwrap();
    d.write("latin/x.txt", b"caf\xe9 ".repeat(200));
    train(&d, std::path::Path::new("latin"), "run3", &["--steps", "2"])
        .bad("--encoding windows-1252");
}

/// Which commands show the messages of a source file (the longest matching prefix wins). A file
/// whose string literals name a flag must be here, so that the test below knows whose flags
/// they must be.
const SHOWN_BY: &[(&str, &[&str])] = &[
    ("src/train/", &["train"]),
    ("src/data/batches.rs", &["train"]),
    ("src/data/training.rs", &["train"]),
    ("src/data/corpus.rs", &["train"]),
    // Reading a text: training texts, eval's files, sample's --prime-file and --check-novelty
    // (fetch maps these errors to its own).
    ("src/data/text.rs", &["train", "eval", "sample"]),
    ("src/data/fetch.rs", &["fetch gutenberg", "train"]),
    ("src/sample/command.rs", &["sample"]),
    ("src/report/eval.rs", &["eval"]),
    ("src/report/info.rs", &["info"]),
    ("src/report/plot.rs", &["plot"]),
    ("src/serve/", &["serve"]),
    // The page's "the same text from the command line" builds a `charrnn sample` command.
    ("src/serve/page.html", &["sample"]),
    ("src/bench.rs", &["bench"]),
    // The Python package builds these commands' arguments from keyword arguments.
    ("src/python/mod.rs", &["fetch gutenberg"]),
    ("src/python/model.rs", &["sample"]),
    // The flag values several commands share (--threads): every command with them.
    (
        "src/args.rs",
        &["train", "sample", "eval", "bench", "serve"],
    ),
];

/// The string literals of source `src` (Rust, or the page's HTML and script), comments left
/// out, and in Rust the test module at the end of a file.
fn string_literals(src: &str) -> Vec<String> {
    let src = src.split("\n#[cfg(test)]").next().unwrap_or(src);
    let c: Vec<char> = src.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    let ident = |k: usize| k > 0 && (c[k - 1].is_alphanumeric() || c[k - 1] == '_');
    while i < c.len() {
        let at = |s: &str| c[i..].iter().take(s.len()).copied().eq(s.chars());
        if at("//") {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at("/*") {
            i += 2;
            while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c[i] == 'r' && !ident(i) && matches!(c.get(i + 1), Some('"' | '#')) {
            let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
            let start = i + 2 + hashes;
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let mut j = start;
            while j < c.len() && !c[j..].iter().take(close.len()).copied().eq(close.chars()) {
                j += 1;
            }
            out.push(c[start..j.min(c.len())].iter().collect());
            i = j + close.len();
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            out.push(c[i + 1..j.min(c.len())].iter().collect());
            i = j + 1;
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{7F}') is skipped whole; a lifetime's quote alone.
            i += match (c.get(i + 1), c.get(i + 2)) {
                (Some('\\'), _) => c[i + 2..]
                    .iter()
                    .position(|&x| x == '\'')
                    .map_or(1, |p| p + 3),
                (Some(_), Some('\'')) => 3,
                _ => 1,
            };
        } else {
            i += 1;
        }
    }
    out
}

fn source_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            source_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs" || x == "html") {
            out.push(p);
        }
    }
}

/// Every flag a message names, in every string of the source, is one its command accepts
/// (`sample --prime-file` on invalid UTF-8 advised `--lossy`, which `sample` did not have).
#[test]
fn every_flag_a_message_names_is_one_its_command_accepts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.ends_with("/tests.rs") {
            continue; // a test module of its own
        }
        let shown_by = SHOWN_BY
            .iter()
            .filter(|(prefix, _)| rel.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, commands)| *commands);
        for lit in string_literals(&std::fs::read_to_string(&f).unwrap()) {
            if named_flags(&["sample".into()], &lit).is_empty() {
                continue;
            }
            let Some(commands) = shown_by else {
                wrong.push(format!("{rel} names flags in {lit:?}: add it to SHOWN_BY"));
                continue;
            };
            for command in commands {
                let command: Vec<String> = command.split(' ').map(String::from).collect();
                checked += 1;
                for flag in foreign_flags(&command, &lit) {
                    wrong.push(format!("{rel}: {lit:?} names {flag}"));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} messages checked: is the scan broken?"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn sample_reads_a_prime_file_with_the_flags_its_advice_names() {
    let d = Dir::new("prime-lossy");
    let ck = fixture("format-v1-lstm-2x16.safetensors");
    let ck = ck.to_str().unwrap();
    d.write("prime.txt", b"the \xFFfox");
    // The advice names --encoding and --lossy (`bad` checks that sample accepts both) ...
    d.run(&["sample", ck, "--prime-file", "prime.txt", "--length", "5"])
        .bad("--lossy to replace invalid bytes");
    // ... and --lossy reads it (U+FFFD, unknown to this model, is then dropped).
    let r = d
        .run(&[
            "sample",
            ck,
            "--prime-file",
            "prime.txt",
            "--lossy",
            "--skip-unknown",
            "--length",
            "5",
            "--seed",
            "1",
        ])
        .ok();
    assert!(r.stdout().starts_with("the fox"), "{}", r.stdout());
    assert!(
        r.stderr().contains("dropped 1 character(s)"),
        "{}",
        r.stderr()
    );
}

/// The same for `--help`: every flag a command's help names is one it accepts, or one of the
/// command the help names it with (`charrnn fetch gutenberg`).
#[test]
fn every_flag_a_help_names_is_one_its_command_accepts() {
    use clap::CommandFactory;
    let top = charrnn::cli::Cli::command();
    let mut wrong = Vec::new();
    let mut paths: Vec<Vec<String>> = Vec::new();
    for sub in top.get_subcommands() {
        let name = sub.get_name().to_string();
        if name == "help" {
            continue;
        }
        paths.push(vec![name.clone()]);
        for inner in sub.get_subcommands().filter(|s| s.get_name() != "help") {
            paths.push(vec![name.clone(), inner.get_name().to_string()]);
        }
    }
    for path in &paths {
        let mut cmd = charrnn::cli::Cli::command();
        for p in path {
            cmd = cmd.find_subcommand(p).unwrap().clone();
        }
        let help = cmd.render_long_help().to_string();
        for line in help.lines() {
            for flag in foreign_flags(path, line) {
                wrong.push(format!(
                    "charrnn {} --help: {line:?} names {flag}",
                    path.join(" ")
                ));
            }
        }
    }
    assert!(paths.len() >= 8, "{paths:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// One line that names the bytes needed and the bytes available, exit 2.
fn past_memory(r: Run) {
    let err = r.stderr();
    let last = err.lines().last().unwrap_or_default().to_string();
    r.bad("of memory (");
    assert!(
        last.contains(" needs ") && last.contains(" available; "),
        "{last}"
    );
}

#[test]
fn training_sizes_past_memory_are_one_line_never_an_abort() {
    let d = Dir::new("train-sizes");
    let f = repetitive(&d);
    let f = f.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["train", f, "--out", "run", "--sample-every", "0"];
        args.extend_from_slice(extra);
        d.run(&args)
    };
    // Past what a checkpoint holds (and what 64-bit counts of the layout hold).
    for (flag, v) in [
        ("--hidden", "100000"),
        ("--layers", "100000"),
        ("--embed", "100000000"),
    ] {
        run(&[flag, v, "--steps", "1"]).bad(&format!("{flag} must be at most"));
    }
    // Within it, past any machine's memory.
    past_memory(run(&["--hidden", "65536"]));
    past_memory(run(&["--layers", "64", "--hidden", "8192"]));
    past_memory(run(&["--embed", "65536", "--hidden", "32768"]));
    past_memory(run(&["--batch", "400", "--seq", "40", "--hidden", "60000"]));
    // Without --hidden the size counted is the probe's, and the line says so.
    let r = run(&[
        "--minutes",
        "1",
        "--batch",
        "100000000000",
        "--seq",
        "100000000",
    ]);
    assert!(
        r.stderr()
            .contains("(the size the sizing probe times, without --hidden)"),
        "{}",
        r.stderr()
    );
    past_memory(r);
    assert!(!d.path("run").exists(), "a refused run leaves no folder");
    // --hidden 20000 took 19 GB for its weights alone (about 240 GB in all): refused where the
    // machine has less.
    match charrnn::memory::available() {
        Some(a) if a < 200_000_000_000 => past_memory(run(&["--hidden", "20000"])),
        a => eprintln!("skipped --hidden 20000: {a:?} bytes available"),
    }
    // A checkpoint whose batch × seq is past memory: the resume is refused the same way.
    run(&["--steps", "2"]).ok();
    let mut ck = checkpoint::load(&d.path("run/last.safetensors")).unwrap();
    let tr = ck.train.as_mut().unwrap();
    tr.config.seq = 1 << 40;
    let r = tr.resume.as_ref().unwrap();
    let train = TrainRef {
        config: &tr.config,
        state: &tr.state,
        adam: &r.adam,
        carry: &r.carry,
    };
    let huge = d.path("run/huge.safetensors");
    checkpoint::save(&huge, &ck.model, &ck.vocab, &ck.params, Some(train)).unwrap();
    let r = d.run(&[
        "train",
        f,
        "--resume",
        huge.to_str().unwrap(),
        "--steps",
        "3",
    ]);
    assert!(
        r.stderr()
            .contains("resume it on a machine with more memory"),
        "{}",
        r.stderr()
    );
    past_memory(r);
}

#[test]
fn sampling_benching_and_serving_sizes_past_memory_are_one_line_never_an_abort() {
    let d = Dir::new("other-sizes");
    let ck = fixture("format-v1-lstm-2x16.safetensors");
    let ck = ck.to_str().unwrap();
    past_memory(d.run(&["sample", ck, "--num-samples", "1000000000", "--length", "1"]));
    past_memory(d.run(&[
        "sample",
        ck,
        "--num-samples",
        "4",
        "--length",
        "1000000000000",
    ]));
    past_memory(d.run(&[
        "sample",
        ck,
        "--num-samples",
        "1000000",
        "--length",
        "10000000",
    ]));
    for args in [
        &["--hidden", "65536"][..],
        &["--layers", "64", "--hidden", "8192"],
        &["--vocab", "2000000", "--hidden", "8192"],
        &["--batch", "100000000000", "--seq", "100000000"],
        &["--streams", "1000000000000"],
    ] {
        let mut a = vec!["bench", "--steps", "1", "--warmup", "0"];
        a.extend_from_slice(args);
        past_memory(d.run(&a));
    }
    d.run(&["bench", "--vocab", "100000000"])
        .bad("--vocab must be at most");
    d.run(&["bench", "--hidden", "100000"])
        .bad("--hidden must be at most");
    for args in [
        &["--queue", "100000000000"][..],
        &["--max-streams", "100000000000", "--max-choices", "1"],
        &["--max-prompt", "100000000000"],
        &["--max-tokens", "100000000000000"],
    ] {
        let mut a = vec!["serve", ck, "--port", "0"];
        a.extend_from_slice(args);
        past_memory(d.run(&a));
    }
}
