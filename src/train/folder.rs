//! A run's output folder: which folder (`--out`, else the resumed checkpoint's, else
//! `runs/<file stem>`), made and checked writable, and locked for the run's life (`lock`).
//!
//! Owns making and claiming the folder. Does not write the run's files (see `setup`, `run`,
//! `runlog`).

use super::args::TrainArgs;
use super::lock::{lock, RunLock};
use crate::bail;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// `--out`, else the resumed checkpoint's folder, else `runs/<file stem>`.
pub(super) fn out_dir(a: &TrainArgs) -> PathBuf {
    match (&a.out, &a.resume) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => r.parent().map(Path::to_path_buf).unwrap_or_default(),
        (None, None) => Path::new("runs").join(a.files[0].file_stem().unwrap_or_default()),
    }
}

/// The run's folder and its lock once taken.
pub(super) struct RunFolder {
    path: PathBuf,
    lock: Option<RunLock>,
}

impl RunFolder {
    /// Locks `path` now if it exists, so that a folder in use fails before a long read of the
    /// text; a folder still to be made is made and locked by `make`.
    ///
    /// # Errors
    /// Another training holds the folder.
    pub(super) fn lock_if_there(path: PathBuf) -> Result<RunFolder> {
        let lock = if path.is_dir() {
            Some(lock(&path)?)
        } else {
            None
        };
        Ok(RunFolder { path, lock })
    }

    /// Makes the folder (checking it is one and writable) and locks it if it is not yet;
    /// returns its path.
    ///
    /// # Errors
    /// The path is a file, cannot be made or written, or another training holds it.
    pub(super) fn make(&mut self) -> Result<PathBuf> {
        make_writable(&self.path)?;
        if self.lock.is_none() {
            self.lock = Some(lock(&self.path)?);
        }
        Ok(self.path.clone())
    }

    /// The folder's lock, held for the run's life.
    pub(super) fn into_lock(self) -> RunLock {
        self.lock
            .expect("the run folder is made before the text's second pass")
    }
}

fn make_writable(out: &Path) -> Result<()> {
    let shown = out.display();
    if out.exists() && !out.is_dir() {
        bail!("output folder {shown} is a file; give a folder with --out");
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::io(format!("cannot create output folder {shown}"), e))?;
    let probe = out.join(format!(".charrnn-write-test{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| Error::io(format!("cannot write into output folder {shown}"), e))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
