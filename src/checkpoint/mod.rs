//! Checkpoint files: one safetensors file holding every parameter by its PyTorch name, the
//! Adam moments (`adam.m.<name>`, `adam.v.<name>`, `adam.vmax.<name>`) and the carried state
//! (`state.h`, `state.c`, (L, B, H)), with JSON metadata: format and version, model config,
//! vocabulary, training config and training state. Python reads it with
//! `safetensors.torch.load_file`. An exported checkpoint (`charrnn export`, `save_weights`)
//! holds the weights alone, in f32 or bf16, with the same metadata and `weights_only`: it
//! samples, scores and starts a fine-tuning run, but cannot be resumed. Files are written to a temporary name and renamed, so a crash
//! never leaves a half-written checkpoint.
//!
//! A checkpoint is input like any other (people download them): every metadata field is
//! checked against sane limits and against the tensors' names, dtypes and shapes before
//! anything is allocated, so a file that lies is one `… is not a valid checkpoint: …` line,
//! never a panic or an allocation beyond the file's size; and every value read must be finite
//! (`check_finite`), so weights that blew up are refused by every command that loads them.
//!
//! Owns the file format: nothing else reads or writes a checkpoint's bytes (`tensors` is the
//! container). Does not decide when to save (see `train`).

pub mod export;
pub mod state;
pub mod summary;
pub mod tensors;

use crate::bail;
use crate::data::{Vocab, UNK};
use crate::engine::State;
use crate::error::{Error, Result};
use crate::model::{Layout, ModelConfig};
use crate::optim::Adam;
use serde::Deserialize;
pub use state::{default_lr_decay, CorpusInfo, InitFrom, Plan, TrainConfig, TrainState};
use std::collections::HashMap;
use std::path::Path;
pub use summary::{summary, Summary};
pub use tensors::{Stored, TensorFile};

/// The `format` metadata value of every charrnn checkpoint.
pub const FORMAT: &str = "charrnn";
/// The metadata key (value "true") of a checkpoint that holds the weights alone.
pub const WEIGHTS_ONLY: &str = "weights_only";
/// Bumped whenever a reader of the previous version would misread a new file.
pub const FORMAT_VERSION: u32 = 1;

/// Limits a checkpoint's model must keep (far beyond what trains on a CPU; they bound what a
/// damaged or hostile file can make us compute before its tensors are checked).
pub const MAX_HIDDEN: usize = 1 << 16;
/// At most this many layers.
pub const MAX_LAYERS: usize = 64;
/// At most this many vocabulary entries (Unicode has 1,114,112 code points).
pub const MAX_VOCAB: usize = 1 << 21;

/// A checkpoint read from disk.
pub struct Checkpoint {
    pub model: ModelConfig,
    pub vocab: Vocab,
    /// (P): every parameter, laid out by `Layout::new(model)`.
    pub params: Vec<f32>,
    /// Present in checkpoints written by training (and in their exports).
    pub train: Option<TrainSnapshot>,
    /// Size of the file in bytes.
    pub file_bytes: u64,
    /// An exported checkpoint: the weights alone, no optimiser moments or carried state, so
    /// `train.resume` is None even from `load`.
    pub weights_only: bool,
    /// How the file stores the weights (bf16 in some exports; read as f32 either way).
    pub stored: Stored,
}

/// What a training run wrote besides the weights.
pub struct TrainSnapshot {
    pub config: TrainConfig,
    pub state: TrainState,
    /// What only `--resume` needs: read by `load`, not by `load_model`; never in an exported
    /// checkpoint.
    pub resume: Option<ResumeState>,
}

/// The optimiser's moments and the carried recurrent state.
#[derive(Debug, PartialEq)]
pub struct ResumeState {
    pub adam: Adam<f32>,
    /// (L, B, H) each.
    pub carry: State<f32>,
}

#[derive(Deserialize)]
struct VocabFile {
    chars: Vec<char>,
    unk: Option<u32>,
}

/// What a training run saves, borrowed: nothing is copied on the way to the file.
pub struct TrainRef<'a> {
    pub config: &'a TrainConfig,
    pub state: &'a TrainState,
    pub adam: &'a Adam<f32>,
    pub carry: &'a State<f32>,
}

/// Writes a checkpoint to `path` atomically: a temporary file in the same folder, written
/// straight from the model's buffers (no copy of the parameters or moments in memory), synced,
/// then renamed. On failure the previous file at `path` is untouched and the temporary file is
/// removed.
///
/// # Errors
/// An I/O failure: `cannot write PATH: …`.
pub fn save(
    path: &Path,
    model: &ModelConfig,
    vocab: &Vocab,
    params: &[f32],
    train: Option<TrainRef>,
) -> Result<()> {
    let layout = Layout::new(*model);
    fn add_flat<'a>(
        layout: &Layout,
        prefix: &str,
        flat: &'a [f32],
        list: &mut Vec<tensors::Entry<'a>>,
    ) {
        for t in &layout.tensors {
            list.push((
                format!("{prefix}{}", t.name),
                t.shape.clone(),
                &flat[t.offset..][..t.len],
            ));
        }
    }
    let mut list: Vec<tensors::Entry> = Vec::new();
    add_flat(&layout, "", params, &mut list);
    let mut meta = model_metadata(model, vocab);
    if let Some(tr) = &train {
        add_flat(&layout, "adam.m.", &tr.adam.m, &mut list);
        add_flat(&layout, "adam.v.", &tr.adam.v, &mut list);
        if let Some(vmax) = &tr.adam.vmax {
            add_flat(&layout, "adam.vmax.", vmax, &mut list);
        }
        let shape = vec![model.layers, tr.config.batch, model.hidden];
        list.push(("state.h".into(), shape.clone(), &tr.carry.h));
        list.push(("state.c".into(), shape, &tr.carry.c));
        meta.insert("train_config".into(), json(tr.config));
        meta.insert("train_state".into(), json(tr.state));
    }
    tensors::write(path, &list, meta, Stored::F32)
}

/// The metadata every checkpoint has: format, version, model and vocabulary.
fn model_metadata(model: &ModelConfig, vocab: &Vocab) -> HashMap<String, String> {
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("format_version".into(), FORMAT_VERSION.to_string());
    meta.insert("model".into(), json(model));
    meta.insert("vocab".into(), json(vocab));
    meta
}

/// Writes the weights of `ck` alone to `path`, atomically, stored as `stored`: the model,
/// vocabulary and (when `ck` has them) the training config and state as metadata, marked
/// `weights_only`; no optimiser moments, no carried state.
///
/// # Errors
/// An I/O failure: `cannot write PATH: …`.
pub fn save_weights(path: &Path, ck: &Checkpoint, stored: Stored) -> Result<()> {
    let layout = Layout::new(ck.model);
    let list: Vec<tensors::Entry> = layout
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                &ck.params[t.offset..][..t.len],
            )
        })
        .collect();
    let mut meta = model_metadata(&ck.model, &ck.vocab);
    meta.insert(WEIGHTS_ONLY.into(), "true".into());
    if let Some(tr) = &ck.train {
        meta.insert("train_config".into(), json(&tr.config));
        meta.insert("train_state".into(), json(&tr.state));
    }
    tensors::write(path, &list, meta, stored)
}

/// The JSON of a metadata value (plain data: serialising cannot fail).
fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("metadata serialises")
}

/// Reads a whole checkpoint: model, vocabulary, weights and (if present) the training state.
///
/// # Errors
/// See `load_model`; also missing or mis-shaped moments or state.
pub fn load(path: &Path) -> Result<Checkpoint> {
    read(path, true)
}

/// Reads what sampling needs: model, vocabulary and weights, not the optimiser state.
///
/// # Errors
/// A file that cannot be read, is not a charrnn checkpoint, is truncated, is from a newer
/// charrnn, or whose metadata disagrees with its tensors or with sane limits.
pub fn load_model(path: &Path) -> Result<Checkpoint> {
    read(path, false)
}

fn read(path: &Path, with_train: bool) -> Result<Checkpoint> {
    let tf = TensorFile::open(path)?;
    let shown = tf.shown.clone();
    let meta = &tf.metadata;
    let not_ours =
        |why: String| Error::input(format!("{shown} is not a charrnn checkpoint ({why})"));
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(not_ours("no charrnn metadata".into()));
    }
    let version: u32 = meta
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| not_ours("no format version".into()))?;
    if version > FORMAT_VERSION {
        bail!("{shown} has checkpoint format version {version}, newer than this charrnn reads ({FORMAT_VERSION}); upgrade charrnn");
    }
    let json = |key: &str| -> Result<&str> {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| not_ours(format!("missing {key}")))
    };
    let bad = |key: &str, e: serde_json::Error| {
        Error::input(format!("{shown} has unreadable {key} metadata: {e}"))
    };
    let model: ModelConfig = serde_json::from_str(json("model")?).map_err(|e| bad("model", e))?;
    let vf: VocabFile = serde_json::from_str(json("vocab")?).map_err(|e| bad("vocab", e))?;
    check_model(&tf, &model, &vf)?;
    let weights_only = meta.get(WEIGHTS_ONLY).is_some_and(|v| v == "true");
    let vocab = Vocab::from_chars(vf.chars, vf.unk);
    let layout = Layout::new(model);
    let flat = |prefix: &str| -> Result<Vec<f32>> {
        // Every tensor is checked before the buffer is allocated: its size is then bounded
        // by the file's. The weights (no prefix) may be bf16; the moments are f32.
        let weights = prefix.is_empty();
        for t in &layout.tensors {
            let name = format!("{prefix}{}", t.name);
            check_f32(&tf, &name, &t.shape, weights)?;
        }
        let mut v = vec![0.0f32; layout.total];
        for t in &layout.tensors {
            let name = format!("{prefix}{}", t.name);
            let out = &mut v[t.offset..][..t.len];
            match weights {
                true => tf.weights_into(&name, Some(&t.shape), out)?,
                false => tf.f32_into(&name, Some(&t.shape), out)?,
            }
            check_finite(&tf, &name, out)?;
        }
        Ok(v)
    };
    let params = flat("")?;
    let stored = match tf.raw(&layout.tensors[0].name)?.0.as_str() {
        "BF16" => Stored::Bf16,
        _ => Stored::F32,
    };
    let train = match (meta.get("train_config"), meta.get("train_state")) {
        (Some(c), Some(s)) => {
            let config: TrainConfig =
                serde_json::from_str(c).map_err(|e| bad("train_config", e))?;
            let state: TrainState = serde_json::from_str(s).map_err(|e| bad("train_state", e))?;
            check_train(&tf, &model, &config, &state, weights_only)?;
            let resume = if with_train && !weights_only {
                let shape = [model.layers, config.batch, model.hidden];
                let carry = State {
                    h: tf.f32("state.h", Some(&shape))?,
                    c: tf.f32("state.c", Some(&shape))?,
                };
                check_finite(&tf, "state.h", &carry.h)?;
                check_finite(&tf, "state.c", &carry.c)?;
                let mut adam = Adam::new(0, config.lr, false);
                adam.t = state.adam_steps;
                adam.m = flat("adam.m.")?;
                adam.v = flat("adam.v.")?;
                if config.amsgrad {
                    adam.vmax = Some(flat("adam.vmax.")?);
                }
                Some(ResumeState { adam, carry })
            } else {
                None
            };
            Some(TrainSnapshot {
                config,
                state,
                resume,
            })
        }
        _ => None,
    };
    Ok(Checkpoint {
        model,
        vocab,
        params,
        train,
        file_bytes: tf.file_bytes(),
        weights_only,
        stored,
    })
}

/// `… is not a valid checkpoint: why` unless `ok`.
fn ensure(tf: &TensorFile, ok: bool, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "{} is not a valid checkpoint: {}",
            tf.shown,
            why()
        )))
    }
}

/// Every value of tensor `name` must be finite: a NaN or an infinity makes every output of
/// the model NaN (`sample` printed newlines, `eval` NaN, `serve` answered 200). A pass over
/// the values as they are read, about 0.5 ms for the 3.3 million weights (13 MB) of a 2×512
/// LSTM: `load_model` took 2.1 ms with it and 1.6 ms without (fastest of 30, release build,
/// a 2-core machine); `--resume` also reads the moments, three times that.
fn check_finite(tf: &TensorFile, name: &str, values: &[f32]) -> Result<()> {
    // A fold without early exit vectorises (a plain `all` ran at a third of the speed).
    let finite = |c: &[f32]| c.iter().fold(true, |ok, x| ok & x.is_finite());
    if values.chunks(4096).all(finite) {
        return Ok(());
    }
    let (i, x) = values
        .iter()
        .enumerate()
        .find(|(_, x)| !x.is_finite())
        .expect("a value that is not finite");
    Err(Error::input(format!(
        "{} holds weights that are not numbers: tensor {name} has {x} at index {i} of {}; the run that wrote it blew up: use an earlier checkpoint (best.safetensors or a step checkpoint)",
        tf.shown,
        values.len()
    )))
}

/// Tensor `name` must exist as F32 (or, for `weights`, BF16) of `shape`.
fn check_f32(tf: &TensorFile, name: &str, shape: &[usize], weights: bool) -> Result<()> {
    ensure(tf, tf.has(name), || format!("it lacks tensor {name}"))?;
    let (dtype, got, _) = tf.raw(name)?;
    let dtype_ok = dtype == "F32" || (weights && dtype == "BF16");
    ensure(tf, dtype_ok && got == shape, || {
        format!("tensor {name} is {dtype} {got:?}, but the metadata says F32 {shape:?}")
    })
}

/// The model and vocabulary metadata: within limits and consistent with each other and with
/// the size of the file, before any layout is computed from them.
fn check_model(tf: &TensorFile, m: &ModelConfig, vf: &VocabFile) -> Result<()> {
    let within = |v: usize, lo: usize, hi: usize| (lo..=hi).contains(&v);
    ensure(tf, within(m.hidden, 1, MAX_HIDDEN), || {
        format!("hidden size {} is outside 1..={MAX_HIDDEN}", m.hidden)
    })?;
    ensure(tf, within(m.layers, 1, MAX_LAYERS), || {
        format!("{} layers is outside 1..={MAX_LAYERS}", m.layers)
    })?;
    ensure(tf, within(m.vocab, 1, MAX_VOCAB), || {
        format!("vocabulary size {} is outside 1..={MAX_VOCAB}", m.vocab)
    })?;
    ensure(tf, m.embed <= MAX_HIDDEN, || {
        format!("embedding width {} is over {MAX_HIDDEN}", m.embed)
    })?;
    ensure(tf, vf.chars.len() == m.vocab, || {
        format!(
            "the model has a vocabulary of {} but the vocabulary lists {} characters",
            m.vocab,
            vf.chars.len()
        )
    })?;
    ensure(tf, vf.chars.windows(2).all(|w| w[0] < w[1]), || {
        "the vocabulary is not a sorted set of distinct characters".into()
    })?;
    ensure(
        tf,
        vf.unk
            .is_none_or(|u| vf.chars.get(u as usize) == Some(&UNK)),
        || "the vocabulary's unknown symbol is not U+FFFD".into(),
    )?;
    // With the limits above no count overflows; the parameters alone must fit in the file
    // (at 2 bytes each: an export may store them as bf16).
    let params = Layout::new(*m).total as u64;
    ensure(tf, 2 * params <= tf.data_bytes(), || {
        format!(
            "its metadata describes {params} parameters, more than its {} bytes of tensors hold",
            tf.data_bytes()
        )
    })
}

/// The training metadata: sane values, and a carried state that fits the file (unless the
/// file holds the weights only).
fn check_train(
    tf: &TensorFile,
    m: &ModelConfig,
    c: &TrainConfig,
    s: &TrainState,
    weights_only: bool,
) -> Result<()> {
    let fine = |x: f64| x.is_finite();
    ensure(tf, c.batch >= 1 && c.seq >= 1, || {
        format!("batch {} × seq {} is empty", c.batch, c.seq)
    })?;
    let state_floats = (m.layers as u64)
        .saturating_mul(c.batch as u64)
        .saturating_mul(m.hidden as u64);
    ensure(
        tf,
        weights_only || state_floats.saturating_mul(8) <= tf.data_bytes(),
        || format!("batch {} does not fit the file's carried state", c.batch),
    )?;
    ensure(
        tf,
        fine(c.lr) && c.lr > 0.0 && fine(c.clip) && c.clip >= 0.0,
        || format!("learning rate {} or clip {} is not usable", c.lr, c.clip),
    )?;
    ensure(tf, c.val_frac > 0.0 && c.val_frac < 1.0, || {
        format!("validation fraction {} is outside (0, 1)", c.val_frac)
    })?;
    ensure(tf, (0.0..1.0).contains(&c.dropout), || {
        format!("dropout {} is outside [0, 1)", c.dropout)
    })?;
    ensure(
        tf,
        fine(c.lr_decay) && fine(c.weight_decay) && c.weight_decay >= 0.0,
        || "the schedule's decay or the weight decay is not usable".into(),
    )?;
    ensure(tf, s.steps_per_epoch >= 1 && fine(s.train_seconds), || {
        "the training state is damaged".into()
    })?;
    ensure(
        tf,
        s.plan
            .is_none_or(|p| p.seconds.is_none_or(|x| x.is_finite() && x > 0.0)),
        || "the training state's budget is damaged".into(),
    )?;
    ensure(
        tf,
        s.rng.iter().all(|w| u64::from_str_radix(w, 16).is_ok()),
        || "the training state's generator is damaged".into(),
    )
}
