//! `charrnn train`: a training run of truncated BPTT from flags (fresh, sized for the budget)
//! or a checkpoint (resumed exactly), with exact validation, checkpoints, a run folder,
//! progress and Ctrl-C.
//!
//! Owns the run. Does not own the maths (`engine`, `optim`), the data rules (`data`) or the
//! file format (`checkpoint`).
//!
//! - `args`: the flags; `config`: their defaults and checks, and when to stop
//! - `sizing`: the model size and dropout a budget buys (the probe and the rule)
//! - `probes`: the probe stored on this machine, so that runs of one shape choose one size
//! - `setup`: text, model, config.json, the opening lines
//! - `folder`: the output folder, and what a run may do to one that holds something
//! - `run`: the step loop, validation and saving, the closing line
//! - `guard`: the rollback after a training blow-up
//! - `progress`, `runlog`, `interrupt`: the status line, metrics.jsonl and loss.svg, Ctrl-C

pub mod args;
mod config;
mod folder;
pub mod guard;
mod interrupt;
mod lock;
pub mod probes;
mod progress;
mod run;
mod runlog;
mod setup;
pub mod sizing;

pub use args::TrainArgs;

/// Runs `charrnn train` with these flags.
///
/// # Errors
/// Bad flags or input (exit 2), a failed save, divergence, or Ctrl-C (`Kind::Interrupted`,
/// after saving).
pub fn train(a: &TrainArgs) -> crate::error::Result<()> {
    let mut run = run::Run::new(setup::prepare(a)?);
    let reason = run.train_loop()?;
    run.finish(reason)
}
