//! `charrnn._native.load` and the `Model` it returns: `generate` (a str), `stream` (an
//! iterator of text pieces), `score` (a `Score`) and `info` (a dict). Generation is checked
//! by `charrnn sample`'s own checks (`SampleArgs::check`), seeded as it seeds
//! (`SampleArgs::settings`, `clock_seed`) and stepped by `Stream::next_text`, so the text is
//! the command's for the same checkpoint, prime, seed and settings; a score is
//! `Model::score`, as `charrnn eval` computes it. The GIL is released while Rust works.
//!
//! Owns the Python classes. Does not own generation or scoring (`sample`).

use super::{guarded, parse, word};
use crate::checkpoint::{self, Checkpoint};
use crate::cli::Command;
use crate::error::Error;
use crate::model::Layout;
use crate::sample::command::{clock_seed, SampleArgs};
use crate::sample::{Model, Precision, Sampler, Score, Stream};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long `generate` steps without the GIL before it checks for Ctrl-C.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// A trained model loaded from a checkpoint written by `charrnn train`: `generate`, `stream`,
/// `score`, `info`.
#[pyclass(module = "charrnn", name = "Model", frozen)]
pub struct PyModel {
    model: Arc<Model>,
    /// `charrnn sample CHECKPOINT [--precision P] [--threads N]`: generation's settings are
    /// these flags with the call's.
    args: SampleArgs,
    /// Threads `score` runs on.
    threads: usize,
    /// `info` as JSON.
    info: String,
}

/// Loads the checkpoint at `path` (e.g. "runs/shakespeare/best.safetensors"), as
/// `charrnn sample` and `charrnn eval` do.
///
/// precision: "f32" (default), "bf16" or "int8": the weights' precision for generate and
/// score (each precision gives its own texts). threads: worker threads [default: all cores];
/// the text does not depend on them.
///
/// Raises FileNotFoundError when there is no such file, ValueError when it is not a charrnn
/// checkpoint.
#[pyfunction]
#[pyo3(signature = (path, *, precision=None, threads=None))]
pub fn load(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    precision: Option<&Bound<'_, PyAny>>,
    threads: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyModel> {
    let mut args: Vec<OsString> = vec!["sample".into(), word(path)?];
    for (name, v) in [("--precision", precision), ("--threads", threads)] {
        if let Some(v) = v.filter(|v| !v.is_none()) {
            args.extend([name.into(), word(v)?]);
        }
    }
    let Command::Sample(a) = parse(args)? else {
        unreachable!("parsed as sample")
    };
    let threads = guarded(|| a.compute.threads.count())?;
    let (model, info) = py.detach(|| {
        guarded(|| {
            let ck = checkpoint::load_model(&a.checkpoint)?;
            let info = info_json(&a.checkpoint, &ck, a.compute.precision, threads);
            let model = Model::from_checkpoint(ck)
                .with_precision(a.compute.precision)
                .with_threads(threads);
            Ok((model, info))
        })
    })?;
    Ok(PyModel {
        model: Arc::new(model),
        args: a,
        threads,
        info,
    })
}

/// What `Model.info` returns, as JSON.
fn info_json(path: &Path, ck: &Checkpoint, precision: Precision, threads: usize) -> String {
    serde_json::json!({
        "path": path.display().to_string(),
        "model": ck.model,
        "parameters": Layout::new(ck.model).total,
        "vocabulary": ck.vocab.chars.iter().collect::<String>(),
        "unknown_symbol": ck.vocab.unk.is_some(),
        "file_bytes": ck.file_bytes,
        "precision": precision,
        "threads": threads,
        "train_config": ck.train.as_ref().map(|t| &t.config),
        "train_state": ck.train.as_ref().map(|t| &t.state),
    })
    .to_string()
}

/// A generation in progress: its own sampler and stream (`Model::start`).
struct Generating {
    sampler: Sampler,
    stream: Stream,
}

impl Generating {
    /// The next piece of text, or None when the stream has ended.
    fn next_text(&mut self, model: &Model) -> Option<String> {
        self.stream.next_text(&mut self.sampler, model.vocab())
    }
}

/// Stop strings given as one str or a list of them.
fn stop_strings(stop: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match stop {
        None => Ok(Vec::new()),
        Some(s) if s.is_none() => Ok(Vec::new()),
        Some(s) if s.is_instance_of::<PyString>() => Ok(vec![s.extract()?]),
        Some(s) => s.try_iter()?.map(|x| x?.extract()).collect(),
    }
}

/// A whole-number argument (`length`, `top_k`, `seed`): None stays None; anything but an int
/// from 0 to 2^64 − 1 is a ValueError naming the argument (pyo3 alone raised an OverflowError
/// that named nothing for -1 or 2**70).
fn whole(v: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<u64>> {
    match v.filter(|v| !v.is_none()) {
        None => Ok(None),
        Some(v) => match v.extract::<u64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(PyValueError::new_err(format!(
                "{name} must be a whole number from 0 to {}, got {}",
                u64::MAX,
                v.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            ))),
        },
    }
}

/// A count as usize (the most a 32-bit machine holds, past it).
fn saturate(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl PyModel {
    /// Checks the settings as `charrnn sample` does and starts a generation of `prime`.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        prime: &str,
        length: Option<&Bound<'_, PyAny>>,
        temperature: f32,
        top_k: Option<&Bound<'_, PyAny>>,
        top_p: Option<f64>,
        seed: Option<&Bound<'_, PyAny>>,
        stop: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Generating> {
        let a = SampleArgs {
            length: saturate(whole(length, "length")?.unwrap_or(500)),
            temperature,
            top_k: whole(top_k, "top_k")?.map(saturate),
            top_p,
            seed: whole(seed, "seed")?,
            stop: stop_strings(stop)?,
            ..self.args.clone()
        };
        guarded(|| {
            a.check()?;
            let settings = a.settings(a.seed.unwrap_or_else(clock_seed), 0);
            let (sampler, stream) = self.model.start(prime, &settings)?;
            Ok(Generating { sampler, stream })
        })
    }
}

#[pymethods]
impl PyModel {
    /// The text the model generates after `prime` (the prime itself is not repeated:
    /// `prime + text` is what `charrnn sample --prime PRIME` prints, newline aside).
    ///
    /// length: characters to generate at most (a stop string can end it sooner).
    /// temperature: softmax temperature, 0 or more; at or below 1e-6 the most likely
    /// character is always taken. top_k: draw only from the k most likely characters.
    /// top_p: draw only from the most likely characters holding probability p, in (0, 1].
    /// seed: the generator's seed; the same seed, prime and settings give the same text on
    /// every machine, that of `charrnn sample --seed SEED` [default: a new seed from the
    /// clock, as `charrnn sample` without --seed]. stop: a string or a list of strings that
    /// end the text when it reaches one (left out of the text).
    ///
    /// An empty prime starts from a newline, as `charrnn sample` without --prime does.
    /// Raises ValueError for a setting out of range or a prime character the model does
    /// not know; KeyboardInterrupt on Ctrl-C.
    #[pyo3(signature = (prime="", *, length=None, temperature=1.0, top_k=None, top_p=None, seed=None, stop=None))]
    #[pyo3(
        text_signature = "(self, prime='', *, length=500, temperature=1.0, top_k=None, top_p=None, seed=None, stop=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        py: Python<'_>,
        prime: &str,
        length: Option<&Bound<'_, PyAny>>,
        temperature: f32,
        top_k: Option<&Bound<'_, PyAny>>,
        top_p: Option<f64>,
        seed: Option<&Bound<'_, PyAny>>,
        stop: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let mut g = self.start(prime, length, temperature, top_k, top_p, seed, stop)?;
        let mut text = String::new();
        loop {
            let ended = py.detach(|| {
                let t0 = Instant::now();
                guarded(|| {
                    while t0.elapsed() < CHECK_EVERY {
                        match g.next_text(&self.model) {
                            Some(piece) => text.push_str(&piece),
                            None => return Ok(true),
                        }
                    }
                    Ok(false)
                })
            })?;
            if ended {
                return Ok(text);
            }
            py.check_signals()?;
        }
    }

    /// The text of `generate` with the same arguments, as an iterator of pieces as they are
    /// sampled (mostly one character; more when a possible stop string turned out not to
    /// be one): `"".join(model.stream(...)) == model.generate(...)` for the same seed.
    #[pyo3(signature = (prime="", *, length=None, temperature=1.0, top_k=None, top_p=None, seed=None, stop=None))]
    #[pyo3(
        text_signature = "(self, prime='', *, length=500, temperature=1.0, top_k=None, top_p=None, seed=None, stop=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        prime: &str,
        length: Option<&Bound<'_, PyAny>>,
        temperature: f32,
        top_k: Option<&Bound<'_, PyAny>>,
        top_p: Option<f64>,
        seed: Option<&Bound<'_, PyAny>>,
        stop: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyStream> {
        let g = self.start(prime, length, temperature, top_k, top_p, seed, stop)?;
        Ok(PyStream {
            model: self.model.clone(),
            generating: Mutex::new(g),
        })
    }

    /// The model's loss on `text`, exactly as validation loss and `charrnn eval` measure it:
    /// every character predicted from the ones before it, from a zero state. Characters the
    /// vocabulary lacks are scored as its unknown symbol when it has one, else left out;
    /// either way they are counted (`Score.unknown`).
    ///
    /// Raises ValueError when fewer than 2 characters can be scored.
    fn score(&self, py: Python<'_>, text: String) -> PyResult<PyScore> {
        let s = py.detach(|| {
            guarded(|| {
                self.model
                    .score(&text, self.threads)
                    .map_err(|e| Error::input(format!("the text has {}", e.msg)))
            })
        })?;
        Ok(PyScore::from(s))
    }

    /// What the checkpoint holds, as a dict: "path", "model" (cell, vocab: V, hidden: H,
    /// layers: L, embed: D, 0 for one-hot), "parameters", "vocabulary" (a str of its
    /// characters), "unknown_symbol", "file_bytes", "precision", "threads", and
    /// "train_config" and "train_state" (None in a checkpoint without training state).
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (&self.info,))
    }

    fn __repr__(&self) -> String {
        let c = self.model.config();
        format!(
            "<charrnn.Model {} {} {}×{}, vocabulary {}>",
            self.args.checkpoint.display(),
            c.cell.label(),
            c.layers,
            c.hidden,
            c.vocab
        )
    }
}

/// Text pieces of one generation as they are sampled (`Model.stream`).
#[pyclass(module = "charrnn", name = "Stream", frozen)]
pub struct PyStream {
    model: Arc<Model>,
    generating: Mutex<Generating>,
}

#[pymethods]
impl PyStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        // try_lock: waiting for another thread's step while holding the GIL would deadlock
        // with that thread taking the GIL back.
        let mut g = self
            .generating
            .try_lock()
            .map_err(|_| PyRuntimeError::new_err("this stream is being read by another thread"))?;
        let g: &mut Generating = &mut g;
        py.detach(|| guarded(|| Ok(g.next_text(&self.model))))
    }

    /// Why the text ended, once it has: "length" or "stop"; None before.
    #[getter]
    fn finish_reason(&self) -> Option<&'static str> {
        let g = self.generating.lock().ok()?;
        g.stream.finished().map(|f| f.as_str())
    }
}

/// A model's loss on a text (`Model.score`).
#[pyclass(module = "charrnn", name = "Score", frozen, get_all)]
pub struct PyScore {
    /// Mean cross-entropy in nats per predicted character.
    nats: f64,
    /// The same in bits per character (nats / ln 2).
    bits: f64,
    /// e ** nats.
    perplexity: f64,
    /// Characters in the scored stream (the first is only read, every other one predicted).
    chars: usize,
    /// Characters outside the vocabulary (scored as the unknown symbol or left out).
    unknown: usize,
    /// Those characters and how often each occurs.
    out_of_vocab: BTreeMap<char, usize>,
}

impl From<Score> for PyScore {
    fn from(s: Score) -> PyScore {
        PyScore {
            nats: s.nats_per_char,
            bits: s.bits_per_char(),
            perplexity: s.perplexity(),
            chars: s.chars,
            unknown: s.out_of_vocab.values().sum(),
            out_of_vocab: s.out_of_vocab,
        }
    }
}

#[pymethods]
impl PyScore {
    fn __repr__(&self) -> String {
        format!(
            "Score(nats={:.4}, bits={:.4}, perplexity={:.3}, chars={}, unknown={})",
            self.nats, self.bits, self.perplexity, self.chars, self.unknown
        )
    }
}
