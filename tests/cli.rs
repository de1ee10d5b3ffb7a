//! End-to-end tests of the `charrnn` binary: each runs the built executable in its own temp
//! folder and asserts on exit codes, messages and files.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[test]
fn learns_a_repetitive_text_and_samples_it_back() {
    let d = Dir::new("learn");
    let f = repetitive(&d);
    let r = train(
        &d,
        &f,
        "run",
        &["--steps", "300", "--eval-every", "100", "--lr", "0.01"],
    )
    .ok();
    let err = r.stderr();
    assert!(err.contains("validation loss"), "{err}");
    // The last validation loss must be far below ln(V) (a uniform guess).
    let v = LINE
        .chars()
        .collect::<std::collections::BTreeSet<_>>()
        .len() as f64;
    let last_val: f64 = err
        .lines()
        .filter_map(|l| l.split("validation loss ").nth(1))
        .next_back()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("a validation line");
    assert!(
        last_val < 0.1 * v.ln(),
        "validation loss {last_val} is not far below ln V = {}",
        v.ln()
    );
    for f in ["run/best.safetensors", "run/last.safetensors"] {
        assert!(d.path(f).is_file(), "{f} missing");
    }
    assert!(leftover_temp_files(&d.path("run")).is_empty());

    let s = d
        .run(&[
            "sample",
            "run/best.safetensors",
            "--temperature",
            "0",
            "--prime",
            "the quick",
            "--length",
            "80",
        ])
        .ok();
    let want: String = format!("the quick{}", &LINE.repeat(3)[9..])
        .chars()
        .take(9 + 80)
        .collect();
    assert_eq!(
        s.stdout().trim_end_matches('\n'),
        want.trim_end_matches('\n')
    );
}

#[test]
fn same_seed_gives_the_same_sample_and_a_different_seed_does_not() {
    let d = Dir::new("seed");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "30"]).ok();
    let sample = |seed: &str| {
        d.run(&[
            "sample",
            "run/last.safetensors",
            "--seed",
            seed,
            "--length",
            "300",
        ])
        .ok()
        .stdout()
    };
    let (a, b, c) = (sample("5"), sample("5"), sample("6"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.chars().count(), 301, "300 characters and a final newline");
    // More threads than cores are lowered to the cores, with a warning, and the same text.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let many = (cores + 1).to_string();
    let r = d
        .run(&[
            "sample",
            "run/last.safetensors",
            "--seed",
            "5",
            "--length",
            "300",
            "--threads",
            &many,
        ])
        .ok();
    assert_eq!(r.stdout(), a);
    assert!(
        r.stderr().contains(&format!(
            "warning: --threads {many} is more than the {cores} core(s) available here"
        )),
        "{}",
        r.stderr()
    );
}

#[test]
fn samples_do_not_depend_on_the_cpus_kernels() {
    // The same seed must give the same text on any machine: the text on every set of kernels
    // this machine runs (CHARRNN_KERNELS; a path it lacks exits 2 and is skipped). The kernels'
    // own tests prove the bits equal (`engine::kernels`); this proves each path is reached from
    // the command line (a wrong AVX2 fold changes the text; a one-ulp change may not).
    let d = Dir::new("simd");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "40"]).ok();
    let args = [
        "sample",
        "run/last.safetensors",
        "--seed",
        "3",
        "--length",
        "2000",
        "--temperature",
        "1.5",
    ];
    let best = d.run(&args).ok().stdout();
    let mut ran = Vec::new();
    for path in ["portable", "avx2", "avx512", "amx"] {
        let r = Run(
            d.cmd(&args).env("CHARRNN_KERNELS", path).output().unwrap(),
            Vec::new(),
        );
        if r.code() == 2 {
            r.bad(&format!("CHARRNN_KERNELS={path}: "));
            continue;
        }
        assert_eq!(r.ok().stdout(), best, "{path}");
        ran.push(path);
    }
    assert!(
        ran.contains(&"portable"),
        "every machine runs the portable kernels"
    );
    // The older variable still means the portable kernels.
    let base = Run(
        d.cmd(&args).env("CHARRNN_NO_SIMD", "1").output().unwrap(),
        Vec::new(),
    );
    assert_eq!(base.ok().stdout(), best);
    // A name that is not a set of kernels: one line, exit 2, before any work.
    Run(
        d.cmd(&args)
            .env("CHARRNN_KERNELS", "neon")
            .output()
            .unwrap(),
        Vec::new(),
    )
    .bad("CHARRNN_KERNELS=neon is not a set of kernels: use portable, avx2, avx512 or amx");
}

#[test]
fn resume_is_exact_and_same_seed_is_deterministic() {
    // In each precision of the products (bf16 runs on AMX tiles where the CPU has them).
    for p in ["f32", "bf16"] {
        resume_is_exact_in(p);
    }
}

fn resume_is_exact_in(precision: &str) {
    let d = Dir::new(&format!("resume-{precision}"));
    let f = repetitive(&d);
    // 40 steps in one go (an epoch is 63 steps: the resume falls mid-epoch, with carried state).
    // A constant rate: a cosine spans the planned steps, which differ between these runs.
    let run = |out: &str, steps: &str, eval: &str| {
        let flags = [
            "--steps",
            steps,
            "--eval-every",
            eval,
            "--amsgrad",
            "--lr-schedule",
            "constant",
            "--precision",
            precision,
        ];
        train(&d, &f, out, &flags).ok();
    };
    run("one", "40", "15");
    run("again", "40", "1000");
    // 25 steps, then resume to 40 (the precision is the checkpoint's).
    run("two", "25", "1000");
    std::fs::copy(d.path("two/last.safetensors"), d.path("mid.safetensors")).unwrap();
    let r = resume(&d, &f, "two/last.safetensors", "40").ok();
    assert!(r.stderr().contains("resuming at step 25"), "{}", r.stderr());
    assert!(
        r.stderr().contains(&format!("{precision} products")),
        "{}",
        r.stderr()
    );

    let one = tensors(&d.path("one/last.safetensors"));
    let again = tensors(&d.path("again/last.safetensors"));
    let two = tensors(&d.path("two/last.safetensors"));
    assert_eq!(two.train.as_ref().unwrap().state.step, 40);
    for other in [&again, &two] {
        assert!(one.params == other.params, "{precision}: weights differ");
        let (a, b) = (one.train.as_ref().unwrap(), other.train.as_ref().unwrap());
        let (a, b) = (a.resume.as_ref().unwrap(), b.resume.as_ref().unwrap());
        assert!(a.adam == b.adam, "{precision}: Adam state differs");
        assert!(a.carry == b.carry, "{precision}: carried state differs");
    }
    let mid = tensors(&d.path("mid.safetensors"));
    assert!(
        mid.params != one.params,
        "the comparison must be able to fail"
    );
}

#[test]
fn a_run_resumes_in_the_other_precision_and_the_two_differ() {
    let d = Dir::new("resume-precision");
    let f = repetitive(&d);
    let flags = |p: &'static str| ["--steps", "20", "--eval-every", "1000", "--precision", p];
    train(&d, &f, "f32", &flags("f32")).ok();
    train(&d, &f, "bf16", &flags("bf16")).ok();
    let (a, b) = (
        tensors(&d.path("f32/last.safetensors")),
        tensors(&d.path("bf16/last.safetensors")),
    );
    assert!(
        a.params != b.params,
        "bf16 products must change the arithmetic"
    );
    let r = d
        .run(&[
            "train",
            f.to_str().unwrap(),
            "--resume",
            "f32/last.safetensors",
            "--steps",
            "30",
            "--precision",
            "bf16",
            "--threads",
            "1",
        ])
        .ok();
    assert!(r.stderr().contains("bf16 products"), "{}", r.stderr());
    let resumed = tensors(&d.path("f32/last.safetensors"));
    assert_eq!(resumed.train.as_ref().unwrap().state.step, 30);
    assert_eq!(
        resumed.train.as_ref().unwrap().config.precision.name(),
        "bf16"
    );
}

#[test]
fn resume_refuses_a_different_text_or_changed_settings() {
    let d = Dir::new("resume-bad");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "5"]).ok();
    let g = d.write("other.txt", LINE.replace("fox", "cat").repeat(360));
    d.run(&[
        "train",
        g.to_str().unwrap(),
        "--resume",
        "run/last.safetensors",
    ])
    .bad("not the text this run was trained on");
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "run/last.safetensors",
        "--hidden",
        "64",
    ])
    .bad("--hidden 64");
}

#[test]
fn unicode_text_trains_and_samples_as_characters() {
    let d = Dir::new("unicode");
    let poem = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\r\n";
    let f = d.write("poem.txt", format!("\u{FEFF}{}", poem.repeat(200)));
    let flags = ["--steps", "150", "--lr", "0.01", "--dropout", "0"];
    train(
        &d,
        &f,
        "run",
        &[&flags[..], &["--lr-schedule", "constant"]].concat(),
    )
    .ok();
    let s = d
        .run(&[
            "sample",
            "run/last.safetensors",
            "--temperature",
            "0",
            "--prime",
            "床前",
            "--length",
            "8",
        ])
        .ok()
        .stdout();
    assert_eq!(s, "床前明月光，疑是地上\n");
    let ck = tensors(&d.path("run/last.safetensors"));
    assert!(ck.vocab.chars.contains(&'\r'), "CRLF must be kept verbatim");
    assert!(
        !ck.vocab.chars.contains(&'\u{FEFF}'),
        "the BOM must be dropped"
    );
    assert_eq!(ck.vocab.len(), 21);
}

#[test]
fn ascii_and_vocabulary_cap() {
    let d = Dir::new("ascii");
    let f = d.write("t.txt", "Ça va? Très bien, naïve café.\n".repeat(300));
    train(&d, &f, "a", &["--steps", "2", "--ascii"]).ok();
    assert!(tensors(&d.path("a/last.safetensors"))
        .vocab
        .chars
        .iter()
        .all(|c| c.is_ascii()));
    train(&d, &f, "b", &["--steps", "2", "--max-vocab", "10"]).ok();
    let v = tensors(&d.path("b/last.safetensors")).vocab;
    assert_eq!(v.len(), 10);
    assert!(v.chars.contains(&'\u{FFFD}'));
}

#[test]
fn the_argument_parsers_errors_are_one_charrnn_line_with_the_usage() {
    let d = Dir::new("bad-flags");
    for (args, needle) in [
        (
            &["sample", "m.safetensors", "--length=-5"][..],
            "invalid value '-5' for '--length <LENGTH>'",
        ),
        (&["serve", "m", "--port", "99999"], "'--port <PORT>'"),
        (
            &["train", "x.txt", "--hiden", "8"],
            "tip: a similar argument exists: '--hidden'",
        ),
        (&["sample"], "usage: charrnn sample"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
    ] {
        let r = d.run(args);
        let err = r.stderr();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("charrnn: "), "{args:?}: {err}");
        r.bad(needle);
    }
    // Help and the version stay clap's own text, on stdout, exit 0.
    let help = d.run(&["sample", "--help"]).ok().stdout();
    assert!(help.contains("Usage: charrnn sample"), "{help}");
    d.run(&["--version"]).ok();
}

#[test]
fn bad_training_inputs_exit_2_with_one_clear_line() {
    let d = Dir::new("bad-train");
    let f = repetitive(&d);
    let fs = f.to_str().unwrap();
    d.run(&["train", "missing.txt"])
        .bad("cannot read missing.txt");
    std::fs::create_dir(d.path("folder")).unwrap();
    d.run(&["train", "folder"])
        .bad("folder holds no text files");
    d.write("empty.txt", "");
    d.run(&["train", "empty.txt"]).bad("is empty");
    d.write("short.txt", "hello world, a short text\n".repeat(10));
    d.run(&["train", "short.txt"])
        .bad("smaller --batch or --seq");
    d.write("latin1.txt", b"caf\xe9 au lait\n".repeat(100));
    d.run(&["train", "latin1.txt"])
        .bad("invalid byte 0xE9 at offset 3; it looks like a single-byte Western text: pass --encoding windows-1252");
    d.run(&[
        "train",
        "latin1.txt",
        "--lossy",
        "--steps",
        "1",
        "--batch",
        "4",
        "--seq",
        "8",
        "--hidden",
        "8",
        "--out",
        "lossy",
    ])
    .ok();
    d.write(
        "blob.bin",
        [0x7fu8, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0].repeat(100),
    );
    d.run(&["train", "blob.bin"]).bad("binary");
    d.run(&["train", fs, "--hidden", "0"])
        .bad("--hidden must be at least 1");
    d.run(&["train", fs, "--batch", "0"])
        .bad("--batch must be at least 1");
    d.run(&["train", fs, "--val-frac", "1.5"])
        .bad("--val-frac must be between 0 and 1");
    d.run(&["train", fs, "--val-frac", "0"])
        .bad("--val-frac must be between 0 and 1");
    d.run(&["train", fs, "--lr", "-1"])
        .bad("--lr must be a positive number");
    d.run(&["train", fs, "--layers", "-2"]).bad("--layers");
    d.run(&["train", fs, "--steps", "1", "--out", "fox.txt/run"])
        .bad("cannot create output folder");
    d.run(&["train", fs, "--bogus"]).bad("--bogus");
}

#[test]
fn bad_sampling_inputs_exit_2_with_one_clear_line() {
    let d = Dir::new("bad-sample");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "2"]).ok();
    let ck = "run/last.safetensors";
    d.run(&["sample", ck, "--prime", "Zürich"]).bad("'Z' 'ü'");
    d.run(&["sample", ck, "--temperature", "-1"])
        .bad("--temperature must be 0 or more");
    d.run(&["sample", ck, "--top-k", "0"])
        .bad("--top-k must be at least 1");
    d.run(&["sample", "nothing.safetensors"])
        .bad("cannot read checkpoint nothing.safetensors");
    d.run(&["sample", "fox.txt"])
        .bad("is not a charrnn checkpoint");
    d.run(&["sample", "run"]).bad("is a directory");
    let bytes = std::fs::read(d.path(ck)).unwrap();
    d.write("cut.safetensors", &bytes[..bytes.len() / 2]);
    d.run(&["sample", "cut.safetensors"])
        .bad("damaged or truncated");
    // A file from a newer charrnn: same bytes, format version 9.
    let text = String::from_utf8_lossy(&bytes[..4096.min(bytes.len())]).into_owned();
    assert!(
        text.contains("\"format_version\":\"1\""),
        "header layout changed: update this test"
    );
    let mut newer = bytes.clone();
    let pos = bytes
        .windows(20)
        .position(|w| w == b"\"format_version\":\"1\"")
        .unwrap();
    newer[pos + 18] = b'9';
    d.write("newer.safetensors", &newer);
    d.run(&["sample", "newer.safetensors"])
        .bad("format version 9, newer than this charrnn reads");
}

#[test]
fn a_closed_pipe_ends_sampling_quietly() {
    let d = Dir::new("pipe");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "2"]).ok();
    let mut child = d
        .cmd(&[
            "sample",
            "run/last.safetensors",
            "--length",
            "10000000",
            "--seed",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 100];
    std::io::Read::read_exact(&mut out, &mut buf).unwrap();
    drop(out);
    let res = child.wait_with_output().unwrap();
    assert_eq!(
        res.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&res.stderr).contains("charrnn:"),
        "a broken pipe is not an error"
    );
}

#[test]
fn ctrl_c_saves_and_says_how_to_resume() {
    let d = Dir::new("sigint");
    let f = repetitive(&d);
    let mut args = vec![
        "train",
        f.to_str().unwrap(),
        "--out",
        "run",
        "--steps",
        "100000000",
    ];
    args.extend_from_slice(SMALL);
    let mut child = d.cmd(&args).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_training(&d.path("run"));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "stderr: {err}");
    assert!(err.contains("--resume"), "{err}");
    let ck = tensors(&d.path("run/last.safetensors"));
    assert!(ck.train.unwrap().state.step > 0);
    assert!(leftover_temp_files(&d.path("run")).is_empty());
}

#[test]
fn two_threads_are_deterministic_too() {
    let d = Dir::new("threads2");
    let f = repetitive(&d);
    for out in ["a", "b"] {
        d.run(&[
            "train",
            f.to_str().unwrap(),
            "--out",
            out,
            "--hidden",
            "48",
            "--batch",
            "8",
            "--seq",
            "32",
            "--threads",
            "2",
            "--steps",
            "20",
        ])
        .ok();
    }
    let (a, b) = (
        tensors(&d.path("a/last.safetensors")),
        tensors(&d.path("b/last.safetensors")),
    );
    assert!(
        a.params == b.params,
        "two runs with the same seed and 2 threads differ"
    );
}

#[test]
fn run_folder_has_config_metrics_plot_and_rotated_step_checkpoints() {
    let d = Dir::new("runfolder");
    let f = repetitive(&d);
    train(
        &d,
        &f,
        "run",
        &[
            "--steps",
            "40",
            "--eval-every",
            "20",
            "--log-every",
            "5",
            "--keep",
            "1",
        ],
    )
    .ok();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("run/config.json")).unwrap()).unwrap();
    let bytes = std::fs::read(&f).unwrap();
    assert_eq!(
        config["corpus"]["sha256"],
        charrnn::data::sha256_hex(&bytes)
    );
    assert_eq!(config["corpus"]["bytes"], bytes.len());
    assert_eq!(config["model"]["hidden"], 48);
    assert_eq!(config["train"]["seed"], 1);
    assert!(config["commit"].is_string() && config["charrnn_version"].is_string());
    let metrics = charrnn::report::metrics::read_metrics(&d.path("run")).unwrap();
    let vals: Vec<_> = metrics
        .iter()
        .filter(|r| matches!(r, charrnn::report::metrics::Record::Val { .. }))
        .collect();
    assert_eq!(
        (metrics.len() - vals.len(), vals.len()),
        (8, 2),
        "8 log lines and 2 validations"
    );
    let svg = std::fs::read_to_string(d.path("run/loss.svg")).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("characters seen")
            && svg.contains("loss (nats/char)")
    );
    let steps: Vec<String> = std::fs::read_dir(d.path("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    assert_eq!(
        steps,
        vec!["step-0000040.safetensors".to_string()],
        "--keep 1 keeps only the newest"
    );

    // Resuming appends to the same log.
    resume(&d, &f, "run/last.safetensors", "60").ok();
    let after = charrnn::report::metrics::read_metrics(&d.path("run")).unwrap();
    assert!(after.len() > metrics.len() && after[..metrics.len()] == metrics[..]);

    // Two runs on one chart; only SVG can be drawn.
    train(
        &d,
        &f,
        "other",
        &["--steps", "20", "--eval-every", "10", "--log-every", "5"],
    )
    .ok();
    d.run(&["plot", "run", "other", "--out", "both.svg"]).ok();
    let both = std::fs::read_to_string(d.path("both.svg")).unwrap();
    assert!(both.contains("run validation") && both.contains("other validation"));
    for colour in ["#1f77b4", "#d62728"] {
        // per run: train and validation curves and their two legend swatches
        let lines = both
            .lines()
            .filter(|l| l.contains("<polyline") && l.to_lowercase().contains(colour))
            .count();
        assert_eq!(lines, 4, "{colour}");
    }
    d.run(&["plot", "run", "other", "--out", "both.png"]).ok();
    let png = std::fs::read(d.path("both.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000);
    d.run(&["plot", "run", "--out", "both.jpg"])
        .bad(".svg or .png");
    d.run(&["plot", "fox.txt"]).bad("not a run folder");
}

#[test]
fn patience_stops_a_run_that_no_longer_improves() {
    let d = Dir::new("patience");
    // Training text all 'a', validation all 'b': learning the first can only hurt the second.
    let f = d.write(
        "ab.txt",
        format!("{}{}", "a".repeat(9000), "b".repeat(1000)),
    );
    let r = train(
        &d,
        &f,
        "run",
        &[
            "--steps",
            "100",
            "--eval-every",
            "1",
            "--patience",
            "2",
            "--lr",
            "0.01",
        ],
    )
    .ok();
    assert!(
        r.stderr().contains("stopped early: no improvement"),
        "{}",
        r.stderr()
    );
    assert_eq!(
        tensors(&d.path("run/last.safetensors"))
            .train
            .unwrap()
            .state
            .step,
        3
    );
}

#[test]
fn eval_info_and_novelty_report_on_a_checkpoint() {
    let d = Dir::new("eval");
    let f = repetitive(&d);
    train(
        &d,
        &f,
        "run",
        &["--steps", "300", "--eval-every", "300", "--lr", "0.01"],
    )
    .ok();
    let e = d
        .run(&["eval", "run/best.safetensors", "fox.txt"])
        .ok()
        .stdout();
    assert!(e.contains("bits/char") && e.contains("perplexity"), "{e}");
    let bpc: f64 = e
        .split(" nats/char")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bpc < 0.3, "a memorised text scores low: {e}");
    d.write(
        "odd.txt",
        "the quick brown fox jumps over the lazy dog. Zürich €\n".repeat(20),
    );
    let e = d
        .run(&["eval", "run/best.safetensors", "odd.txt"])
        .ok()
        .stdout();
    assert!(
        e.contains("outside the vocabulary") && e.contains("'€'×20"),
        "{e}"
    );
    // Nothing the model knows: the error says the characters are outside its vocabulary.
    d.write("cjk.txt", "日本語\n");
    d.run(&["eval", "run/best.safetensors", "cjk.txt"])
        .bad("cjk.txt has 1 usable character(s) (3 of its 4 characters are outside the model's vocabulary, e.g. '日' '本' '語'); it needs at least 2");
    let info = d.run(&["info", "run/best.safetensors"]).ok().stdout();
    for needle in ["parameters", "vocabulary", "step 300", "best 0.", "fox.txt"] {
        assert!(info.contains(needle), "{needle:?} missing from:\n{info}");
    }
    let s = d
        .run(&[
            "sample",
            "run/best.safetensors",
            "--temperature",
            "0",
            "--length",
            "300",
            "--check-novelty",
            "fox.txt",
        ])
        .ok();
    assert!(
        s.stderr()
            .contains("novelty: 0.0% of the 281 sampled 20-grams"),
        "{}",
        s.stderr()
    );
}

#[test]
fn trains_on_a_folder_of_files_skipping_binaries() {
    let d = Dir::new("folder");
    std::fs::create_dir_all(d.path("texts/sub")).unwrap();
    d.write("texts/a.txt", LINE.repeat(200));
    d.write("texts/sub/b.txt", LINE.to_uppercase().repeat(200));
    d.write("texts/logo.png", [0x89u8, b'P', b'N', b'G', 0, 0, 0, 13]);
    d.write("texts/.hidden", "never read");
    let r = d
        .run(&[
            "train", "texts", "--out", "run", "--steps", "2", "--batch", "4", "--seq", "16",
            "--hidden", "8",
        ])
        .ok();
    let err = r.stderr();
    assert!(
        err.contains("2 files from texts") && err.contains("1 files skipped"),
        "{err}"
    );
    let v = tensors(&d.path("run/last.safetensors")).vocab;
    assert!(
        v.chars.contains(&'Q') && v.chars.contains(&'q'),
        "both files were read"
    );
    // Several files on the command line work too.
    d.run(&[
        "train",
        "texts/a.txt",
        "texts/sub/b.txt",
        "--out",
        "run2",
        "--steps",
        "2",
        "--batch",
        "4",
        "--seq",
        "16",
        "--hidden",
        "8",
    ])
    .ok();
}

#[test]
fn a_failed_save_says_so_and_leaves_the_other_checkpoints_intact() {
    let d = Dir::new("savefail");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "5"]).ok();
    std::fs::copy(d.path("run/last.safetensors"), d.path("ck.safetensors")).unwrap();
    let best_before = std::fs::read(d.path("run/best.safetensors")).unwrap();
    // last.safetensors becomes a non-empty folder: renaming a file over it must fail.
    std::fs::remove_file(d.path("run/last.safetensors")).unwrap();
    std::fs::create_dir_all(d.path("run/last.safetensors/blocker")).unwrap();
    let r = d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "ck.safetensors",
        "--out",
        "run",
        "--steps",
        "10",
        "--threads",
        "1",
    ]);
    r.bad("cannot write run/last.safetensors");
    assert_eq!(
        std::fs::read(d.path("run/best.safetensors")).unwrap(),
        best_before
    );
    assert!(leftover_temp_files(&d.path("run")).is_empty());
}

/// A one-thread HTTP server on 127.0.0.1 that serves `body` at the Gutenberg path of book
/// 27200 and 404 elsewhere, for at most `requests` requests. Returns its base URL.
fn gutenberg_server(body: Vec<u8>, requests: usize) -> String {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let found = request.starts_with("GET /cache/epub/27200/pg27200.txt ");
            let (status, content): (&str, &[u8]) = if found {
                ("200 OK", &body)
            } else {
                ("404 Not Found", b"no such book")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                content.len()
            );
            let _ = stream.write_all(content);
        }
    });
    base
}

#[test]
fn fetches_a_gutenberg_book_strips_the_licence_and_trains_on_it() {
    let d = Dir::new("gutenberg");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let raw = std::fs::read(fixtures.join("gutenberg-sample.txt")).unwrap();
    let want = std::fs::read_to_string(fixtures.join("gutenberg-sample.book.txt")).unwrap();
    let base = gutenberg_server(raw.repeat(1), 3);
    let r = d
        .run(&[
            "fetch",
            "gutenberg",
            "27200",
            "--mirror",
            &base,
            "--cache",
            "cache",
        ])
        .ok();
    let path = PathBuf::from(r.stdout().trim());
    assert_eq!(path, PathBuf::from("cache/gutenberg-27200.txt"));
    let got = std::fs::read_to_string(d.path("cache/gutenberg-27200.txt")).unwrap();
    assert_eq!(got, want, "the book, without header and footer, CRLF kept");
    // A second fetch is served from the cache (the server is not asked again).
    d.run(&[
        "fetch",
        "gutenberg",
        "27200",
        "--mirror",
        "http://127.0.0.1:9",
        "--cache",
        "cache",
    ])
    .ok();
    d.run(&[
        "fetch",
        "gutenberg",
        "4",
        "--mirror",
        &base,
        "--cache",
        "cache",
    ])
    .bad("no plain-text book 4");
    // No server at all: one line telling the user to pass a local file.
    d.run(&[
        "fetch",
        "gutenberg",
        "5",
        "--mirror",
        "http://127.0.0.1:9",
        "--cache",
        "cache",
    ])
    .bad("pass the local file");
    // train --gutenberg uses the same cache.
    let r = d
        .run(&[
            "train",
            "--gutenberg",
            "27200",
            "--cache",
            "cache",
            "--out",
            "run",
            "--steps",
            "2",
            "--batch",
            "4",
            "--seq",
            "16",
            "--hidden",
            "8",
            "--val-frac",
            "0.2",
        ])
        .ok();
    assert!(r.stderr().contains("gutenberg-27200.txt"), "{}", r.stderr());
}

#[test]
fn save_every_minutes_writes_checkpoints_between_validations() {
    let d = Dir::new("timed");
    let f = repetitive(&d);
    // A save every 6 ms of wall-clock time, no validation until the end.
    train(
        &d,
        &f,
        "run",
        &[
            "--steps",
            "200",
            "--eval-every",
            "1000",
            "--save-every-minutes",
            "0.0001",
            "--keep",
            "500",
        ],
    )
    .ok();
    let steps = std::fs::read_dir(d.path("run"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("step-")
        })
        .count();
    assert!(
        steps > 2,
        "only {steps} step checkpoints: timed saves did not happen"
    );
    let metrics = charrnn::report::metrics::read_metrics(&d.path("run")).unwrap();
    assert_eq!(
        metrics
            .iter()
            .filter(|r| matches!(r, charrnn::report::metrics::Record::Val { .. }))
            .count(),
        1,
        "saves are not validations"
    );
}

#[test]
fn cosine_schedule_with_warmup_and_weight_decay_resume_exactly() {
    let d = Dir::new("schedule");
    let f = repetitive(&d);
    let flags = [
        "--lr-schedule",
        "cosine",
        "--warmup",
        "5",
        "--weight-decay",
        "0.1",
        "--eval-every",
        "1000",
        "--log-every",
        "5",
    ];
    fn with<'a>(steps: &'a str, flags: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--steps", steps];
        v.extend_from_slice(flags);
        v
    }
    train(&d, &f, "one", &with("40", &flags)).ok();
    // The same 2000-step plan twice: once in one go, once interrupted by Ctrl-C wherever it
    // happens to be, then resumed. The cosine spans the planned steps, so the two must agree.
    train(&d, &f, "long", &with("2000", &flags)).ok();
    let mut args = vec!["train", f.to_str().unwrap(), "--out", "cut"];
    args.extend_from_slice(SMALL);
    args.extend(with("2000", &flags));
    let mut child = d.cmd(&args).stderr(Stdio::null()).spawn().unwrap();
    wait_for_training(&d.path("cut"));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let cut_at = tensors(&d.path("cut/last.safetensors"))
        .train
        .unwrap()
        .state
        .step;
    assert!(cut_at > 0 && cut_at < 2000, "interrupted at step {cut_at}");
    resume(&d, &f, "cut/last.safetensors", "2000").ok();
    let (long, cut) = (
        tensors(&d.path("long/last.safetensors")),
        tensors(&d.path("cut/last.safetensors")),
    );
    assert!(
        long.params == cut.params,
        "interrupted at {cut_at} and resumed, the run differs from the one in one go"
    );

    // The rate ramps up over 5 steps, then falls along the cosine towards a tenth of 4e-3 (the
    // LSTM's default rate).
    let lrs: Vec<f64> = charrnn::report::metrics::read_metrics(&d.path("one"))
        .unwrap()
        .iter()
        .filter_map(|r| match r {
            charrnn::report::metrics::Record::Train { lr, .. } => Some(*lr),
            _ => None,
        })
        .collect();
    assert_eq!(lrs.len(), 8);
    assert!(
        (lrs[0] - 4e-3).abs() < 1e-12,
        "step 5 is the first after warm-up: {lrs:?}"
    );
    assert!(lrs.windows(2).all(|w| w[1] < w[0]), "falls: {lrs:?}");
    assert!(lrs[7] < 6e-4 && lrs[7] >= 4e-4, "ends near 4e-4: {lrs:?}");

    // Weight decay shrinks the weight matrices, not the biases.
    train(
        &d,
        &f,
        "nodecay",
        &[
            "--steps",
            "40",
            "--lr-schedule",
            "cosine",
            "--warmup",
            "5",
            "--eval-every",
            "1000",
        ],
    )
    .ok();
    let plain = tensors(&d.path("nodecay/last.safetensors"));
    let one = tensors(&d.path("one/last.safetensors"));
    let layout = charrnn::model::Layout::new(one.model);
    let norm = |p: &[f32], name: &str| {
        let t = layout.find(name).unwrap();
        p[t.offset..t.offset + t.len]
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
    };
    assert!(norm(&one.params, "lstm.weight_hh_l0") < norm(&plain.params, "lstm.weight_hh_l0"));
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "one/last.safetensors",
        "--steps",
        "50",
        "--weight-decay",
        "0",
    ])
    .bad("--weight-decay 0");
}

#[test]
fn dropout_runs_resume_exactly_and_differ_from_plain_runs() {
    let d = Dir::new("dropout");
    let f = repetitive(&d);
    train(
        &d,
        &f,
        "one",
        &[
            "--steps",
            "30",
            "--dropout",
            "0.3",
            "--eval-every",
            "1000",
            "--lr-schedule",
            "constant",
        ],
    )
    .ok();
    train(
        &d,
        &f,
        "two",
        &[
            "--steps",
            "15",
            "--dropout",
            "0.3",
            "--eval-every",
            "1000",
            "--lr-schedule",
            "constant",
        ],
    )
    .ok();
    resume(&d, &f, "two/last.safetensors", "30").ok();
    train(
        &d,
        &f,
        "plain",
        &[
            "--steps",
            "30",
            "--eval-every",
            "1000",
            "--lr-schedule",
            "constant",
        ],
    )
    .ok();
    let (one, two, plain) = (
        tensors(&d.path("one/last.safetensors")),
        tensors(&d.path("two/last.safetensors")),
        tensors(&d.path("plain/last.safetensors")),
    );
    assert!(
        one.params == two.params,
        "the masks after a resume must be the ones of the run in one go"
    );
    assert!(one.params != plain.params, "dropout must change the run");
    d.run(&["train", f.to_str().unwrap(), "--dropout", "1"])
        .bad("--dropout must be in [0, 1)");
}

#[test]
fn sample_reports_its_log_probability_and_checks_top_p() {
    let d = Dir::new("logprob");
    let f = repetitive(&d);
    train(
        &d,
        &f,
        "run",
        &["--steps", "300", "--lr", "0.01", "--eval-every", "1000"],
    )
    .ok();
    let s = d
        .run(&[
            "sample",
            "run/last.safetensors",
            "--temperature",
            "0",
            "--prime",
            "the",
            "--length",
            "200",
            "--show-logprob",
        ])
        .ok();
    let err = s.stderr();
    let bpc: f64 = err
        .split(" nats (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .expect(&err);
    assert!(bpc < 0.2, "a recited text is nearly certain: {err}");
    let nucleus = d
        .run(&[
            "sample",
            "run/last.safetensors",
            "--top-p",
            "0.5",
            "--prime",
            "the quick",
            "--length",
            "40",
            "--seed",
            "9",
        ])
        .ok()
        .stdout();
    assert!(
        nucleus.starts_with("the quick brown fox"),
        "top-p 0.5 keeps only the obvious next character here: {nucleus}"
    );
    d.run(&["sample", "run/last.safetensors", "--top-p", "0"])
        .bad("--top-p must be in (0, 1]");
}

#[test]
fn num_samples_draws_several_streams_from_one_seed() {
    let d = Dir::new("numsamples");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "40", "--eval-every", "1000"]).ok();
    let args = [
        "sample",
        "run/last.safetensors",
        "--num-samples",
        "3",
        "--seed",
        "2",
        "--length",
        "100",
        "--prime",
        "the",
        "--show-logprob",
    ];
    let a = d.run(&args).ok();
    let b = d.run(&args).ok();
    assert_eq!(a.stdout(), b.stdout(), "one seed, the same three samples");
    let out = a.stdout();
    assert!(
        out.contains("--- sample 2 of 3 ---\nthe") && out.contains("--- sample 3 of 3 ---\nthe"),
        "{out}"
    );
    let parts: Vec<&str> = out.split("\n--- sample ").collect();
    assert_eq!(parts.len(), 3);
    assert!(parts[1] != parts[2], "different streams");
    assert_eq!(a.stderr().matches("log-probability of sample").count(), 3);
    d.run(&["sample", "run/last.safetensors", "--num-samples", "0"])
        .bad("--num-samples must be at least 1");
}

#[test]
fn an_embedding_model_trains_samples_and_names_its_tensor_like_pytorch() {
    let d = Dir::new("embed");
    let f = repetitive(&d);
    train(
        &d,
        &f,
        "run",
        &[
            "--embed",
            "16",
            "--steps",
            "300",
            "--lr",
            "0.01",
            "--eval-every",
            "1000",
        ],
    )
    .ok();
    let ck = tensors(&d.path("run/last.safetensors"));
    assert_eq!(ck.model.embed, 16);
    let tf = charrnn::checkpoint::TensorFile::open(&d.path("run/last.safetensors")).unwrap();
    assert_eq!(
        tf.f32("embed.weight", Some(&[29, 16])).unwrap().len(),
        29 * 16
    );
    assert_eq!(
        tf.f32("lstm.weight_ih_l0", Some(&[4 * 48, 16]))
            .unwrap()
            .len(),
        4 * 48 * 16
    );
    let s = d
        .run(&[
            "sample",
            "run/last.safetensors",
            "--temperature",
            "0",
            "--prime",
            "the quick",
            "--length",
            "30",
        ])
        .ok();
    assert!(
        s.stdout().starts_with("the quick brown fox jumps over"),
        "{}",
        s.stdout()
    );
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "run/last.safetensors",
        "--embed",
        "8",
    ])
    .bad("--embed 8");
}

/// A text with about 2,000 distinct characters (CJK ideographs): 400 "words" of 3 to 6
/// characters, each character used by one word only, in a random order.
fn large_vocabulary_text() -> String {
    let mut rng = charrnn::rng::Rng::new(42);
    let mut next = 0x4E00u32;
    let words: Vec<String> = (0..400)
        .map(|_| {
            let len = 3 + (rng.next_u64() % 4) as usize;
            (0..len)
                .map(|_| {
                    next += 1;
                    char::from_u32(next).unwrap()
                })
                .collect()
        })
        .collect();
    (0..20_000)
        .map(|_| words[(rng.next_u64() % 400) as usize].as_str())
        .collect::<Vec<_>>()
        .join("")
}

#[test]
fn a_large_vocabulary_trains_well_below_a_unigram_model() {
    let d = Dir::new("bigvocab");
    let text = large_vocabulary_text();
    let f = d.write("words.txt", &text);
    // The character-frequency model's loss on the validation part (the last 10 %).
    let chars: Vec<char> = text.chars().collect();
    let split = (chars.len() as f64 * 0.9) as usize;
    let mut counts = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_insert(0usize) += 1;
    }
    let n = chars.len() as f64;
    let val = &chars[split..];
    let unigram: f64 = val[1..]
        .iter()
        .map(|c| -(counts[c] as f64 / n).ln())
        .sum::<f64>()
        / (val.len() - 1) as f64;
    assert!(counts.len() > 1800, "{} distinct characters", counts.len());
    let r = d
        .run(&[
            "train",
            f.to_str().unwrap(),
            "--out",
            "run",
            "--embed",
            "32",
            "--hidden",
            "64",
            "--batch",
            "16",
            "--seq",
            "32",
            "--steps",
            "400",
            "--lr",
            "0.01",
            "--eval-every",
            "1000",
            "--threads",
            "2",
        ])
        .ok();
    let err = r.stderr();
    let loss: f64 = err
        .lines()
        .filter_map(|l| l.split("validation loss ").nth(1))
        .next_back()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect(&err);
    eprintln!("large vocabulary: validation {loss:.3} vs unigram {unigram:.3} nats/char");
    assert!(
        loss < 0.4 * unigram,
        "validation loss {loss:.3} is not well below the unigram model's {unigram:.3}"
    );
}

#[test]
fn gru_and_rnn_models_train_resume_exactly_and_sample() {
    let d = Dir::new("cells");
    let f = repetitive(&d);
    for (cell, gates, label) in [("gru", 3, "GRU"), ("rnn", 1, "RNN")] {
        let (one, part) = (format!("{cell}-one"), format!("{cell}-part"));
        let flags = [
            "--cell",
            cell,
            "--lr",
            "0.01",
            "--eval-every",
            "7",
            "--lr-schedule",
            "constant",
        ];
        let steps = |n: &'static str| [&flags[..], &["--steps", n]].concat();
        let r = train(&d, &f, &one, &steps("20")).ok();
        assert!(
            r.stderr().contains(&format!("charrnn: {label} 2×48")),
            "{}",
            r.stderr()
        );
        train(&d, &f, &part, &steps("13")).ok();
        resume(&d, &f, &format!("{part}/last.safetensors"), "20").ok();
        let (a, b) = (
            tensors(&d.path(&format!("{one}/last.safetensors"))),
            tensors(&d.path(&format!("{part}/last.safetensors"))),
        );
        assert_eq!(a.model.cell.name(), cell);
        assert!(
            a.params == b.params,
            "{cell}: resumed run differs from one run"
        );
        let path = d.path(&format!("{one}/last.safetensors"));
        let tf = charrnn::checkpoint::TensorFile::open(&path).unwrap();
        let name = format!("{cell}.weight_hh_l1");
        assert_eq!(
            tf.f32(&name, Some(&[gates * 48, 48])).unwrap().len(),
            gates * 48 * 48
        );
        let info = d.run(&["info", path.to_str().unwrap()]).ok().stdout();
        assert!(
            info.contains(&format!("model: {label}, 2 layer(s)")),
            "{info}"
        );
        let sample = |seed| {
            d.run(&[
                "sample",
                path.to_str().unwrap(),
                "--seed",
                seed,
                "--length",
                "200",
            ])
            .ok()
            .stdout()
        };
        let s = sample("4");
        assert_eq!(s, sample("4"));
        assert_eq!(s.chars().count(), 201);
        d.run(&[
            "train",
            f.to_str().unwrap(),
            "--resume",
            path.to_str().unwrap(),
            "--cell",
            "lstm",
        ])
        .bad(&format!("--cell lstm (the checkpoint has {cell})"));
    }
}

#[test]
fn a_gru_learns_a_repetitive_text() {
    let d = Dir::new("gru-learns");
    let f = repetitive(&d);
    train(
        &d,
        &f,
        "run",
        &[
            "--cell",
            "gru",
            "--steps",
            "300",
            "--lr",
            "0.01",
            "--dropout",
            "0",
        ],
    )
    .ok();
    let s = d
        .run(&[
            "sample",
            "run/last.safetensors",
            "--temperature",
            "0",
            "--prime",
            "the quick",
            "--length",
            "60",
        ])
        .ok();
    assert!(
        s.stdout()
            .starts_with("the quick brown fox jumps over the lazy dog."),
        "{}",
        s.stdout()
    );
}

/// The `charrnn: sizing: …` line of a run's stderr.
fn sizing_line(r: &Run) -> String {
    r.stderr()
        .lines()
        .find(|l| l.starts_with("charrnn: sizing: "))
        .unwrap_or_else(|| panic!("no sizing line in:\n{}", r.stderr()))
        .to_string()
}

#[test]
fn without_hidden_the_budget_chooses_the_size_and_the_dropout_and_says_why() {
    let d = Dir::new("autosize");
    let f = repetitive(&d);
    let fs = f.to_str().unwrap();
    let base = ["--batch", "8", "--seq", "32", "--threads", "1"];
    // A step budget on 15k training characters: even the smallest size has more parameters.
    let r = d
        .run(&[&["train", fs, "--out", "steps", "--steps", "3"][..], &base].concat())
        .ok();
    let line = sizing_line(&r);
    assert!(line.contains("hidden 32: the smallest"), "{line}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("steps/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["model"]["hidden"], 32);
    assert_eq!(
        config["train"]["dropout"], 0.0,
        "3 steps are far below one pass"
    );
    assert_eq!(config["train"]["lr_schedule"], "cosine");
    assert_eq!(config["sizing"].as_str(), Some(line.as_str()));
    // A time budget: the sizes are timed on this machine, and the run says what it measured.
    let r = d
        .run(
            &[
                &["train", fs, "--out", "time", "--minutes", "0.02"][..],
                &base,
            ]
            .concat(),
        )
        .ok();
    let line = sizing_line(&r);
    assert!(line.contains("chars/s"), "{line}");
    assert!(line.contains("passes over"), "{line}");
    assert!(line.contains("stored for later runs"), "{line}");
    assert!(d.cache().join("probes.json").exists());
    // Another seed, the same shape: it probes again and, unless the machine's speed moved by
    // more than the tolerance (then it says so), sizes with the stored probe: the same size.
    let r = d
        .run(
            &[
                &[
                    "train",
                    fs,
                    "--out",
                    "again",
                    "--minutes",
                    "0.02",
                    "--seed",
                    "9",
                ][..],
                &base,
            ]
            .concat(),
        )
        .ok();
    let again = sizing_line(&r);
    let hidden = |dir: &str| {
        let c: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.path(&format!("{dir}/config.json"))).unwrap(),
        )
        .unwrap();
        c["model"]["hidden"].clone()
    };
    if again.contains("stored probe of") {
        assert_eq!(hidden("again"), hidden("time"), "{line}\n{again}");
    } else {
        assert!(again.contains("which it replaces"), "{again}");
    }
    // Minutes and epochs: the run stops at the first, so a minute's many passes over 15k
    // characters must not size it when one epoch ends it (no dropout for one pass).
    let r = d
        .run(
            &[
                &[
                    "train",
                    fs,
                    "--out",
                    "both",
                    "--minutes",
                    "1",
                    "--epochs",
                    "1",
                ][..],
                &base,
            ]
            .concat(),
        )
        .ok();
    let line = sizing_line(&r);
    assert!(
        line.contains("end the run after 1.0 passes") && line.contains("dropout 0 for"),
        "{line}"
    );
    // Given flags win; dropout still follows the passes over the text: a 1,800-character text
    // is 6 steps of 8 × 32 per epoch, so 66 steps are 11 passes (0.25 by passes alone), and 2×48
    // has about 18 recurrent parameters per training character: 0.4.
    let short = d.write("short.txt", LINE.repeat(40));
    let r = train(
        &d,
        &short,
        "given",
        &["--steps", "66", "--eval-every", "1000"],
    )
    .ok();
    let line = sizing_line(&r);
    assert!(
        line.contains("hidden 48 as given") && line.contains("dropout 0.4 for"),
        "{line}"
    );
    // A resumed run keeps its settings without sizing again.
    let r = resume(&d, &short, "given/last.safetensors", "67").ok();
    assert!(!r.stderr().contains("sizing"), "{}", r.stderr());
}

/// `format-v1-lstm-2x16.safetensors` was written by charrnn before the source moved into
/// folders and the checkpoint code onto the `safetensors` crate (commit aac5f64: `train fox.txt
/// --hidden 16 --batch 4 --seq 16 --steps 30 --threads 1 --seed 3`, the text below), and
/// `…-step40` by resuming it to step 40 with that same build. Today's build must read both,
/// sample the same text from them and resume to the same weights, bit for bit.
#[test]
fn checkpoints_written_before_the_layout_change_load_sample_and_resume_exactly() {
    let d = Dir::new("oldformat");
    let f = repetitive(&d);
    let old = fixture("format-v1-lstm-2x16.safetensors");
    let old = old.to_str().unwrap();
    let s = d
        .run(&[
            "sample",
            old,
            "--seed",
            "5",
            "--length",
            "60",
            "--temperature",
            "0.8",
            "--prime",
            "the ",
        ])
        .ok();
    assert_eq!(
        s.stdout(),
        "the eopultlughzdgsmvqukrgj wovbamuqgshmnhoenfnjbzdw xhm bnsrnidu\n"
    );
    let e = d.run(&["eval", old, f.to_str().unwrap()]).ok();
    assert!(e.stdout().contains("3.2887 nats/char"), "{}", e.stdout());
    d.run(&["info", old]).ok();
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        old,
        "--steps",
        "40",
        "--threads",
        "1",
        "--out",
        "run",
        "--sample-every",
        "0",
        "--keep",
        "0",
    ])
    .ok();
    let got = tensors(&d.path("run/last.safetensors"));
    let want = tensors(&fixture("format-v1-lstm-2x16-step40.safetensors"));
    assert!(got.params == want.params, "weights differ after resuming");
    let (g, w) = (got.train.unwrap(), want.train.unwrap());
    assert_eq!(g.state.step, 40);
    assert!(g.resume == w.resume, "Adam moments or carried state differ");
}

#[test]
fn a_run_that_stopped_early_is_resumed_only_with_more_patience() {
    let d = Dir::new("early");
    // Characters drawn at random: nothing to learn, so validation soon stops improving.
    let mut x: u64 = 7;
    let text: String = (0..20_000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (b'a' + (x >> 59) as u8 % 26) as char
        })
        .collect();
    let f = d.write("noise.txt", &text);
    let r = train(
        &d,
        &f,
        "run",
        &["--steps", "5000", "--eval-every", "10", "--patience", "2"],
    )
    .ok();
    assert!(r.stderr().contains("stopped early"), "{}", r.stderr());
    // It would validate once and stop again: refused before any work, the folder as it was.
    let before = std::fs::read(d.path("run/last.safetensors")).unwrap();
    d.run(&["train", f.to_str().unwrap(), "--resume", "run/last.safetensors", "--steps", "6000", "--patience", "2"])
        .bad("its validation loss has not improved for 2 validations (--patience 2), so it would stop again at once; give --patience more than 2 to train on");
    // The run's --patience is in its checkpoint: a plain --resume keeps it (the default, 10,
    // would train on).
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "run/last.safetensors",
        "--steps",
        "6000",
    ])
    .bad("(--patience 2), so it would stop again at once");
    assert_eq!(
        std::fs::read(d.path("run/last.safetensors")).unwrap(),
        before
    );
    // More patience trains on.
    let r = d
        .run(&[
            "train",
            f.to_str().unwrap(),
            "--resume",
            "run/last.safetensors",
            "--steps",
            "6000",
            "--patience",
            "3",
            "--threads",
            "1",
        ])
        .ok();
    assert!(r.stderr().contains("step"), "{}", r.stderr());
}
