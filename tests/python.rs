//! The Python package, as a user gets it: a fresh virtual environment, `pip install .` from
//! this clone, then its pytest suite (`tests/python/`: train, load, generate against this
//! build's `charrnn sample`, score against `charrnn eval`, the GIL, errors, Ctrl-C) and the
//! notebook (`examples/fairy-tales.ipynb`, run by nbclient). Skips with a message where
//! python3 (3.9 or newer) with venv is absent, and fails instead when
//! `CHARRNN_REQUIRE_CLIENTS=1` (CI: see `.ci/run`). Needs PyPI (maturin, pytest, nbclient,
//! ipykernel, tqdm).
//!
//! The package is built in the dev profile into this build's own target folder
//! (`CARGO_TARGET_DIR`, `MATURIN_PEP517_ARGS`), so it reuses the dependencies `cargo test`
//! compiled instead of building them all again in release.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn required() -> bool {
    std::env::var_os("CHARRNN_REQUIRE_CLIENTS").is_some_and(|v| v == "1")
}

fn skip(what: &str) {
    assert!(!required(), "{what} (CHARRNN_REQUIRE_CLIENTS=1)");
    eprintln!("skipped: {what}");
}

/// Runs `cmd`; its output, or a failure that shows it.
fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The target folder of this build (the parent of `CARGO_TARGET_TMPDIR`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the temporary folder is inside the target folder")
        .to_path_buf()
}

#[test]
fn the_python_package_installs_and_passes_its_tests_and_the_notebook_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("CHARRNN_PYTHON").unwrap_or_else(|_| "python3".into());
    let usable = Command::new(&python)
        .args([
            "-c",
            "import sys, venv, ensurepip; assert sys.version_info >= (3, 9)",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        return skip(&format!(
            "no Python 3.9 or newer with venv and ensurepip as `{python}` (apt install python3-venv, or set CHARRNN_PYTHON)"
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    );
    let py = venv.join("bin/python");
    let pip = |args: &[&str]| {
        let mut c = Command::new(&py);
        c.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(args);
        c
    };
    run(
        &mut pip(&["pytest", "tqdm", "nbclient", "nbformat", "ipykernel"]),
        "pip install pytest tqdm nbclient nbformat ipykernel",
    );
    let started = std::time::Instant::now();
    run(
        pip(&[root.to_str().unwrap()])
            .env("CARGO_TARGET_DIR", target_dir())
            .env("MATURIN_PEP517_ARGS", "--profile dev"),
        "pip install . (the package, built by maturin)",
    );
    eprintln!(
        "pip install . took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let out = run(
        Command::new(&py)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(root.join("tests/python"))
            .current_dir(tmp.path())
            .env("CHARRNN_BIN", env!("CARGO_BIN_EXE_charrnn"))
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        "pytest tests/python",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    // Nothing skipped: every comparison ran.
    let last = report
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.contains(" passed") && !last.contains("skipped"),
        "{report}"
    );
}
