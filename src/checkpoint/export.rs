//! `charrnn export`: a checkpoint's weights alone, without the Adam moments and the carried
//! state (two thirds of a training checkpoint), optionally rounded to bf16 (half again): a
//! file to share, or to keep in a repository as a base model. Its metadata (model, vocabulary,
//! the run's settings and state) stays, so `charrnn info` still tells what it is; sampling,
//! `eval`, `serve` and `train --init-from` read it; `train --resume` refuses it, having
//! nothing to resume from.
//!
//! Owns the command. Does not own the file format (see `save_weights`).

use super::{load_model, save_weights, Stored};
use crate::bail;
use crate::error::{Error, Result};
use crate::model::Layout;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// A checkpoint written by `charrnn train` (or exported before).
    pub checkpoint: PathBuf,
    /// The file to write, e.g. models/base.safetensors (replaced if it exists).
    pub out: PathBuf,
    /// How to store the weights: f32, as trained, or bf16, rounded to nearest (half the size;
    /// 8 bits of mantissa, as the sampler's bf16 weights have).
    #[arg(long, value_enum, default_value_t)]
    pub precision: Stored,
}

/// Runs `charrnn export`: reads the weights, writes them alone, says what was written.
///
/// # Errors
/// A checkpoint that cannot be read or is not valid; an output that is a folder or cannot be
/// written.
pub fn export(a: &ExportArgs) -> Result<()> {
    let ck = load_model(&a.checkpoint)?;
    if a.out.is_dir() {
        bail!(
            "{} is a folder; give the file to write, e.g. {}",
            a.out.display(),
            a.out.join("model.safetensors").display()
        );
    }
    save_weights(&a.out, &ck, a.precision)?;
    let bytes = std::fs::metadata(&a.out)
        .map_err(|e| Error::io(format!("cannot read {}", a.out.display()), e))?
        .len();
    let m = ck.model;
    eprintln!(
        "charrnn: wrote {} ({:.2} MB; {} was {:.2} MB): {} {}×{}, {} parameters in {}, without the optimiser's moments and the carried state; sample, eval, info and serve read it, and a training run can start from it (init-from) but not resume it",
        a.out.display(),
        bytes as f64 / 1e6,
        a.checkpoint.display(),
        ck.file_bytes as f64 / 1e6,
        m.cell.label(),
        m.layers,
        m.hidden,
        Layout::new(m).total,
        a.precision.name()
    );
    Ok(())
}
