//! Fine-tuning (`train TEXT --init-from CKPT`): the base model read and the flags checked
//! against it, its vocabulary extended by the text's, its weights carried over by character
//! (`model::carry`), and the lines that say what was kept, what was added and which settings
//! were chosen.
//!
//! The run itself is an ordinary fresh run from there: fresh Adam moments, a zero carried
//! state, the run's own generator, its own folder, budget, validation and checkpoints, and an
//! exact `--resume`. What it started from is recorded in its settings (`TrainConfig::init_from`).
//!
//! Owns the start of a fine-tuning run. Does not own how rows move (`model::carry`), the
//! defaults' measurements (`config`) or the rest of the setup (`setup`).

use super::args::TrainArgs;
use super::config::{finetune_lr, FINETUNE_DROPOUT, FINETUNE_WARMUP};
use crate::bail;
use crate::checkpoint::{self, InitFrom, TrainConfig};
use crate::data::{TrainingText, Vocab};
use crate::error::{Error, Result};
use crate::model::carry::{carry_vocab, VocabMap};
use crate::model::{Layout, ModelConfig};
use std::path::{Path, PathBuf};

/// Below this share of the text's characters known to the base, the run warns that it starts
/// little ahead of a fresh one.
pub const FEW_SHARED: f64 = 0.8;

/// The base model a fine-tuning run starts from.
pub(super) struct Base {
    path: PathBuf,
    pub(super) model: ModelConfig,
    pub(super) vocab: Vocab,
    params: Vec<f32>,
    /// The base's step, best validation loss and corpus, when it has a training state.
    step: Option<u64>,
    best_val: Option<f64>,
    corpus: Option<String>,
    sha256: String,
}

/// With `--init-from`: the base checkpoint (weights only are enough), whose architecture the
/// flags must not contradict.
///
/// # Errors
/// A file that is not a valid charrnn checkpoint; `--hidden`, `--layers`, `--cell` or
/// `--embed` different from the base's.
pub(super) fn load_base(a: &TrainArgs) -> Result<Option<Base>> {
    let Some(p) = &a.init_from else {
        return Ok(None);
    };
    let ck = checkpoint::load_model(p).map_err(|e| Error {
        msg: format!(
            "--init-from: {}; give a checkpoint written by charrnn train or charrnn export",
            e.msg
        ),
        ..e
    })?;
    check_architecture(a, &ck.model, p)?;
    let state = ck.train.as_ref().map(|t| &t.state);
    Ok(Some(Base {
        path: p.clone(),
        model: ck.model,
        vocab: ck.vocab,
        params: ck.params,
        step: state.map(|s| s.step),
        best_val: state.and_then(|s| s.best_val),
        corpus: state.map(|s| s.corpus.file.clone()),
        sha256: file_sha256(p)?,
    }))
}

/// The model flags must agree with the base: fine-tuning keeps its architecture.
fn check_architecture(a: &TrainArgs, m: &ModelConfig, p: &Path) -> Result<()> {
    let mut conflicts = Vec::new();
    let mut check = |flag: &str, given: Option<String>, base: String| {
        if let Some(g) = given.filter(|g| *g != base) {
            conflicts.push(format!("{flag} {g} (the base has {base})"));
        }
    };
    check(
        "--cell",
        a.cell.map(|c| c.name().into()),
        m.cell.name().into(),
    );
    check(
        "--hidden",
        a.hidden.map(|v| v.to_string()),
        m.hidden.to_string(),
    );
    check(
        "--layers",
        a.layers.map(|v| v.to_string()),
        m.layers.to_string(),
    );
    check(
        "--embed",
        a.embed.map(|v| v.to_string()),
        m.embed.to_string(),
    );
    if !conflicts.is_empty() {
        bail!(
            "cannot fine-tune {} with {}: the architecture is the base's; drop these flags, or train from nothing without --init-from",
            p.display(),
            conflicts.join(", ")
        );
    }
    Ok(())
}

/// SHA-256 of a file, read in pieces.
fn file_sha256(p: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let io = |e| Error::io(format!("cannot read {}", p.display()), e);
    let mut file = std::fs::File::open(p).map_err(io)?;
    let mut h = Sha256::new();
    std::io::copy(&mut file, &mut h).map_err(io)?;
    Ok(format!("{:x}", h.finalize()))
}

/// A fine-tuning run's settings: a fresh run's from the flags, with the fine-tuning defaults
/// for what the flags leave open (the learning rate, the warm-up and the dropout; see
/// `config::FINETUNE_LR_SHARE`), and the line that says what was chosen and why.
pub(super) fn finetune_config(
    a: &TrainArgs,
    base: &Base,
    mut config: TrainConfig,
) -> (TrainConfig, String) {
    config.lr = a.lr.unwrap_or_else(|| finetune_lr(base.model.cell));
    config.warmup = a.warmup.unwrap_or(FINETUNE_WARMUP);
    config.dropout = a.dropout.unwrap_or(FINETUNE_DROPOUT);
    let how = |given: bool| if given { " as given" } else { "" };
    let line = format!(
        "charrnn: fine-tuning: the base's size (no sizing); lr {}{}, warm-up {} steps{}, dropout {}{}{}",
        config.lr,
        how(a.lr.is_some()),
        config.warmup,
        how(a.warmup.is_some()),
        config.dropout,
        how(a.dropout.is_some()),
        if a.lr.is_none() || a.warmup.is_none() || a.dropout.is_none() {
            ": the fine-tuning defaults, measured on small texts new to a base: three quarters of a fresh run's rate, no warm-up, dropout 0.2 whatever the passes (docs/commands.md, Fine-tuning)"
        } else {
            ""
        }
    );
    (config, line)
}

/// The base's model and weights carried to `text`'s vocabulary (the base's extended by the
/// text's, see `VocabFrom::Extends`); records the base in `config.init_from`. Returns the
/// model, its parameters and the lines that say what was kept and added (and a warning when
/// the text shares few characters with the base).
pub(super) fn carry_base(
    base: Base,
    text: &TrainingText,
    config: &mut TrainConfig,
) -> (ModelConfig, Vec<f32>, Vec<String>) {
    let vocab = &text.vocab;
    let model = ModelConfig {
        vocab: vocab.len(),
        ..base.model
    };
    let from: Vec<Option<usize>> = vocab
        .chars
        .iter()
        .map(|&c| base.vocab.id(c).map(|i| i as usize))
        .collect();
    let counts = id_counts(text);
    let total = text.scan.chars.max(1) as f64;
    let log_freq: Vec<Option<f64>> = counts
        .iter()
        .map(|&n| (n > 0).then(|| (n as f64 / total).ln()))
        .collect();
    let params = carry_vocab(
        &Layout::new(base.model),
        &base.params,
        &Layout::new(model),
        &VocabMap {
            from: &from,
            log_freq: &log_freq,
        },
    );
    let in_text = |i: usize| counts[i] > 0;
    let shared = (0..vocab.len())
        .filter(|&i| from[i].is_some() && in_text(i))
        .count();
    let new: Vec<char> = (0..vocab.len())
        .filter(|&i| from[i].is_none())
        .map(|i| vocab.chars[i])
        .collect();
    let init = InitFrom {
        file: base.path.display().to_string(),
        sha256: base.sha256.clone(),
        model: format!(
            "{} {}×{}",
            base.model.cell.label(),
            base.model.layers,
            base.model.hidden
        ),
        step: base.step,
        best_val: base.best_val,
        corpus: base.corpus.clone(),
        shared,
        new: new.len(),
        base_only: vocab.len() - shared - new.len(),
    };
    let mut lines = vec![start_line(&init, &new, vocab.len())];
    lines.extend(few_shared_warning(text, &base.vocab));
    config.init_from = Some(init);
    (model, params, lines)
}

/// How often each id of the text's vocabulary occurs in the text (as `encode` maps them:
/// characters outside it count for the unknown symbol).
fn id_counts(text: &TrainingText) -> Vec<u64> {
    let mut counts = vec![0u64; text.vocab.len()];
    for (&c, &n) in &text.scan.counts {
        if let Some(i) = text.vocab.id(c).or(text.vocab.unk) {
            counts[i as usize] += n;
        }
    }
    counts
}

/// "charrnn: starting from BASE (…): of the vocabulary's 86 characters, 71 …".
fn start_line(init: &InitFrom, new: &[char], vocab: usize) -> String {
    let mut base = init.model.clone();
    if let Some(s) = init.step {
        base += &format!(" at step {s}");
    }
    if let Some(v) = init.best_val {
        base += &format!(", best validation loss {v:.4} nats/char");
    }
    if let Some(c) = &init.corpus {
        base += &format!(" on {c}");
    }
    let shown: Vec<String> = new
        .iter()
        .take(12)
        .map(|c| c.escape_debug().to_string())
        .collect();
    let shown = shown.join(" ");
    format!(
        "charrnn: starting from {} ({base}; sha256 {}…): vocabulary {vocab}: {} of the text's characters keep the base's rows, {} new{} get new ones, {} of the base's not in the text stay",
        init.file,
        &init.sha256[..12],
        init.shared,
        init.new,
        if new.is_empty() {
            String::new()
        } else {
            format!(
                " ({shown}{})",
                if new.len() > 12 { "…" } else { "" }
            )
        },
        init.base_only
    )
}

/// The warning for a text most of whose characters the base does not know.
fn few_shared_warning(text: &TrainingText, base: &Vocab) -> Option<String> {
    let (mut known, mut distinct, mut known_distinct) = (0u64, 0usize, 0usize);
    for (&c, &n) in &text.scan.counts {
        distinct += 1;
        if base.id(c).is_some() {
            known += n;
            known_distinct += 1;
        }
    }
    let share = known as f64 / text.scan.chars.max(1) as f64;
    (share < FEW_SHARED).then(|| {
        format!(
            "charrnn: warning: the base knows only {:.1} % of the text's characters ({known_distinct} of its {distinct} distinct ones): most rows start new, so fine-tuning starts little ahead of a fresh run; training anyway",
            100.0 * share
        )
    })
}
