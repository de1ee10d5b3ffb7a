//! What a checkpoint is, from its metadata alone: the model and, for a file written by
//! training, where its run was. No tensor is read, so describing a large checkpoint costs a
//! header's read (`train` names the model a folder already holds this way).
//!
//! Owns that description. Does not load a checkpoint for use (see `load`, `load_model`, which
//! check every field and tensor).

use super::state::TrainState;
use super::tensors::TensorFile;
use super::FORMAT;
use crate::error::{Error, Result};
use crate::model::ModelConfig;
use std::path::Path;

/// A checkpoint's model and training state, unchecked against its tensors: for messages about
/// a file, not for using it.
pub struct Summary {
    pub model: ModelConfig,
    /// Present in checkpoints written by training.
    pub state: Option<TrainState>,
}

impl Summary {
    /// "LSTM 2×256 at step 2000, best validation loss 1.4621 nats/char".
    pub fn describe(&self) -> String {
        let m = &self.model;
        let mut s = format!("{} {}×{}", m.cell.label(), m.layers, m.hidden);
        if let Some(st) = &self.state {
            s += &format!(" at step {}", st.step);
            if let Some(best) = st.best_val {
                s += &format!(", best validation loss {best:.4} nats/char");
            }
        }
        s
    }
}

/// Reads `path`'s metadata (see `Summary`).
///
/// # Errors
/// A file that cannot be read, is not a charrnn checkpoint, or whose model or training-state
/// metadata cannot be read.
pub fn summary(path: &Path) -> Result<Summary> {
    let tf = TensorFile::open(path)?;
    let meta = &tf.metadata;
    let unreadable =
        |why: &str| Error::input(format!("{} is not a charrnn checkpoint ({why})", tf.shown));
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(unreadable("no charrnn metadata"));
    }
    let model = meta
        .get("model")
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| unreadable("no readable model metadata"))?;
    let state = meta
        .get("train_state")
        .and_then(|s| serde_json::from_str(s).ok());
    Ok(Summary { model, state })
}
