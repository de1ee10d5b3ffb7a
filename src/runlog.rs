//! A run's folder besides its checkpoints: `config.json` (every setting, the corpus and the
//! build), `metrics.jsonl` (one JSON object per log step and per validation) and `loss.svg`
//! (train and validation loss against characters seen, redrawn at each validation).
//!
//! Owns those three files and `charrnn plot`. Does not decide when to log (see `train`).

use crate::error::{Error, Result};
use crate::plot::{self, Series};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

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
}

impl Record {
    fn step(&self) -> u64 {
        match self {
            Record::Train { step, .. } | Record::Val { step, .. } => *step,
        }
    }
}

pub struct RunLog {
    dir: PathBuf,
    records: Vec<Record>,
    file: std::fs::File,
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

impl RunLog {
    /// Opens the run's log at `step`: records past it (from work after the last checkpoint,
    /// which a resume redoes) are dropped.
    pub fn open(dir: &Path, step: u64) -> Result<RunLog> {
        let mut records = if step > 0 {
            read_metrics(dir).unwrap_or_default()
        } else {
            Vec::new()
        };
        records.retain(|r| r.step() <= step);
        let path = dir.join("metrics.jsonl");
        let mut file = std::fs::File::create(&path)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        for r in &records {
            writeln!(file, "{}", serde_json::to_string(r).unwrap())
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        }
        Ok(RunLog {
            dir: dir.to_path_buf(),
            records,
            file,
        })
    }

    pub fn push(&mut self, r: Record) -> Result<()> {
        let is_val = matches!(r, Record::Val { .. });
        writeln!(self.file, "{}", serde_json::to_string(&r).unwrap()).map_err(|e| {
            Error::io(
                format!("cannot write {}", self.dir.join("metrics.jsonl").display()),
                e,
            )
        })?;
        self.records.push(r);
        if is_val {
            let name = self
                .dir
                .file_name()
                .map_or("run".into(), |n| n.to_string_lossy().into_owned());
            let svg = plot::svg(
                &format!("charrnn: {name}"),
                "characters seen",
                "loss (nats/char)",
                &series(&name, &self.records, 0),
            );
            crate::checkpoint::write_atomic(&self.dir.join("loss.svg"), |w| {
                w.write_all(svg.as_bytes())
            })?;
        }
        Ok(())
    }
}

/// The train (dashed) and validation (solid) series of one run.
fn series(name: &str, records: &[Record], colour: usize) -> Vec<Series> {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for r in records {
        match r {
            Record::Train { chars, loss, .. } => train.push((*chars as f64, *loss)),
            Record::Val { chars, loss, .. } => val.push((*chars as f64, *loss)),
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

/// `charrnn plot RUN... --out FILE`: several runs' losses on one chart.
pub fn plot_runs(runs: &[PathBuf], out: &Path) -> Result<()> {
    let mut all = Vec::new();
    for (i, dir) in runs.iter().enumerate() {
        if !dir.join("metrics.jsonl").is_file() {
            crate::bail!("{} is not a run folder (no metrics.jsonl); give folders written by charrnn train --out", dir.display());
        }
        let name = dir.file_name().map_or(dir.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        });
        all.extend(series(&name, &read_metrics(dir)?, i));
    }
    let (title, x, y) = ("charrnn: loss", "characters seen", "loss (nats/char)");
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let bytes = match ext.as_deref() {
        Some("svg") => plot::svg(title, x, y, &all).into_bytes(),
        Some("png") => plot::png(title, x, y, &all),
        _ => crate::bail!(
            "cannot draw {}: give an output file ending in .svg or .png",
            out.display()
        ),
    };
    crate::checkpoint::write_atomic(out, |w| w.write_all(&bytes))?;
    eprintln!("charrnn: drew {} run(s) into {}", runs.len(), out.display());
    Ok(())
}

/// Resident memory of this process in MB (Linux; 0 elsewhere).
pub fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .map_or(0.0, |pages| pages * 4096.0 / 1e6)
}
