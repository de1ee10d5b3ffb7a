//! Shared by the integration tests: a temp folder that removes itself, running the built
//! binary in it, and the small corpora and flags most tests use.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A temp folder that removes itself, with helpers to run charrnn inside it.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("charrnn-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    /// The cache folder the binary is given (`CHARRNN_CACHE`), beside the temp folder.
    pub fn cache(&self) -> PathBuf {
        self.0.with_extension("cache")
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_charrnn"));
        // Its own cache folder (stored probes, books): never the user's, and not inside the
        // folder a test may train on.
        c.args(args)
            .current_dir(&self.0)
            .env("CHARRNN_CACHE", self.cache())
            .stdin(Stdio::null());
        c
    }
    pub fn run(&self, args: &[&str]) -> Run {
        let args = args.iter().map(|a| a.to_string()).collect();
        Run(self.cmd(&[]).args(&args).output().unwrap(), args)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir_all(self.cache());
    }
}

/// A finished run of the binary and its arguments (empty when not known).
pub struct Run(pub Output, pub Vec<String>);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code(),
            0,
            "expected success; stderr:\n{}",
            self.stderr()
        );
        self
    }
    /// Bad input: exit 2, one `charrnn: …` line containing `needle`, and never a panic; every
    /// flag the error names is one the command accepts.
    pub fn bad(self, needle: &str) {
        let err = self.stderr();
        assert_eq!(self.code(), 2, "expected exit 2; stderr:\n{err}");
        assert!(!err.contains("panicked"), "panic: {err}");
        let first = err.lines().find(|l| l.starts_with("charrnn: "));
        assert!(first.is_some(), "no clear error line: {err}");
        assert!(
            !err.lines()
                .any(|l| l.starts_with("error: ") || l.starts_with("Usage: ")),
            "the argument parser's own lines: {err}"
        );
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
        let last = err.lines().last().unwrap_or_default();
        // The parser's "unexpected argument '--x'" names the flag the command lacks, rightly.
        let parser_refused = last.contains("unexpected argument '");
        if let Some(command) = subcommand(&self.1).filter(|_| !parser_refused) {
            let foreign = foreign_flags(&command, last);
            assert!(
                foreign.is_empty(),
                "the error names {foreign:?}, which `charrnn {}` does not accept: {last}",
                command.join(" ")
            );
        }
    }
}

pub const LINE: &str = "the quick brown fox jumps over the lazy dog.\n";

/// A small repetitive corpus: 16,200 characters of one line.
pub fn repetitive(d: &Dir) -> PathBuf {
    d.write("fox.txt", LINE.repeat(360))
}

/// Small, fast training flags for tests.
pub const SMALL: &[&str] = &[
    "--hidden",
    "48",
    "--layers",
    "2",
    "--batch",
    "8",
    "--seq",
    "32",
    "--threads",
    "1",
];

pub fn train(d: &Dir, file: &Path, out: &str, extra: &[&str]) -> Run {
    let mut args = vec!["train", file.to_str().unwrap(), "--out", out];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    d.run(&args)
}

/// Resumes the run in checkpoint `ckpt` on text `f` up to `steps` steps in all, on one thread.
pub fn resume(d: &Dir, f: &Path, ckpt: &str, steps: &str) -> Run {
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        ckpt,
        "--steps",
        steps,
        "--threads",
        "1",
    ])
}

pub fn tensors(path: &Path) -> charrnn::checkpoint::Checkpoint {
    charrnn::checkpoint::load(path).unwrap()
}

/// Waits (up to 60 s) until a run in `dir` has logged a training step, so that its Ctrl-C
/// handler is installed and it is mid-run; a fixed sleep would race on a loaded machine.
pub fn wait_for_training(dir: &Path) {
    let metrics = dir.join("metrics.jsonl");
    for _ in 0..6000 {
        if std::fs::read_to_string(&metrics).is_ok_and(|m| m.contains("\"kind\":\"train\"")) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "no training step logged in {} within 60 s",
        metrics.display()
    );
}

pub fn leftover_temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp") || n.contains("write-test"))
        .collect()
}

/// A file of tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The shipped tiny Shakespeare (`data/tinyshakespeare.txt`), as characters.
pub fn shakespeare_chars() -> Vec<char> {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tinyshakespeare.txt"))
        .unwrap()
        .chars()
        .collect()
}

/// A small model that writes recognisable text: a 2×64 LSTM trained on `text` (a file in `d`)
/// for `steps` steps, batch 32 × seq 64, lr 0.005, 2 threads, into `out`. Returns the path of
/// its last checkpoint.
pub fn train_small(d: &Dir, text: &str, out: &str, steps: &str) -> String {
    d.run(&[
        "train",
        text,
        "--out",
        out,
        "--hidden",
        "64",
        "--steps",
        steps,
        "--batch",
        "32",
        "--seq",
        "64",
        "--lr",
        "0.005",
        "--threads",
        "2",
        "--eval-every",
        steps,
        "--sample-every",
        "0",
    ])
    .ok();
    d.path(&format!("{out}/last.safetensors"))
        .to_str()
        .unwrap()
        .to_string()
}

/// A server child and its base URL; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `charrnn serve ARGS --port 0` and waits for the line with its address.
pub fn serve(d: &Dir, args: &[&str]) -> Server {
    let mut a = vec!["serve"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--port", "0", "--threads", "2"]);
    let mut child = d.cmd(&a).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let url = line
        .split("on http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .map(|a| format!("http://{a}"))
        .unwrap_or_else(|| panic!("no address in: {line}"));
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    Server { child, url }
}

/// The subcommand path (`["train"]`, `["fetch", "gutenberg"]`) an argument list runs, if any.
pub fn subcommand(args: &[String]) -> Option<Vec<String>> {
    use clap::CommandFactory;
    let mut cmd = charrnn::cli::Cli::command();
    let mut path = Vec::new();
    for a in args {
        match cmd.find_subcommand(a) {
            Some(sub) => {
                path.push(a.clone());
                cmd = sub.clone();
            }
            None => break,
        }
    }
    (!path.is_empty()).then_some(path)
}

/// The long flags (`--name`) of subcommand `path`, with `--help` (and `--version` at the top).
pub fn accepted_flags(path: &[String]) -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = charrnn::cli::Cli::command();
    for p in path {
        cmd = cmd
            .find_subcommand(p)
            .unwrap_or_else(|| panic!("no subcommand {p}"))
            .clone();
    }
    let mut flags: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .collect();
    flags.push("--help".into());
    flags
}

/// The flags `text` names (`--name`, as a word of its own) with the subcommand each belongs
/// to: `command`'s, or after "charrnn NAME" the named command's until the end of that clause
/// (";" or the end of the text).
pub fn named_flags(command: &[String], text: &str) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut context: Option<Vec<String>> = None;
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        // "charrnn train", "`charrnn train", "(charrnn train": not the "charrnn:" of a line.
        if w.trim_start_matches(['(', '`', '\'']) == "charrnn" {
            let rest: Vec<String> = words[i + 1..]
                .iter()
                .map(|w| {
                    w.trim_matches(|c: char| !c.is_ascii_alphanumeric())
                        .to_string()
                })
                .collect();
            context = subcommand(&rest);
        }
        let start = w.find("--");
        if let Some(at) =
            start.filter(|&at| at == 0 || !w.as_bytes()[at - 1].is_ascii_alphanumeric())
        {
            let name: String = w[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let name = name.trim_end_matches('-');
            if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                let owner = context.clone().unwrap_or_else(|| command.to_vec());
                out.push((owner, format!("--{name}")));
            }
        }
        if w.ends_with(';') {
            context = None;
        }
    }
    out
}

/// The flags `text` names that their command (see `named_flags`) does not accept.
pub fn foreign_flags(command: &[String], text: &str) -> Vec<String> {
    named_flags(command, text)
        .into_iter()
        .filter(|(owner, flag)| !accepted_flags(owner).contains(flag))
        .map(|(owner, flag)| format!("{flag} (of charrnn {})", owner.join(" ")))
        .collect()
}
