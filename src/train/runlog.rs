//! A run's log files besides its checkpoints: `metrics.jsonl` (see `report::metrics` for the
//! format) and `loss.svg` (train and validation loss against characters seen, redrawn at each
//! validation).
//!
//! Owns writing those files during a run. Does not decide when to log (see `run`).

use crate::error::{Error, Result};
use crate::report::chart;
use crate::report::metrics::{read_metrics, series, Record};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RunLog {
    dir: PathBuf,
    records: Vec<Record>,
    file: std::fs::File,
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
            let svg = chart::svg(
                &format!("charrnn: {name}"),
                "characters seen",
                "loss (nats/char)",
                &series(&name, &self.records, 0),
            )?;
            crate::atomic::write(&self.dir.join("loss.svg"), |w| w.write_all(svg.as_bytes()))?;
        }
        Ok(())
    }
}
