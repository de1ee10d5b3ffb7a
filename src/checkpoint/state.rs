//! What a training run remembers, as stored in every checkpoint it writes: the settings that
//! decide its arithmetic (`TrainConfig`) and where it is (`TrainState`). Shared by the run
//! (`train`), which fills them, and the file format (`checkpoint`), which stores them, so
//! neither imports the other.
//!
//! Owns these types and their JSON shape (serde; fields added later have defaults so older
//! checkpoints read). Does not own the file format or the run loop.

use crate::engine::MatmulPrecision;
use crate::optim::Schedule;
use serde::{Deserialize, Serialize};

/// Everything that decides the arithmetic of a run: fixed at the start, restored on resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub batch: usize,
    pub seq: usize,
    pub lr: f64,
    pub clip: f64,
    pub amsgrad: bool,
    pub seed: u64,
    pub val_frac: f64,
    pub ascii: bool,
    pub lossy: bool,
    pub max_vocab: Option<usize>,
    pub min_count: usize,
    #[serde(default)]
    pub lr_schedule: Schedule,
    #[serde(default)]
    pub warmup: u64,
    #[serde(default = "default_lr_decay")]
    pub lr_decay: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default)]
    pub dropout: f64,
    /// `--encoding` of the corpus (None: UTF-8 or a byte-order mark).
    #[serde(default)]
    pub encoding: Option<String>,
    /// Characters of the validation part scored during training (None: all of it, as in
    /// checkpoints from before the slice existed).
    #[serde(default)]
    pub val_chars: Option<u64>,
    /// The operands of the step's matrix products (f32 in checkpoints from before bf16 was).
    /// Not part of what an exact resume keeps: a run may resume in either precision.
    #[serde(default, with = "PrecisionName")]
    pub precision: MatmulPrecision,
    /// The model a fine-tuning run started from (`train --init-from`); None for a run that
    /// started from nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<InitFrom>,
}

/// `MatmulPrecision` as a checkpoint names it: "f32" or "bf16".
#[derive(Serialize, Deserialize)]
#[serde(remote = "MatmulPrecision", rename_all = "lowercase")]
enum PrecisionName {
    F32,
    Bf16,
}

/// The base model a fine-tuning run started from, as its checkpoints record it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitFrom {
    /// The base checkpoint as named on the command line.
    pub file: String,
    /// SHA-256 of the base checkpoint file (lower-case hex).
    pub sha256: String,
    /// The base's model in words ("LSTM 2×384").
    pub model: String,
    /// The base's training step and best validation loss (nats/char, on its own text), and
    /// the text it was trained on, when the base has a training state.
    pub step: Option<u64>,
    pub best_val: Option<f64>,
    pub corpus: Option<String>,
    /// Characters of the run's vocabulary the base knew (they kept its rows), new ones (new
    /// rows), and the base's that the text lacks (kept, with the base's rows).
    pub shared: usize,
    pub new: usize,
    pub base_only: usize,
}

pub fn default_lr_decay() -> f64 {
    0.97
}

/// Where a run is: enough, with the weights, moments and carried state, to continue exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps taken.
    pub step: u64,
    /// Completed passes over the training text.
    pub epoch: u64,
    /// Position within the epoch, in steps: the next batch read is `cursor`.
    pub cursor: u64,
    pub steps_per_epoch: u64,
    pub adam_steps: u64,
    /// xoshiro256** state of the run's generator, as hex words.
    pub rng: [String; 4],
    pub best_val: Option<f64>,
    pub last_val: Option<f64>,
    /// Validations since the best one (for --patience).
    #[serde(default)]
    pub evals_since_best: u64,
    /// The run's `--patience`, so that a plain `--resume` stops by the same rule (None: not
    /// given, the default; or a checkpoint from before it was saved).
    #[serde(default)]
    pub patience: Option<u64>,
    /// Seconds spent in training steps over all invocations.
    pub train_seconds: f64,
    pub corpus: CorpusInfo,
    /// The run's budget, so that a plain `--resume` continues the same run (None in
    /// checkpoints from before it was saved).
    #[serde(default)]
    pub plan: Option<Plan>,
}

/// A run's budget: the step it stops at, and the training seconds it may take in all.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Option<u64>,
    pub seconds: Option<f64>,
}

impl Plan {
    /// In words: "step 4010", "5.0 minutes of training", or both.
    pub fn describe(&self) -> String {
        let steps = self.steps.map(|s| format!("step {s}"));
        let time = self
            .seconds
            .map(|s| format!("{:.1} minutes of training", s / 60.0));
        match (steps, time) {
            (Some(a), Some(b)) => format!("{a} or {b}"),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => "no limit".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    pub file: String,
    pub chars: usize,
    pub fingerprint: String,
}
