//! `charrnn train`: a training run of truncated BPTT from flags (fresh, sized for the budget),
//! from a base model (fine-tuning) or from a checkpoint (resumed exactly), with exact
//! validation, checkpoints, a run folder, progress and Ctrl-C.
//!
//! Owns the run. Does not own the maths (`engine`, `optim`), the data rules (`data`) or the
//! file format (`checkpoint`).
//!
//! - `args`: the flags; `config`: their defaults and checks, and when to stop
//! - `sizing`: the model size and dropout a budget buys (the probe and the rule)
//! - `probes`: the probe stored on this machine, so that runs of one shape choose one size
//! - `precision`: the products' precision of a fresh run (the faster on this machine)
//! - `setup`: text, model, config.json, the opening lines
//! - `init_from`: a fine-tuning run's start from a base model (`--init-from`)
//! - `folder`: the output folder, and what a run may do to one that holds something
//! - `run`: the step loop, validation and saving, the closing line
//! - `guard`: the rollback after a training blow-up
//! - `memory`: what a run holds in memory, checked before it is allocated
//! - `progress`, `runlog`, `interrupt`: the status line (or an `Observer`), metrics.jsonl and
//!   loss.svg, Ctrl-C

pub mod args;
mod config;
mod folder;
#[cfg(feature = "python")]
pub(crate) use {folder::out_dir, run::CONTINUE_WITH};
pub mod guard;
mod init_from;
mod interrupt;
mod lock;
pub mod memory;
pub mod precision;
pub mod probes;
mod progress;
mod run;
mod runlog;
mod setup;
pub mod sizing;

pub use args::TrainArgs;
pub use config::check_model_limits;
pub use progress::{Observer, Status};

use crate::error::Result;
use std::path::PathBuf;

/// Runs `charrnn train` with these flags: progress on the terminal, Ctrl-C saves.
///
/// # Errors
/// Bad flags or input (exit 2), a failed save, divergence, or Ctrl-C (`Kind::Interrupted`,
/// after saving).
pub fn train(a: &TrainArgs) -> Result<()> {
    train_observed(a.clone(), None).map(drop)
}

/// Runs `charrnn train` with these flags (a `--gutenberg` book is fetched first) and returns
/// the run folder. With an `observer`, every line and status goes to it and nothing to
/// stderr, and Ctrl-C is left to the caller (the observer stops the run by returning false
/// from `Observer::step`); without one, as the command: a bar or lines on stderr, and Ctrl-C
/// saves.
///
/// # Errors
/// As `train`; an observer's stop is `Kind::Interrupted`, after saving.
pub fn train_observed(mut a: TrainArgs, observer: Option<Box<dyn Observer>>) -> Result<PathBuf> {
    if let Some(id) = a.gutenberg {
        a.files.push(crate::data::fetch::gutenberg(id, &a.source)?);
    }
    let terminal = observer.is_none();
    let progress = match observer {
        Some(o) => progress::Progress::observed(o),
        None => progress::Progress::new(),
    };
    let prepared = setup::prepare(&a, progress)?;
    let out = prepared.out.clone();
    let mut run = run::Run::new(prepared);
    if terminal {
        interrupt::install();
    }
    let reason = run.train_loop()?;
    run.finish(reason)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Keeps the lines and steps it sees; stops the run after `stop_at` steps.
    struct Recorder {
        seen: Arc<Mutex<(Vec<String>, Vec<u64>)>>,
        stop_at: u64,
    }

    impl Observer for Recorder {
        fn line(&mut self, text: &str) {
            self.seen.lock().unwrap().0.push(text.to_string());
        }
        fn step(&mut self, status: &Status, fraction: f64) -> bool {
            assert!((0.0..=1.0).contains(&fraction));
            self.seen.lock().unwrap().1.push(status.step);
            status.step < self.stop_at
        }
    }

    fn args(dir: &std::path::Path, steps: &str) -> TrainArgs {
        let text = "the quick brown fox jumps over the lazy dog. ".repeat(400);
        let file = dir.join("fox.txt");
        std::fs::write(&file, text).unwrap();
        let out = dir.join("run");
        let argv = [
            "charrnn",
            "train",
            "--steps",
            steps,
            "--hidden",
            "16",
            "--dropout",
            "0",
            "--batch",
            "4",
            "--seq",
            "8",
            "--threads",
            "1",
            "--sample-every",
            "0",
            "--out",
        ];
        let mut argv: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
        argv.push(out.into());
        argv.push(file.into());
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
        match cli.command {
            crate::cli::Command::Train(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_observer_gets_every_line_and_step_and_its_stop_saves_as_ctrl_c_does() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let observer = Recorder {
            seen: seen.clone(),
            stop_at: 7,
        };
        let e = train_observed(args(dir.path(), "100"), Some(Box::new(observer))).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Interrupted, "{e}");
        assert!(e.msg.starts_with("interrupted at step 7; saved "), "{e}");
        assert!(dir.path().join("run/last.safetensors").is_file());
        let (lines, steps) = &*seen.lock().unwrap();
        assert_eq!(steps, &(1..=7).collect::<Vec<u64>>());
        assert!(lines[0].contains("fox.txt: 18000 characters"), "{lines:?}");
        assert!(
            lines.iter().any(|l| l.contains("validation loss")),
            "{lines:?}"
        );

        // Run to the end: the closing line comes through the observer too, and the run
        // folder is returned.
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let observer = Recorder {
            seen: seen.clone(),
            stop_at: u64::MAX,
        };
        let dir = tempfile::tempdir().unwrap();
        let out = train_observed(args(dir.path(), "12"), Some(Box::new(observer))).unwrap();
        assert_eq!(out, dir.path().join("run"));
        let (lines, steps) = &*seen.lock().unwrap();
        assert_eq!(steps.len(), 12);
        let last = lines.last().unwrap();
        assert!(last.starts_with("charrnn: done at step 12 "), "{lines:?}");
    }
}
