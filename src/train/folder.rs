//! A run's output folder: which folder (`--out`, else the resumed checkpoint's, else
//! `runs/<file stem>`), whether this run may write into it, made and checked writable, and
//! locked for the run's life (`lock`).
//!
//! The rule: no trained model is replaced without `--overwrite`.
//! - A folder that holds a checkpoint (last, best or step-NNNNNNN.safetensors) is refused with
//!   one line naming the model and what to do, unless this run resumes that folder's newest
//!   checkpoint, or a copy of it (the same training state): a continuation. Resuming an older
//!   checkpoint of the folder would replace the later ones, so it is refused too.
//! - A folder that holds files that are not a run's is refused (it is someone's folder).
//! - A missing or empty folder is used; so is one left by a run stopped before its first
//!   checkpoint (only config.json, metrics.jsonl, loss.svg): those files are replaced.
//! - With `--overwrite` the old run's files (checkpoints, config.json, metrics.jsonl,
//!   loss.svg) are removed before this run writes its own, after the text is read and the model
//!   built, so a run that fails before then leaves the old one whole; other files are kept.
//!   Resuming an older checkpoint of the same folder, only what came after it is removed
//!   (`RunLog::open` cuts metrics.jsonl at its step).
//!
//! Hidden entries (the lock, temporary files) are neither counted nor removed.
//!
//! Owns the rule, and making and claiming the folder. Does not write the run's files (see
//! `setup`, `run`, `runlog`).

use super::args::TrainArgs;
use super::lock::{lock, RunLock};
use crate::bail;
use crate::checkpoint::{self, Summary, TrainState};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The files a run writes besides its checkpoints.
const RUN_FILES: [&str; 3] = ["config.json", "metrics.jsonl", "loss.svg"];

/// `--out`, else the resumed checkpoint's folder, else `runs/<file stem>`.
pub(crate) fn out_dir(a: &TrainArgs) -> PathBuf {
    match (&a.out, &a.resume) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => parent(r).to_path_buf(),
        (None, None) => Path::new("runs").join(a.files[0].file_stem().unwrap_or_default()),
    }
}

/// The folder a file is in ("." for a bare file name).
fn parent(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// What this run does to the files of the run the folder held, before writing its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replace {
    /// Nothing: the folder is new or empty, or this run continues the one in it.
    Nothing,
    /// All of them: a run stopped before its first checkpoint, or `--overwrite`.
    All,
    /// The checkpoints after this step, and loss.svg: `--overwrite` resuming an older
    /// checkpoint of the folder.
    After(u64),
}

/// The run's folder, its lock once taken, and what is to go of the run it held.
pub(super) struct RunFolder {
    path: PathBuf,
    lock: Option<RunLock>,
    held: Held,
    replace: Replace,
}

impl RunFolder {
    /// Claims `path` for a run of flags `a` (resuming a checkpoint whose training state is
    /// `resumed`, if any): an existing folder is locked now, so that one in use fails before a
    /// long read of the text, and checked against the rule (module header); a folder still to
    /// be made is made and locked by `make`.
    ///
    /// # Errors
    /// Another training holds the folder; the folder holds a trained model or files that are
    /// not a run's and the rule refuses it; the folder cannot be listed.
    pub(super) fn claim(
        path: PathBuf,
        a: &TrainArgs,
        resumed: Option<&TrainState>,
    ) -> Result<RunFolder> {
        if !path.is_dir() {
            return Ok(RunFolder {
                path,
                lock: None,
                held: Held::default(),
                replace: Replace::Nothing,
            });
        }
        let lock = lock(&path)?;
        let held = Held::of(&path)?;
        let replace = decide(&path, &held, a, resumed)?;
        Ok(RunFolder {
            path,
            lock: Some(lock),
            held,
            replace,
        })
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

    /// Removes what the claim decided must go of the run the folder held, and says so.
    ///
    /// # Errors
    /// A file that cannot be removed.
    pub(super) fn replace_old_run(&self) -> Result<()> {
        let (gone, what): (Vec<&PathBuf>, String) = match self.replace {
            Replace::Nothing => return Ok(()),
            Replace::All => (
                self.held
                    .checkpoints
                    .iter()
                    .map(|c| &c.path)
                    .chain(&self.held.run_files)
                    .collect(),
                if self.held.checkpoints.is_empty() {
                    "the files of a run stopped before its first checkpoint".to_string()
                } else {
                    format!("the run it held ({})", self.held.describe())
                },
            ),
            Replace::After(step) => (
                self.held
                    .checkpoints
                    .iter()
                    .filter(|c| c.step.is_none_or(|s| s > step))
                    .map(|c| &c.path)
                    .chain(
                        self.held
                            .run_files
                            .iter()
                            .filter(|p| p.ends_with("loss.svg")),
                    )
                    .collect(),
                format!("what came after step {step}"),
            ),
        };
        if gone.is_empty() {
            return Ok(());
        }
        for p in &gone {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(format!("cannot remove {}", p.display()), e))
                }
                _ => {}
            }
        }
        let names: Vec<String> = gone.iter().map(|p| file_name(p)).collect();
        eprintln!(
            "charrnn: {}: removed {what}: {}",
            self.path.display(),
            names.join(", ")
        );
        Ok(())
    }

    /// The folder's lock, held for the run's life.
    pub(super) fn into_lock(self) -> RunLock {
        self.lock
            .expect("the run folder is made before the text's second pass")
    }
}

/// A checkpoint in the folder: its metadata when it can be read, and its step (from the name
/// of a step checkpoint, from the metadata of last and best).
struct Found {
    path: PathBuf,
    summary: Option<Summary>,
    step: Option<u64>,
}

impl Found {
    fn state(&self) -> Option<&TrainState> {
        self.summary.as_ref().and_then(|s| s.state.as_ref())
    }
}

/// What a folder holds, hidden entries aside.
#[derive(Default)]
struct Held {
    checkpoints: Vec<Found>,
    /// `RUN_FILES` present.
    run_files: Vec<PathBuf>,
    /// Names of the entries that are not a run's (folders with a trailing /), sorted.
    other: Vec<String>,
}

impl Held {
    fn of(dir: &Path) -> Result<Held> {
        let mut held = Held::default();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            let by_name = step_of_name(&name);
            if name.starts_with('.') {
                continue;
            } else if is_file
                && (by_name.is_some() || name == "last.safetensors" || name == "best.safetensors")
            {
                let summary = checkpoint::summary(&path).ok();
                let mut found = Found {
                    path,
                    summary,
                    step: by_name,
                };
                found.step = by_name.or(found.state().map(|st| st.step));
                held.checkpoints.push(found);
            } else if is_file && RUN_FILES.contains(&name.as_str()) {
                held.run_files.push(path);
            } else if path.is_dir() {
                held.other.push(format!("{name}/"));
            } else {
                held.other.push(name);
            }
        }
        held.checkpoints.sort_by(|a, b| a.path.cmp(&b.path));
        held.run_files.sort();
        held.other.sort();
        Ok(held)
    }

    /// The newest step among the checkpoints whose step can be read.
    fn newest(&self) -> Option<u64> {
        self.checkpoints.iter().filter_map(|c| c.step).max()
    }

    /// Whether `state` is the training state of the folder's newest checkpoint: the run
    /// resumed from it (or from a copy of it) continues the folder's run.
    fn newest_is(&self, state: &TrainState) -> bool {
        self.newest().is_some_and(|n| {
            state.step == n && self.checkpoints.iter().any(|c| c.state() == Some(state))
        })
    }

    /// The model the folder holds, for messages: last.safetensors's, else best's, else the
    /// newest step checkpoint's.
    fn describe(&self) -> String {
        let by_name = |n: &str| self.checkpoints.iter().find(|c| c.path.ends_with(n));
        let newest_step = self
            .checkpoints
            .iter()
            .filter(|c| step_of_name(&file_name(&c.path)).is_some())
            .max_by_key(|c| c.step);
        let readable = [
            by_name("last.safetensors"),
            by_name("best.safetensors"),
            newest_step,
        ]
        .into_iter()
        .flatten()
        .find_map(|c| c.summary.as_ref());
        match readable {
            Some(s) => s.describe(),
            None => format!(
                "{} checkpoint(s) that cannot be read: {}",
                self.checkpoints.len(),
                self.checkpoints
                    .iter()
                    .map(|c| file_name(&c.path))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The step in a step checkpoint's name (step-NNNNNNN.safetensors).
fn step_of_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?.strip_suffix(".safetensors")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Whether `a` resumes a checkpoint in folder `dir` (the same folder, however it is named).
fn resumes_from(dir: &Path, a: &TrainArgs) -> bool {
    let Some(r) = &a.resume else {
        return false;
    };
    match (parent(r).canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p == d,
        _ => false,
    }
}

/// The rule of the module header, for a folder that exists and holds `held`.
fn decide(dir: &Path, held: &Held, a: &TrainArgs, resumed: Option<&TrainState>) -> Result<Replace> {
    let shown = dir.display();
    if held.checkpoints.is_empty() {
        if !held.other.is_empty() && !a.overwrite {
            let more = match held.other.len() {
                n if n > 3 => format!(" and {} more", n - 3),
                _ => String::new(),
            };
            bail!(
                "{shown} holds files that are not a charrnn run's ({}{more}); give --out a new or empty folder, or add --overwrite to write the run among them (they are kept)",
                held.other[..held.other.len().min(3)].join(", ")
            );
        }
        return Ok(if held.run_files.is_empty() {
            Replace::Nothing
        } else {
            Replace::All
        });
    }
    let last = dir.join("last.safetensors");
    let last = last.display();
    match resumed {
        Some(st) if held.newest_is(st) => Ok(Replace::Nothing),
        Some(st) if resumes_from(dir, a) && held.newest().is_some_and(|n| st.step < n) => {
            let step = st.step;
            if a.overwrite {
                Ok(Replace::After(step))
            } else {
                bail!(
                    "{shown} holds this run past the checkpoint resumed (step {step}): {}; continue from {last}, give another --out to branch off at step {step}, or add --overwrite to take {shown} back to step {step} (its later checkpoints are removed)",
                    held.describe()
                )
            }
        }
        _ if a.overwrite => Ok(Replace::All),
        _ => bail!(
            "{shown} already holds a trained model ({}); continue it with --resume {last}, give another --out, or add --overwrite to replace it",
            held.describe()
        ),
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

#[cfg(test)]
mod tests {
    use super::step_of_name;

    #[test]
    fn step_checkpoints_are_known_by_their_names_only() {
        assert_eq!(step_of_name("step-0001000.safetensors"), Some(1000));
        assert_eq!(step_of_name("step-12345678.safetensors"), Some(12_345_678));
        for other in [
            "step-.safetensors",
            "step-+100.safetensors",
            "step-10.safetensors.bak",
            "mystep-10.safetensors",
            "best.safetensors",
        ] {
            assert_eq!(step_of_name(other), None, "{other}");
        }
    }
}
