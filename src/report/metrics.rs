//! A run's metrics.jsonl: one JSON object per logged training stretch, per validation and per
//! rollback after a blow-up, the format `train` writes and `charrnn plot` reads; and the loss
//! curves drawn from it.
//!
//! Owns the record format. Does not decide when to log (see `train`).

use super::chart::Series;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One line of metrics.jsonl.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    Train {
        step: u64,
        epoch: f64,
        chars: u64,
        loss: f64,
        chars_per_s: f64,
        elapsed_s: f64,
        rss_mb: f64,
        /// The learning rate of the last step.
        #[serde(default)]
        lr: f64,
    },
    Val {
        step: u64,
        epoch: f64,
        chars: u64,
        loss: f64,
        bits_per_char: f64,
        best: bool,
    },
    /// The guard's rollback after a blow-up (see `train::guard`): at `step` the fast average of
    /// the training loss (`fast`, nats/char) stood far above the slow one (`slow`), and the run
    /// went on from the weights of `to_step`.
    Rollback {
        step: u64,
        to_step: u64,
        fast: f64,
        slow: f64,
    },
}

impl Record {
    /// The optimiser step the record was written at.
    pub fn step(&self) -> u64 {
        match self {
            Record::Train { step, .. }
            | Record::Val { step, .. }
            | Record::Rollback { step, .. } => *step,
        }
    }
}

/// Reads a run's metrics.jsonl (lines that do not parse are skipped: a run killed mid-write
/// leaves at most one).
pub fn read_metrics(dir: &Path) -> Result<Vec<Record>> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The train (dashed) and validation (solid) series of one run.
pub fn series(name: &str, records: &[Record], colour: usize) -> Vec<Series> {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for r in records {
        match r {
            Record::Train { chars, loss, .. } => train.push((*chars as f64, *loss)),
            Record::Val { chars, loss, .. } => val.push((*chars as f64, *loss)),
            Record::Rollback { .. } => {}
        }
    }
    vec![
        Series {
            name: format!("{name} train"),
            points: train,
            dashed: true,
            colour,
        },
        Series {
            name: format!("{name} validation"),
            points: val,
            dashed: false,
            colour,
        },
    ]
}
