//! What people trip over (issue: text encodings, one run per folder, divergence, checkpoints
//! that lie, the controls users keep asking for, a newcomer's first hour): each case is run
//! as a user would, on the built binary.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// A fox model that has learned its line (greedy sampling recites it).
fn fox_model(d: &Dir) -> std::path::PathBuf {
    let f = repetitive(d);
    train(
        d,
        &f,
        "fox",
        &["--steps", "300", "--eval-every", "300", "--lr", "0.01"],
    )
    .ok();
    d.path("fox/best.safetensors")
}

fn utf16(text: &str) -> Vec<u8> {
    let mut b = vec![0xFF, 0xFE];
    b.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    b
}

#[test]
fn texts_in_utf16_and_legacy_encodings_are_read_as_text() {
    let d = Dir::new("encodings");
    // A Windows "Unicode" text (UTF-16 LE with its mark) is text, not binary.
    d.write("u16.txt", utf16(&"Hello there. ".repeat(300)));
    let r = train(&d, &d.path("u16.txt"), "u16", &["--steps", "3"]).ok();
    assert!(
        r.stderr()
            .contains("decoding UTF-16LE (by its byte-order mark)"),
        "{}",
        r.stderr()
    );
    // Resume works with the same text saved as UTF-8: the fingerprint is of the decoded text.
    d.write("u8.txt", "Hello there. ".repeat(300));
    d.run(&[
        "train",
        "u8.txt",
        "--resume",
        "u16/last.safetensors",
        "--steps",
        "5",
    ])
    .ok();
    // A single-byte Western text: the error suggests --encoding windows-1252 and --lossy.
    d.write(
        "cp1252.txt",
        b"It\x92s a caf\xe9, na\xefve \xabmoi\xbb.\n".repeat(60),
    );
    let e = d.run(&["train", "cp1252.txt", "--steps", "1"]);
    e.bad("--encoding windows-1252");
    let r = train(
        &d,
        &d.path("cp1252.txt"),
        "cp",
        &["--steps", "3", "--encoding", "windows-1252"],
    )
    .ok();
    assert!(
        r.stderr()
            .contains("decoding windows-1252 (by its --encoding)"),
        "{}",
        r.stderr()
    );
    // The model knows ’ and é: eval, --prime-file and --check-novelty decode the same way.
    let ev = d
        .run(&[
            "eval",
            "cp/last.safetensors",
            "cp1252.txt",
            "--encoding",
            "windows-1252",
        ])
        .ok();
    assert!(
        !ev.stdout().contains("outside the vocabulary"),
        "{}",
        ev.stdout()
    );
    d.run(&["eval", "cp/last.safetensors", "cp1252.txt"])
        .bad("--encoding windows-1252");
    d.write("prime.txt", utf16("It’s a café"));
    let s = d
        .run(&[
            "sample",
            "cp/last.safetensors",
            "--prime-file",
            "prime.txt",
            "--length",
            "10",
            "--seed",
            "1",
            "--check-novelty",
            "cp1252.txt",
            "--encoding",
            "windows-1252",
        ])
        .ok();
    assert!(s.stdout().starts_with("It’s a café"), "{}", s.stdout());
    assert!(s.stderr().contains("novelty:"), "{}", s.stderr());
}

/// Starts a long training into `out` and waits until it is stepping.
fn long_run(d: &Dir, f: &Path, out: &str) -> std::process::Child {
    let mut args = vec![
        "train",
        f.to_str().unwrap(),
        "--out",
        out,
        "--steps",
        "100000000",
        "--eval-every",
        "5",
    ];
    args.extend_from_slice(SMALL);
    let child = d.cmd(&args).stderr(Stdio::null()).spawn().unwrap();
    wait_for_training(&d.path(out));
    for _ in 0..600 {
        if d.path(&format!("{out}/last.safetensors")).is_file() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}

#[test]
fn a_run_holds_its_folder_for_its_whole_life_and_readers_are_never_blocked() {
    let d = Dir::new("lock");
    let f = repetitive(&d);
    let mut first = long_run(&d, &f, "run");
    let pid = first.id().to_string();
    // A second training, or a resume, into the folder in use: refused, naming what holds it.
    let second = train(&d, &f, "run", &["--steps", "5"]);
    let err = second.stderr();
    second.bad("run is in use by another training");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "run/last.safetensors",
    ])
    .bad("is in use by another training");
    // Reading is never blocked.
    d.run(&[
        "sample",
        "run/last.safetensors",
        "--length",
        "5",
        "--seed",
        "1",
    ])
    .ok();
    d.run(&["info", "run/last.safetensors"]).ok();
    d.run(&["eval", "run/last.safetensors", "fox.txt"]).ok();
    d.run(&["plot", "run", "--out", "chart.svg"]).ok();
    // A killed run leaves no stale lock (a new run replaces it: the folder holds its model).
    first.kill().unwrap();
    first.wait().unwrap();
    train(&d, &f, "run", &["--steps", "3", "--overwrite"]).ok();
}

#[test]
fn divergence_stops_the_run_with_exit_3_and_keeps_the_checkpoints_from_before() {
    let d = Dir::new("diverge");
    d.write(
        "text.txt",
        (0..1500)
            .map(|i| format!("line {i}: the quick brown fox.\n"))
            .collect::<String>(),
    );
    // From the first step, before the first validation: nothing is saved.
    let r = d.run(&[
        "train",
        "text.txt",
        "--eval-every",
        "500",
        "--lr",
        "100",
        "--clip",
        "0",
        "--hidden",
        "32",
        "--out",
        "now",
        "--threads",
        "1",
        "--steps",
        "300",
        "--sample-every",
        "0",
    ]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    let err = r.stderr();
    assert!(
        err.contains("training diverged at step")
            && err.contains("lower --lr (it is 100")
            && err.contains("keep --clip (it is 0")
            && err.contains("no checkpoint was written")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(!d.path("now/last.safetensors").exists());
    // A blow-up part way (the learning rate warms up towards 100): the checkpoints from
    // before it stay, and no diverged loss is ever called the best.
    let r = d.run(&[
        "train",
        "text.txt",
        "--lr",
        "100",
        "--warmup",
        "10000",
        "--clip",
        "0",
        "--hidden",
        "32",
        "--dropout",
        "0",
        "--out",
        "later",
        "--eval-every",
        "2",
        "--patience",
        "1000",
        "--threads",
        "1",
        "--steps",
        "1000",
        "--sample-every",
        "0",
    ]);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    let err = r.stderr();
    let at: u64 = err
        .split("training diverged at step ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    let kept = err
        .split("are from step ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(kept < at && kept > 0, "{err}");
    let last = tensors(&d.path("later/last.safetensors"))
        .train
        .unwrap()
        .state;
    assert_eq!(last.step, kept);
    let uniform = 29f64.ln(); // "line 0123456789: thequickbrownfox." has 29 distinct characters
    for l in err.lines().filter(|l| l.contains("best so far")) {
        let v: f64 = l
            .split("validation loss ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(v < uniform, "{l}");
    }
}

#[test]
fn a_checkpoint_whose_metadata_lies_is_one_error_line_not_a_panic() {
    let d = Dir::new("lies");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "2"]).ok();
    let bytes = std::fs::read(d.path("run/last.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta = header["__metadata__"].as_object_mut().unwrap();
    let mut model: serde_json::Value =
        serde_json::from_str(meta["model"].as_str().unwrap()).unwrap();
    model["hidden"] = 1_000_000_000u64.into();
    meta.insert("model".into(), model.to_string().into());
    let mut head = serde_json::to_vec(&header).unwrap();
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let mut lie = (head.len() as u64).to_le_bytes().to_vec();
    lie.extend(head);
    lie.extend(&bytes[8 + n..]);
    d.write("lie.safetensors", lie);
    for args in [
        vec!["sample", "lie.safetensors"],
        vec!["info", "lie.safetensors"],
        vec!["eval", "lie.safetensors", "fox.txt"],
        vec![
            "train",
            "fox.txt",
            "--resume",
            "lie.safetensors",
            "--out",
            "x",
        ],
    ] {
        d.run(&args)
            .bad("lie.safetensors is not a valid checkpoint: hidden size 1000000000");
    }
}

#[test]
fn stop_strings_end_each_sample_and_are_not_printed() {
    let d = Dir::new("stop");
    // A list of made-up names, one per line.
    let syll = [
        "ka", "lo", "mi", "ren", "ta", "vo", "shi", "an", "el", "dor",
    ];
    let names: String = (0..300)
        .map(|i| {
            let n = 2 + i % 2;
            let name: String = (0..n)
                .map(|k| syll[(i * 7 + k * 3 + i / 10) % syll.len()])
                .collect();
            let mut c = name.chars();
            let first = c.next().unwrap().to_ascii_uppercase();
            format!("{first}{}\n", c.as_str())
        })
        .collect();
    d.write("names.txt", &names);
    d.run(&[
        "train",
        "names.txt",
        "--out",
        "names",
        "--steps",
        "300",
        "--lr",
        "0.01",
        "--batch",
        "4",
        "--seq",
        "16",
        "--hidden",
        "48",
        "--threads",
        "1",
    ])
    .ok();
    let s = d
        .run(&[
            "sample",
            "names/last.safetensors",
            "--prime",
            "\n",
            "--stop",
            "\n",
            "--num-samples",
            "5",
            "--seed",
            "3",
            "--length",
            "40",
        ])
        .ok();
    let out = s.stdout();
    let samples: Vec<&str> = out.split("--- sample ").skip(1).collect();
    assert_eq!(samples.len(), 5, "{out}");
    for (k, smp) in samples.iter().enumerate() {
        // "K of 5 ---\n" + prime "\n" + the name + "\n"
        let body = smp.split_once("---\n").unwrap().1;
        let name = body.strip_prefix('\n').unwrap().trim_end_matches('\n');
        assert!(
            !name.is_empty() && !name.contains('\n') && name.chars().count() < 40,
            "sample {}: {body:?}",
            k + 1
        );
    }
    // A stop string in the middle of a learned line: the text ends just before it.
    let fox = fox_model(&d);
    let s = d
        .run(&[
            "sample",
            fox.to_str().unwrap(),
            "--prime",
            "the quick ",
            "--temperature",
            "0",
            "--stop",
            " jumps",
            "--stop",
            "zzz",
            "--length",
            "100",
        ])
        .ok();
    assert_eq!(s.stdout(), "the quick brown fox\n");
}

#[test]
fn a_prime_from_a_file_and_unknown_prime_characters() {
    let d = Dir::new("prime");
    let fox = fox_model(&d);
    let fox = fox.to_str().unwrap();
    d.write("prime.txt", "the lazy dog.\nthe quick ");
    let s = d
        .run(&[
            "sample",
            fox,
            "--prime-file",
            "prime.txt",
            "--temperature",
            "0",
            "--length",
            "5",
        ])
        .ok();
    assert_eq!(s.stdout(), "the lazy dog.\nthe quick brown\n");
    // Unknown characters: exit 2 naming them, or dropped with --skip-unknown.
    let e = d.run(&["sample", fox, "--prime", "Zürich the"]);
    let err = e.stderr();
    e.bad("'Z' 'ü'");
    assert!(err.contains("--skip-unknown"), "{err}");
    let s = d
        .run(&[
            "sample",
            fox,
            "--prime",
            "Zürich the",
            "--skip-unknown",
            "--length",
            "3",
            "--seed",
            "1",
        ])
        .ok();
    assert!(s.stdout().starts_with("rich the"), "{}", s.stdout());
    assert!(
        s.stderr()
            .contains("dropped 2 character(s) the model does not know: 'Z' 'ü'"),
        "{}",
        s.stderr()
    );
}

/// The "continue with: …" command of an interrupted run, as words.
fn resume_command(err: &str) -> Vec<String> {
    let cmd = err
        .split("continue with: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no resume command in: {err}"))
        .lines()
        .next()
        .unwrap();
    let words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
    assert_eq!(words[0], "charrnn");
    words[1..].to_vec()
}

/// Starts `args`, waits until it is stepping, sends SIGINT, and returns its stderr.
fn interrupt(d: &Dir, args: &[&str], out: &str) -> String {
    let mut child = d.cmd(args).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_training(&d.path(out));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{err}");
    err
}

#[test]
fn the_printed_resume_command_continues_the_same_run_exactly() {
    let d = Dir::new("resumecmd");
    let f = repetitive(&d);
    let fs = f.to_str().unwrap();
    let mut args = vec![
        "train",
        fs,
        "--out",
        "run",
        "--steps",
        "400",
        "--eval-every",
        "100",
    ];
    args.extend_from_slice(SMALL);
    let err = interrupt(&d, &args, "run");
    let words = resume_command(&err);
    assert!(
        words.contains(&"--threads".to_string()) && words.contains(&"--eval-every".to_string()),
        "{words:?}"
    );
    let r = d
        .run(&words.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    assert!(r.stderr().contains("done at step 400"), "{}", r.stderr());
    train(&d, &f, "one", &["--steps", "400", "--eval-every", "100"]).ok();
    let (a, b) = (
        tensors(&d.path("run/last.safetensors")),
        tensors(&d.path("one/last.safetensors")),
    );
    assert!(
        a.params == b.params,
        "an interrupted run resumed as printed differs from one run"
    );
    // A time budget continues too: the resumed run ends when the run's minutes are used.
    let mut args = vec![
        "train",
        fs,
        "--out",
        "timed",
        "--minutes",
        "0.08",
        "--hidden",
        "48",
    ];
    args.extend_from_slice(&SMALL[2..]);
    let err = interrupt(&d, &args, "timed");
    let words = resume_command(&err);
    let r = d
        .run(&words.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let err = r.stderr();
    assert!(err.contains("time budget reached"), "{err}");
    assert!(
        err.contains("0:00:05 of training")
            || err.contains("0:00:04 of training")
            || err.contains("0:00:06 of training"),
        "{err}"
    );
}

#[test]
fn a_cosine_run_extended_on_resume_says_its_schedule_is_replanned() {
    let d = Dir::new("extend");
    let f = repetitive(&d);
    train(&d, &f, "run", &["--steps", "20"]).ok();
    let r = d
        .run(&[
            "train",
            f.to_str().unwrap(),
            "--resume",
            "run/last.safetensors",
            "--steps",
            "40",
            "--threads",
            "1",
        ])
        .ok();
    let err = r.stderr();
    assert!(
        err.contains("the run's budget changes from step 20 to step 40")
            && err.contains("cosine learning-rate schedule is re-planned"),
        "{err}"
    );
    // Resuming a finished run without a budget says so.
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "run/last.safetensors",
    ])
    .bad("already at step 40 (target 40)");
}

#[test]
fn the_clock_counts_training_and_says_so() {
    let d = Dir::new("clock");
    let f = repetitive(&d);
    let r = train(&d, &f, "run", &["--minutes", "0.02", "--eval-every", "20"]).ok();
    let err = r.stderr();
    let closing = err.lines().last().unwrap();
    assert!(
        closing.contains("time budget reached")
            && closing.contains("of training (")
            && closing.contains("in all, with validation and saving)"),
        "{closing}"
    );
}

#[test]
fn small_frictions() {
    let d = Dir::new("frictions");
    let fox = fox_model(&d);
    let fox = fox.to_str().unwrap();
    // Greedy sampling does not print a seed: there is nothing to reproduce.
    let g = d
        .run(&["sample", fox, "--temperature", "0", "--length", "5"])
        .ok();
    assert!(!g.stderr().contains("--seed"), "{}", g.stderr());
    let s = d.run(&["sample", fox, "--length", "5"]).ok();
    assert!(s.stderr().contains("--seed"), "{}", s.stderr());
    // Every sample of several has its header.
    let n = d
        .run(&[
            "sample",
            fox,
            "--num-samples",
            "2",
            "--length",
            "5",
            "--seed",
            "1",
        ])
        .ok();
    assert!(
        n.stdout().starts_with("--- sample 1 of 2 ---\n"),
        "{}",
        n.stdout()
    );
    // plot without --out: one run redraws its own chart; several need --out.
    let p = d.run(&["plot", "fox"]).ok();
    assert!(p.stderr().contains("fox/loss.svg"), "{}", p.stderr());
    d.run(&["plot", "fox", "fox"]).bad("give --out");
    // info shows dropout, the schedule and the budget.
    let i = d.run(&["info", fox]).ok();
    let out = i.stdout();
    assert!(
        out.contains("dropout 0")
            && out.contains("lr schedule cosine")
            && out.contains("budget: step 300"),
        "{out}"
    );
}

#[test]
fn help_puts_a_first_run_first_and_shows_every_flag() {
    let d = Dir::new("help");
    let h = d.run(&["train", "--help"]).ok().stdout();
    let first_flags: Vec<&str> = h
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .take(5)
        .map(|l| l.split([' ', '<']).next().unwrap())
        .collect();
    assert_eq!(
        first_flags,
        ["minutes", "epochs", "steps", "out", "resume"],
        "{h}"
    );
    for heading in [
        "Input:",
        "Model",
        "Optimisation:",
        "Validation and checkpoints:",
        "Examples:",
    ] {
        assert!(h.contains(heading), "{heading} missing:\n{h}");
    }
    for flag in ["--encoding", "--val-chars", "--full-val"] {
        assert!(h.contains(flag), "{flag} missing");
    }
    let s = d.run(&["sample", "--help"]).ok().stdout();
    for flag in ["--stop", "--prime-file", "--skip-unknown", "--encoding"] {
        assert!(s.contains(flag), "{flag} missing");
    }
}
