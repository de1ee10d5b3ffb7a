//! `charrnn._native.train`: the keyword arguments become the flags `charrnn train` would get,
//! parsed by its clap definitions, and the run is the command's (`train::train_observed`),
//! with the GIL released. An `Observer` hands the run's lines and, at most every 0.1 s, its
//! status to a Python callable, and checks for Ctrl-C (`Python::check_signals`) with the GIL
//! taken for that moment: a KeyboardInterrupt stops the run, which saves as Ctrl-C does on the
//! command line, and is raised when it has.
//!
//! Owns the observer and the call. Does not draw anything (the callable does: see
//! `python/charrnn/__init__.py`).

use super::{guarded, parse};
use crate::cli::Command;
use crate::error::{Error, Kind};
use crate::train::{Observer, Status};
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time between two calls of the Python callable with the status (tqdm's own default), and
/// between two checks for Ctrl-C.
const EVERY: Duration = Duration::from_millis(100);

/// Hands the run's lines and status to a Python callable; stops the run on a Python exception
/// (a KeyboardInterrupt from Ctrl-C, or one the callable raised), kept in `error`.
struct PyObserver {
    /// `callable(event: dict)`; None shows nothing.
    callable: Option<Py<PyAny>>,
    last: Instant,
    error: Arc<Mutex<Option<PyErr>>>,
}

impl PyObserver {
    /// Takes the GIL, checks for signals and calls the callable with the event `fill` builds;
    /// an exception is kept and stops the run.
    fn call(&mut self, fill: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>) -> bool {
        let result = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(f) = &self.callable {
                let event = PyDict::new(py);
                fill(&event)?;
                f.call1(py, (event,))?;
            }
            Ok(())
        });
        match result {
            Ok(()) => true,
            Err(e) => {
                let mut kept = self.error.lock().unwrap_or_else(|p| p.into_inner());
                kept.get_or_insert(e);
                false
            }
        }
    }

    fn stopped(&self) -> bool {
        self.error.lock().map_or(true, |e| e.is_some())
    }
}

impl Observer for PyObserver {
    fn line(&mut self, text: &str) {
        if self.callable.is_some() && !self.stopped() {
            self.call(|e| e.set_item("line", text));
        }
    }

    fn step(&mut self, status: &Status, fraction: f64) -> bool {
        if self.stopped() {
            return false;
        }
        if self.last.elapsed() < EVERY && fraction < 1.0 {
            return true;
        }
        self.last = Instant::now();
        self.call(|e| {
            e.set_item("step", status.step)?;
            e.set_item("target", status.target)?;
            e.set_item("epoch", status.epoch)?;
            e.set_item("loss", status.loss)?;
            e.set_item("val", status.val)?;
            e.set_item("chars_per_s", status.chars_per_s)?;
            e.set_item("train_seconds", status.train_seconds)?;
            e.set_item("budget_seconds", status.budget_seconds)?;
            e.set_item("eta", status.eta)?;
            e.set_item("fraction", fraction)?;
            e.set_item("status", status.render(true))?;
            e.set_item("bar", status.render(false))
        })
    }
}

/// An interrupted run's error with, for the command line's "continue with: charrnn train …",
/// the call that continues it from Python (`resume`); any other error as it is.
fn in_python(mut e: Error, resume: &str) -> Error {
    if e.kind == Kind::Interrupted {
        if let Some(at) = e.msg.find(crate::train::CONTINUE_WITH) {
            e.msg.truncate(at + crate::train::CONTINUE_WITH.len());
            e.msg.push_str(resume);
        }
    }
    e
}

/// Trains as `charrnn train PATHS --FLAG VALUE...` would and returns the run folder.
///
/// paths: a path or a list of paths (files or folders). flags: the command's flags by name
/// (`_` for `-`; True for a switch). callable: called with a dict per event, `{"line": str}`
/// or the status (`step`, `epoch`, `loss` and `val` in nats/char, `chars_per_s`, `fraction`
/// of the budget spent, `status` and `bar` as the command line shows them); None shows
/// nothing.
///
/// Raises FileNotFoundError or ValueError for bad input (the command's line), RuntimeError
/// when training diverged, KeyboardInterrupt after saving when interrupted, or the
/// callable's own exception (after saving).
#[pyfunction]
#[pyo3(signature = (paths, flags, callable=None))]
pub fn train(
    py: Python<'_>,
    paths: &Bound<'_, PyAny>,
    flags: Option<&Bound<'_, PyDict>>,
    callable: Option<Py<PyAny>>,
) -> PyResult<String> {
    let mut args: Vec<OsString> = vec!["train".into()];
    args.extend(super::flags(flags)?);
    args.push("--".into());
    args.extend(super::paths(paths)?);
    let Command::Train(a) = parse(args)? else {
        unreachable!("parsed as train")
    };
    let last = crate::train::out_dir(&a).join("last.safetensors");
    let resume = pyo3::types::PyString::new(py, &last.display().to_string()).repr()?;
    let resume = format!("charrnn.train(the same arguments, resume={resume})");
    let error = Arc::new(Mutex::new(None));
    let observer = PyObserver {
        callable: callable.filter(|c| !c.is_none(py)),
        last: Instant::now(),
        error: error.clone(),
    };
    let result = py.detach(move || {
        guarded(|| {
            crate::train::train_observed(*a, Some(Box::new(observer)))
                .map_err(|e| in_python(e, &resume))
        })
    });
    let kept = error.lock().ok().and_then(|mut e| e.take());
    match (result, kept) {
        (Ok(out), _) => Ok(out.display().to_string()),
        // Stopped by a Python exception: a KeyboardInterrupt says what was saved, as the
        // command line does; another exception is raised as it was.
        (Err(e), Some(py_err)) if e.is_instance_of::<PyKeyboardInterrupt>(py) => {
            if py_err.is_instance_of::<PyKeyboardInterrupt>(py) {
                Err(e)
            } else {
                Err(py_err)
            }
        }
        (Err(e), _) => Err(e),
    }
}
