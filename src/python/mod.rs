//! The Python package's native module, `charrnn._native`, built with pyo3 by maturin
//! (`pip install .`, the `python` feature; see pyproject.toml): `train`, `load` and `Model`
//! (generate, stream, score, info), `fetch`. `python/charrnn/__init__.py` wraps it for the
//! progress display.
//!
//! Owns the boundary: Python arguments in, Python exceptions out (`FileNotFoundError`,
//! `ValueError`, `RuntimeError`, `KeyboardInterrupt`, each with the command line's line, but for
//! an interrupted run's way to continue, given as the Python call), the
//! GIL released while Rust works, and no Rust panic crossing into Python. Owns no rule of its
//! own: arguments are parsed by the command line's clap definitions (`cli::Cli`) and checked by
//! the commands' own checks, and the work is the library's (`train::train_observed`,
//! `sample::Model`, `data::fetch`).
//!
//! - `train`: `train` and the observer that feeds the progress display and checks for Ctrl-C
//! - `model`: `load`, `Model`, `Stream`, `Score`

mod model;
mod train;

use crate::cli::{Cli, Command, FetchCommand};
use crate::error::{Error, Kind};
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyTuple};
use std::ffi::OsString;
use std::path::PathBuf;

/// The native module: what `charrnn/__init__.py` re-exports.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // CHARRNN_KERNELS naming kernels this machine lacks: a ValueError at import, as the
    // command line's exit 2 before any work, not a RuntimeError at the first product.
    crate::engine::isa::init().map_err(exception)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(model::load, m)?)?;
    m.add_function(wrap_pyfunction!(fetch, m)?)?;
    m.add_class::<model::PyModel>()?;
    m.add_class::<model::PyStream>()?;
    m.add_class::<model::PyScore>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// The Python exception of an error: the command line's line without its `charrnn: ` prefix.
fn exception(e: Error) -> PyErr {
    match e.kind {
        Kind::NotFound => PyFileNotFoundError::new_err(e.msg),
        Kind::Input => PyValueError::new_err(e.msg),
        Kind::Interrupted => PyKeyboardInterrupt::new_err(e.msg),
        Kind::Diverged | Kind::BrokenPipe => PyRuntimeError::new_err(e.msg),
    }
}

/// Runs `f`, its error as a Python exception and a panic as a `RuntimeError` (a panic must
/// not unwind into the interpreter). Needs no GIL: run it inside `Python::detach`.
fn guarded<T>(f: impl FnOnce() -> crate::error::Result<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(exception),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(PyRuntimeError::new_err(format!(
                "internal error in charrnn ({what}); please report it with the call that caused it"
            )))
        }
    }
}

/// Parses `charrnn ARGS...` with the command line's own definitions. A clap error is a
/// `ValueError` with clap's first line and its tip, if any.
fn parse(args: Vec<OsString>) -> PyResult<Command> {
    let argv = std::iter::once(OsString::from("charrnn")).chain(args);
    match <Cli as clap::Parser>::try_parse_from(argv) {
        Ok(cli) => Ok(cli.command),
        Err(e) => Err(PyValueError::new_err(crate::cli::clap_line(&e, false))),
    }
}

/// The command-line words of keyword arguments: `--name value` for each (`_` in a name is
/// `-`); True is a bare switch, False and None are left out, a list or tuple repeats the flag,
/// a path or str is passed as it is, anything else as its `str()`.
fn flags(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<OsString>> {
    let mut out = Vec::new();
    for (k, v) in kwargs.into_iter().flatten() {
        let name = OsString::from(format!("--{}", k.extract::<String>()?.replace('_', "-")));
        if v.is_none() {
            continue;
        }
        if let Ok(b) = v.cast::<PyBool>() {
            if b.is_true() {
                out.push(name);
            }
            continue;
        }
        if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
            for item in v.try_iter()? {
                out.push(name.clone());
                out.push(word(&item?)?);
            }
            continue;
        }
        out.push(name);
        out.push(word(&v)?);
    }
    Ok(out)
}

/// One value as a command-line word: a str or path as given, else its `str()`.
fn word(v: &Bound<'_, PyAny>) -> PyResult<OsString> {
    match v.extract::<PathBuf>() {
        Ok(p) => Ok(p.into_os_string()),
        Err(_) => Ok(v.str()?.to_string().into()),
    }
}

/// Paths given as one path or a list of them.
fn paths(v: &Bound<'_, PyAny>) -> PyResult<Vec<OsString>> {
    if v.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(p) = v.extract::<PathBuf>() {
        return Ok(vec![p.into_os_string()]);
    }
    let mut out = Vec::new();
    for item in v
        .try_iter()
        .map_err(|_| PyTypeError::new_err("paths must be a path or a list of paths"))?
    {
        out.push(item?.extract::<PathBuf>()?.into_os_string());
    }
    Ok(out)
}

/// Downloads a Project Gutenberg book into the cache folder once, without Gutenberg's licence
/// header and footer, and returns the path of its text (as `charrnn fetch gutenberg ID`).
///
/// gutenberg: the eBook number (27200 is the blog post's Andersen fairy tales).
/// cache: the cache folder [default: $CHARRNN_CACHE, $XDG_CACHE_HOME/charrnn or
/// ~/.cache/charrnn]. mirror: the base URL of a Gutenberg mirror.
///
/// Raises ValueError when the book cannot be downloaded (no network: pass a local file to
/// `train` instead).
#[pyfunction]
#[pyo3(signature = (*, gutenberg, cache=None, mirror=None))]
fn fetch(
    py: Python<'_>,
    gutenberg: &Bound<'_, PyAny>,
    cache: Option<&Bound<'_, PyAny>>,
    mirror: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let mut args: Vec<OsString> = vec!["fetch".into(), "gutenberg".into(), word(gutenberg)?];
    for (name, v) in [("--cache", cache), ("--mirror", mirror)] {
        if let Some(v) = v.filter(|v| !v.is_none()) {
            args.extend([name.into(), word(v)?]);
        }
    }
    let Command::Fetch(FetchCommand::Gutenberg(a)) = parse(args)? else {
        unreachable!("parsed as fetch gutenberg")
    };
    let path = py.detach(|| guarded(|| crate::data::fetch::gutenberg(a.id, &a.source)))?;
    Ok(path.display().to_string())
}
