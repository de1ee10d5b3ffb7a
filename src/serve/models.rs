//! The served models: how a command-line argument names a checkpoint, loading them, and each
//! one as the handlers see it (its name, weights, the handlers' end of its queue, where it
//! came from).
//!
//! Owns the list a request's `model` is looked up in. Does not step the models (`scheduler`)
//! or say how the list looks on the wire (`api`).

use super::queue::Queue;
use crate::error::Result;
use crate::sample::{Model, Precision};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A checkpoint loaded for serving, before its scheduler starts.
pub struct Loaded {
    /// What requests call it (`model`).
    pub name: String,
    pub model: Arc<Model>,
    /// The checkpoint file.
    pub path: PathBuf,
}

/// One served model, as the handlers see it.
pub struct Served {
    /// What requests call it (`model`).
    pub name: String,
    pub model: Arc<Model>,
    /// Where its jobs wait for its scheduler.
    pub queue: Queue,
    /// The checkpoint file's modification time (unix seconds), OpenAI's `created`.
    pub created: u64,
    /// Where it came from, for the page and the model list.
    pub path: String,
}

/// Loads each `[NAME=]CHECKPOINT` argument with the weights in `precision`, stepping on
/// `threads` threads.
///
/// # Errors
/// A checkpoint that cannot be loaded, or two models with one name.
pub fn load(args: &[String], precision: Precision, threads: usize) -> Result<Vec<Loaded>> {
    let mut loaded: Vec<Loaded> = Vec::new();
    for arg in args {
        let (name, path) = named(arg);
        if loaded.iter().any(|l| l.name == name) {
            crate::bail!("two models are named {name}; name them with NAME=PATH");
        }
        let model = Model::load(&path)?
            .with_precision(precision)
            .with_threads(threads);
        loaded.push(Loaded {
            name,
            model: Arc::new(model),
            path,
        });
    }
    Ok(loaded)
}

impl Loaded {
    /// The model as the handlers see it, with the handlers' end of its queue.
    pub fn served(self, queue: Queue) -> Served {
        let created = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Served {
            name: self.name,
            model: self.model,
            queue,
            created,
            path: self.path.display().to_string(),
        }
    }
}

/// A model's name from `NAME=PATH`, or from its path: the parent folder, or the file stem.
fn named(arg: &str) -> (String, PathBuf) {
    if let Some((name, path)) = arg.split_once('=') {
        if !name.is_empty() && !name.contains('/') {
            return (name.to_string(), PathBuf::from(path));
        }
    }
    let path = PathBuf::from(arg);
    let folder = path
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned());
    let name = folder.unwrap_or_else(|| {
        path.file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
    });
    (name, path)
}
