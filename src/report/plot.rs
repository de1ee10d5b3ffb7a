//! `charrnn plot RUN... --out FILE`: several runs' training and validation curves on one chart,
//! SVG or PNG by the file's extension. One run without `--out` redraws its own `RUN/loss.svg`.
//!
//! Owns the command. Does not draw (see `chart`) or define the metrics (see `metrics`).

use super::{chart, metrics};
use crate::error::Result;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct PlotArgs {
    /// Run folders (each holds metrics.jsonl).
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// The chart to write, .svg or .png [default with one run: RUN/loss.svg; needed with
    /// several].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `charrnn plot RUN... --out FILE`: several runs' losses on one chart.
pub fn plot_runs(runs: &[PathBuf], out: Option<&Path>) -> Result<()> {
    let out = match (out, runs) {
        (Some(o), _) => o.to_path_buf(),
        (None, [one]) => one.join("loss.svg"),
        (None, _) => crate::bail!(
            "give --out FILE.svg or --out FILE.png for a chart of {} runs",
            runs.len()
        ),
    };
    let out = out.as_path();
    let mut all = Vec::new();
    for (i, dir) in runs.iter().enumerate() {
        if !dir.join("metrics.jsonl").is_file() {
            crate::bail!("{} is not a run folder (no metrics.jsonl); give folders written by charrnn train --out", dir.display());
        }
        let name = dir.file_name().map_or(dir.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        });
        all.extend(metrics::series(&name, &metrics::read_metrics(dir)?, i));
    }
    let (title, x, y) = ("charrnn: loss", "characters seen", "loss (nats/char)");
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let bytes = match ext.as_deref() {
        Some("svg") => chart::svg(title, x, y, &all)?.into_bytes(),
        Some("png") => chart::png(title, x, y, &all)?,
        _ => crate::bail!(
            "cannot draw {}: give an output file ending in .svg or .png",
            out.display()
        ),
    };
    crate::atomic::write(out, |w| w.write_all(&bytes))?;
    eprintln!("charrnn: drew {} run(s) into {}", runs.len(), out.display());
    Ok(())
}
