//! The training run: settings (fresh or from a checkpoint), the step loop of truncated BPTT,
//! exact validation, checkpoints, progress and Ctrl-C.
//!
//! Owns the loop and what a run remembers (`TrainConfig`, `TrainState`). Does not own the maths
//! (`engine`, `optim`), the data rules (`data`) or the file format (`checkpoint`).

use crate::autosize::{self, Budget};
use crate::bail;
use crate::checkpoint::{self, ResumeState, TrainRef, TrainSnapshot};
use crate::cli::TrainArgs;
use crate::data::{self, Batches, Vocab};
use crate::engine::{State, Workspace};
use crate::error::{Error, Kind, Result};
use crate::linalg::Threads;
use crate::model::{init_params, Layout, ModelConfig};
use crate::optim::{clip_grad_norm, scheduled_lr, Adam, Schedule};
use crate::rng::Rng;
use crate::runlog::{Record, RunLog};
use crate::sample::Sampler;
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Everything that decides the arithmetic of a run: fixed at the start, restored on resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub batch: usize,
    pub seq: usize,
    pub lr: f64,
    pub clip: f64,
    pub amsgrad: bool,
    pub seed: u64,
    pub val_frac: f64,
    pub ascii: bool,
    pub lossy: bool,
    pub max_vocab: Option<usize>,
    pub min_count: usize,
    #[serde(default)]
    pub lr_schedule: Schedule,
    #[serde(default)]
    pub warmup: u64,
    #[serde(default = "default_lr_decay")]
    pub lr_decay: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default)]
    pub dropout: f64,
}

fn default_lr_decay() -> f64 {
    0.97
}

/// Where a run is: enough, with the weights, moments and carried state, to continue exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps taken.
    pub step: u64,
    /// Completed passes over the training text.
    pub epoch: u64,
    /// Position within the epoch, in steps: the next batch read is `cursor`.
    pub cursor: u64,
    pub steps_per_epoch: u64,
    pub adam_steps: u64,
    /// xoshiro256** state of the run's generator, as hex words.
    pub rng: [String; 4],
    pub best_val: Option<f64>,
    pub last_val: Option<f64>,
    /// Validations since the best one (for --patience).
    #[serde(default)]
    pub evals_since_best: u64,
    /// Seconds spent in training steps over all invocations.
    pub train_seconds: f64,
    pub corpus: CorpusInfo,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    pub file: String,
    pub chars: usize,
    pub fingerprint: String,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// First Ctrl-C (or SIGTERM): finish the step, save, exit 130. Second: exit at once.
fn install_interrupt_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ncharrnn: interrupted again; exiting without saving");
                std::process::exit(130);
            }
        });
    });
}

/// The thread count from `--threads` (default: all cores).
pub fn setup_threads(requested: Option<usize>) -> Result<usize> {
    match requested {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The flags of a fresh run, checked, with defaults filled in; without --hidden the hidden
/// size is 0 and without --dropout the dropout 0 until `size_fresh_model` chooses them.
fn fresh_config(a: &TrainArgs) -> Result<(ModelConfig, TrainConfig)> {
    let layers = a.layers.unwrap_or(2);
    let cfg = TrainConfig {
        batch: a.batch.unwrap_or(50),
        seq: a.seq.unwrap_or(50),
        lr: a.lr.unwrap_or(2e-3),
        clip: a.clip.unwrap_or(5.0),
        amsgrad: a.amsgrad,
        seed: a.seed.unwrap_or(1),
        val_frac: a.val_frac.unwrap_or(0.1),
        ascii: a.ascii,
        lossy: a.lossy,
        max_vocab: a.max_vocab,
        min_count: a.min_count.unwrap_or(0),
        // Cosine by default; a checkpoint without the field is from before it was (constant).
        lr_schedule: a.lr_schedule.unwrap_or(Schedule::Cosine),
        warmup: a.warmup.unwrap_or(0),
        lr_decay: a.lr_decay.unwrap_or_else(default_lr_decay),
        weight_decay: a.weight_decay.unwrap_or(0.0),
        dropout: a.dropout.unwrap_or(0.0),
    };
    if !(cfg.dropout >= 0.0 && cfg.dropout < 1.0) {
        bail!("--dropout must be in [0, 1), got {}", cfg.dropout);
    }
    if !(cfg.lr_decay > 0.0 && cfg.lr_decay <= 1.0) {
        bail!("--lr-decay must be in (0, 1], got {}", cfg.lr_decay);
    }
    if !(cfg.weight_decay >= 0.0 && cfg.weight_decay.is_finite()) {
        bail!(
            "--weight-decay must be 0 or positive, got {}",
            cfg.weight_decay
        );
    }
    for (name, v) in [
        ("--hidden", a.hidden),
        ("--layers", Some(layers)),
        ("--batch", Some(cfg.batch)),
        ("--seq", Some(cfg.seq)),
    ] {
        if v == Some(0) {
            bail!("{name} must be at least 1");
        }
    }
    if !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        bail!("--lr must be a positive number, got {}", cfg.lr);
    }
    if !(cfg.clip >= 0.0 && cfg.clip.is_finite()) {
        bail!("--clip must be 0 (off) or positive, got {}", cfg.clip);
    }
    if !(cfg.val_frac > 0.0 && cfg.val_frac < 1.0) {
        bail!(
            "--val-frac must be between 0 and 1 (exclusive), got {}",
            cfg.val_frac
        );
    }
    if cfg.max_vocab.is_some_and(|m| m < 2) {
        bail!("--max-vocab must be at least 2 (one kept character and the unknown symbol)");
    }
    Ok((
        ModelConfig {
            cell: a.cell.unwrap_or_default(),
            vocab: 0,
            hidden: a.hidden.unwrap_or(0),
            layers,
            embed: a.embed.unwrap_or(0),
        },
        cfg,
    ))
}

/// From this many distinct characters a fresh run without `--embed` learns an embedding of
/// width `AUTO_EMBED` instead of one-hot input.
pub const AUTO_EMBED_VOCAB: usize = 1000;
pub const AUTO_EMBED: usize = 128;

/// Fills in what a fresh run left to the budget: an embedding for a large vocabulary, the
/// hidden size and the dropout (see `autosize`). Returns the line that says what was chosen
/// and why, or None when the flags chose everything.
fn size_fresh_model(
    a: &TrainArgs,
    m: &mut ModelConfig,
    config: &mut TrainConfig,
    (train_len, spe): (usize, u64),
    threads: Threads,
) -> Option<String> {
    // Large vocabularies: one-hot W_ih is G·H × V; an embedding is far smaller.
    let auto_embed = a.embed.is_none() && m.vocab >= AUTO_EMBED_VOCAB;
    let embed_note = if auto_embed {
        m.embed = AUTO_EMBED;
        format!(
            "; embedding {AUTO_EMBED} for {} distinct characters (--embed 0 for one-hot input)",
            m.vocab
        )
    } else {
        String::new()
    };
    if a.hidden.is_some() && a.dropout.is_some() {
        return auto_embed.then(|| format!("charrnn: sizing: as given{embed_note}"));
    }
    let budget = match (a.minutes, a.steps, a.epochs) {
        (Some(min), _, _) => Budget::Seconds(min * 60.0),
        (None, Some(s), e) => Budget::Epochs((s as f64 / spe as f64).min(e.unwrap_or(f64::MAX))),
        (None, None, e) => Budget::Epochs(e.unwrap_or(10.0)),
    };
    let s = autosize::choose(
        *m,
        a.hidden,
        a.dropout,
        train_len,
        budget,
        (config.batch, config.seq),
        threads,
    );
    m.hidden = s.hidden;
    config.dropout = s.dropout;
    Some(format!(
        "charrnn: sizing: {}; dropout {}{}{embed_note}",
        s.reason,
        s.dropout,
        if a.dropout.is_some() {
            " as given"
        } else {
            " for that many passes"
        },
    ))
}

/// On resume, a flag that would change the arithmetic must agree with the checkpoint.
fn check_resume_flags(a: &TrainArgs, m: &ModelConfig, c: &TrainConfig, ckpt: &Path) -> Result<()> {
    let mut conflicts = Vec::new();
    let mut check = |flag: &str, given: Option<String>, saved: String| {
        if let Some(g) = given {
            if g != saved {
                conflicts.push(format!("{flag} {g} (the checkpoint has {saved})"));
            }
        }
    };
    let s = |x: Option<usize>| x.map(|v| v.to_string());
    check(
        "--cell",
        a.cell.map(|c| c.name().to_string()),
        m.cell.name().to_string(),
    );
    check("--hidden", s(a.hidden), m.hidden.to_string());
    check("--layers", s(a.layers), m.layers.to_string());
    check("--batch", s(a.batch), c.batch.to_string());
    check("--seq", s(a.seq), c.seq.to_string());
    check("--lr", a.lr.map(|v| v.to_string()), c.lr.to_string());
    check("--clip", a.clip.map(|v| v.to_string()), c.clip.to_string());
    check("--seed", a.seed.map(|v| v.to_string()), c.seed.to_string());
    check(
        "--val-frac",
        a.val_frac.map(|v| v.to_string()),
        c.val_frac.to_string(),
    );
    check(
        "--max-vocab",
        s(a.max_vocab),
        c.max_vocab.map_or("none".into(), |v| v.to_string()),
    );
    check("--min-count", s(a.min_count), c.min_count.to_string());
    check(
        "--lr-schedule",
        a.lr_schedule.map(|v| format!("{v:?}").to_lowercase()),
        format!("{:?}", c.lr_schedule).to_lowercase(),
    );
    check(
        "--warmup",
        a.warmup.map(|v| v.to_string()),
        c.warmup.to_string(),
    );
    check(
        "--lr-decay",
        a.lr_decay.map(|v| v.to_string()),
        c.lr_decay.to_string(),
    );
    check(
        "--weight-decay",
        a.weight_decay.map(|v| v.to_string()),
        c.weight_decay.to_string(),
    );
    check(
        "--dropout",
        a.dropout.map(|v| v.to_string()),
        c.dropout.to_string(),
    );
    check("--embed", s(a.embed), m.embed.to_string());
    check(
        "--amsgrad",
        a.amsgrad.then(|| "on".into()),
        if c.amsgrad { "on" } else { "off" }.into(),
    );
    check(
        "--ascii",
        a.ascii.then(|| "on".into()),
        if c.ascii { "on" } else { "off" }.into(),
    );
    check(
        "--lossy",
        a.lossy.then(|| "on".into()),
        if c.lossy { "on" } else { "off" }.into(),
    );
    if !conflicts.is_empty() {
        bail!(
            "cannot resume {} with {}: an exact resume keeps the run's settings; drop these flags",
            ckpt.display(),
            conflicts.join(", ")
        );
    }
    Ok(())
}

/// One optimiser step of truncated BPTT on batch (x, y) (time-major ids): new dropout masks
/// (drop probability and the run's generator), forward from the carried state, loss, backward,
/// carry the final state, clip, Adam. Returns the loss. The one definition of a training step:
/// `charrnn bench` times exactly this.
#[allow(clippy::too_many_arguments)]
pub fn step(
    ws: &mut Workspace<f32>,
    layout: &Layout,
    params: &mut [f32],
    grads: &mut [f32],
    adam: &mut Adam<f32>,
    carry: &mut State<f32>,
    (x, y): (&[u32], &[u32]),
    clip: f64,
    (dropout, rng): (f64, &mut Rng),
) -> f64 {
    if dropout > 0.0 {
        ws.set_dropout(dropout, rng);
    }
    ws.forward(params, layout, x, carry);
    let loss = ws.loss_and_grad(y, layout.config.vocab);
    grads.fill(0.0);
    ws.backward(params, layout, x, grads);
    ws.final_state(carry);
    clip_grad_norm(grads, clip);
    adam.step(params, grads);
    loss
}

/// Exact validation loss in nats/char: mean cross-entropy of predicting ids[t+1] from
/// ids[..=t] for every t, one stream from a zero state, run in chunks with the state carried
/// (the definition of `peers/pytorch/common.py`).
pub fn evaluate(layout: &Layout, params: &[f32], ids: &[u32], threads: Threads) -> f64 {
    const CHUNK: usize = 250; // rows per forward: bounds the eval workspace (about 9 MB at H=512)
    let n = ids.len().saturating_sub(1);
    if n == 0 {
        return f64::NAN;
    }
    let mut ws = Workspace::<f32>::new(layout, 1, CHUNK.min(n), false, threads);
    let mut state = State::zeros(layout.config.layers, 1, layout.config.hidden);
    let mut total = 0.0;
    for s in (0..n).step_by(CHUNK) {
        let e = (s + CHUNK).min(n);
        ws.forward(params, layout, &ids[s..e], &state);
        total += ws.loss_sum(&ids[s + 1..e + 1], layout.config.vocab);
        ws.final_state(&mut state);
    }
    total / n as f64
}

/// A short sample to watch the model learn (its own generator: training is not disturbed).
fn preview(layout: &Layout, params: &[f32], vocab: &Vocab, seed: u64, len: usize) -> String {
    let mut s = Sampler::new(layout, params, 1);
    let mut rng = Rng::new(seed);
    let mut id = vocab.id('\n').unwrap_or(0);
    let mut out = String::new();
    for _ in 0..len {
        s.feed(&[id]);
        id = s.pick(0, &crate::sample::Pick::temperature(0.8), &mut rng);
        out.push(vocab.char(id));
    }
    out
}

fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Progress: a redrawn bar on a terminal, plain greppable lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
}

impl Progress {
    fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(1000);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:30.cyan/blue} {percent:>3}% {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Progress {
            bar,
            last_line: Instant::now(),
        }
    }

    fn line(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// `fraction` of the run done; `status` is the one-line summary.
    fn update(&mut self, fraction: f64, status: &str) {
        match &self.bar {
            Some(b) => {
                b.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
                b.set_message(status.to_string());
            }
            None => {
                if self.last_line.elapsed() >= Duration::from_secs(10) {
                    self.last_line = Instant::now();
                    eprintln!("{status}");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

pub fn train(a: &TrainArgs) -> Result<()> {
    let mut run = Run::prepare(a)?;
    let reason = run.train_loop()?;
    run.finish(reason)
}

/// Everything a training run holds.
struct Run<'a> {
    args: &'a TrainArgs,
    config: TrainConfig,
    model: ModelConfig,
    layout: Layout,
    vocab: Vocab,
    batches: Batches,
    val_ids: Vec<u32>,
    spe: u64,
    threads: Threads,
    out: PathBuf,
    params: Vec<f32>,
    adam: Adam<f32>,
    carry: State<f32>,
    st: TrainState,
    /// The step to stop at (from --steps / --epochs), if any.
    target_steps: Option<u64>,
    /// Seconds of training this invocation may take (--minutes), if any.
    budget: Option<f64>,
    progress: Progress,
    log: RunLog,
    /// The run's generator (dropout masks); its state is saved in every checkpoint.
    rng: Rng,
}

impl<'a> Run<'a> {
    /// Checks the flags, reads the text, builds or restores the model and prepares the
    /// output folder; prints what it is about to do.
    fn prepare(a: &'a TrainArgs) -> Result<Run<'a>> {
        let threads = setup_threads(a.threads)?;
        if a.eval_every == 0 {
            bail!("--eval-every must be at least 1");
        }
        if a.steps == Some(0) {
            bail!("--steps must be at least 1");
        }
        if a.log_every == 0 {
            bail!("--log-every must be at least 1");
        }
        if a.patience == Some(0) {
            bail!("--patience must be at least 1");
        }
        if !(a.sample_every >= 0.0 && a.sample_every.is_finite()) {
            bail!(
                "--sample-every must be 0 (off) or a number of seconds, got {}",
                a.sample_every
            );
        }
        if let Some(m) = a
            .save_every_minutes
            .filter(|m| !(*m > 0.0 && m.is_finite()))
        {
            bail!("--save-every-minutes must be positive, got {m}");
        }
        if let Some(e) = a.epochs.filter(|e| !(*e > 0.0 && e.is_finite())) {
            bail!("--epochs must be positive, got {e}");
        }
        if let Some(m) = a.minutes.filter(|m| !(*m > 0.0 && m.is_finite())) {
            bail!("--minutes must be positive, got {m}");
        }

        // Settings and, on resume, the saved run.
        let resumed = match &a.resume {
            Some(p) => {
                let ck = checkpoint::load(p)?;
                let Some(snap) = ck.train else {
                    bail!(
                        "{} holds no training state, so it cannot be resumed",
                        p.display()
                    );
                };
                check_resume_flags(a, &ck.model, &snap.config, p)?;
                Some((ck.model, ck.vocab, ck.params, snap))
            }
            None => None,
        };
        let fresh = if resumed.is_none() {
            Some(fresh_config(a)?)
        } else {
            None
        };
        let mut config = match (&resumed, &fresh) {
            (Some((_, _, _, snap)), _) => snap.config.clone(),
            (None, Some((_, c))) => c.clone(),
            _ => unreachable!(),
        };

        // The text.
        let corpus = data::read_corpus(&a.files, config.lossy)?;
        let corpus_sha256 = crate::sha256::hex(corpus.text.as_bytes());
        let raw = corpus.text;
        let corpus_bytes = raw.len();
        let text = if config.ascii {
            data::to_ascii(&raw)
        } else {
            raw
        };
        let vocab = match &resumed {
            Some((_, v, _, _)) => v.clone(),
            None => Vocab::build(&text, config.max_vocab, config.min_count),
        };
        // The text as trained on: the corpus itself unless --ascii changed it.
        let fingerprint = if config.ascii {
            data::fingerprint(&text)
        } else {
            corpus_sha256.clone()
        };
        let n_chars = text.chars().count();
        if let Some((_, _, _, snap)) = &resumed {
            if snap.state.corpus.fingerprint != fingerprint {
                bail!(
                    "{} is not the text this run was trained on ({}, {} characters); resume with that file",
                    corpus.name,
                    snap.state.corpus.file,
                    snap.state.corpus.chars
                );
            }
        }
        let (ids, unknown) = vocab.encode(&text, &corpus.name)?;
        drop(text);
        let (train_ids, val_ids) = data::split(&ids, config.val_frac);
        if val_ids.len() < 2 {
            bail!(
                "the validation part of {} has {} character(s); it needs at least 2: use a larger --val-frac or a longer text",
                corpus.name,
                val_ids.len()
            );
        }
        let batches = Batches::new(train_ids, config.batch, config.seq)?;
        let spe = batches.steps_per_epoch as u64;

        // Model, optimiser and run state.
        let mut sizing_line = None;
        let (model, params, adam, carry, st) = match resumed {
            Some((m, _, p, snap)) => {
                let TrainSnapshot { state, resume, .. } = snap;
                let ResumeState { adam, carry } =
                    resume.expect("checkpoint::load reads the resume state");
                (m, p, adam, carry, state)
            }
            None => {
                let mut m = ModelConfig {
                    vocab: vocab.len(),
                    ..fresh.unwrap().0
                };
                sizing_line = size_fresh_model(
                    a,
                    &mut m,
                    &mut config,
                    (batches.train_len(), spe),
                    Threads(threads),
                );
                let layout = Layout::new(m);
                let mut rng = Rng::new(config.seed);
                let p: Vec<f32> = init_params(&layout, &mut rng);
                let adam = Adam::new(layout.total, config.lr, config.amsgrad);
                let carry = State::zeros(m.layers, config.batch, m.hidden);
                let state = TrainState {
                    step: 0,
                    epoch: 0,
                    cursor: 0,
                    steps_per_epoch: spe,
                    adam_steps: 0,
                    rng: rng.state().map(|w| format!("{w:016x}")),
                    best_val: None,
                    last_val: None,
                    evals_since_best: 0,
                    train_seconds: 0.0,
                    corpus: CorpusInfo {
                        file: corpus.name.clone(),
                        chars: n_chars,
                        fingerprint,
                    },
                };
                (m, p, adam, carry, state)
            }
        };
        let layout = Layout::new(model);
        let mut words = [0u64; 4];
        for (w, hex) in words.iter_mut().zip(&st.rng) {
            *w = u64::from_str_radix(hex, 16)
                .map_err(|_| Error::input("the checkpoint's generator state is damaged"))?;
        }
        let rng = Rng::from_state(words);
        let mut adam = adam;
        adam.weight_decay = config.weight_decay;
        adam.decay = layout
            .tensors
            .iter()
            .filter(|t| t.name.contains("weight"))
            .map(|t| t.offset..t.offset + t.len)
            .collect();

        // Where checkpoints go; fail now, not after an hour, if it cannot be written.
        let out: PathBuf = match (&a.out, &a.resume) {
            (Some(o), _) => o.clone(),
            (None, Some(r)) => r.parent().map(Path::to_path_buf).unwrap_or_default(),
            (None, None) => Path::new("runs").join(a.files[0].file_stem().unwrap_or_default()),
        };
        prepare_out_dir(&out)?;
        let run_config = serde_json::json!({
            "charrnn_version": env!("CARGO_PKG_VERSION"),
            "commit": env!("CHARRNN_COMMIT"),
            "command": std::env::args().collect::<Vec<_>>(),
            "corpus": {
                "paths": a.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "files": corpus.files,
                "skipped_files": corpus.skipped,
                "bytes": corpus_bytes,
                "chars": n_chars,
                "sha256": corpus_sha256,
                "vocabulary": vocab.len(),
            },
            "model": model,
            "parameters": Layout::new(model).total,
            "sizing": sizing_line,
            "train": config,
            "run": {
                "out": out.display().to_string(),
                "resume": a.resume.as_ref().map(|p| p.display().to_string()),
                "threads": threads,
                "steps": a.steps,
                "epochs": a.epochs,
                "minutes": a.minutes,
                "eval_every": a.eval_every,
                "log_every": a.log_every,
                "sample_every": a.sample_every,
                "keep": a.keep,
                "save_every_minutes": a.save_every_minutes,
                "patience": a.patience,
                "steps_per_epoch": spe,
            },
        });
        let text = serde_json::to_string_pretty(&run_config).unwrap() + "\n";
        checkpoint::write_atomic(&out.join("config.json"), |w| w.write_all(text.as_bytes()))?;
        let log = RunLog::open(&out, st.step)?;

        // When to stop.
        let target_steps = {
            let by_epochs = a
                .epochs
                .or((a.steps.is_none() && a.minutes.is_none()).then_some(10.0))
                .map(|e| (e * spe as f64).ceil() as u64);
            match (a.steps, by_epochs) {
                (Some(s), Some(e)) => Some(s.min(e)),
                (s, e) => s.or(e),
            }
        };
        if let Some(t) = target_steps.filter(|&t| st.step >= t) {
            bail!(
                "the run is already at step {} (target {t}); give a larger --steps or --epochs",
                st.step
            );
        }

        let progress = Progress::new();
        progress.line(&format!(
            "charrnn: {}{}: {} characters, vocabulary {}{}; train {} / validation {}",
            corpus.name,
            if corpus.skipped > 0 {
                format!(" ({} files skipped: not UTF-8 text)", corpus.skipped)
            } else {
                String::new()
            },
            n_chars,
            vocab.len(),
            if unknown > 0 {
                format!(" ({unknown} rare characters as U+FFFD)")
            } else {
                String::new()
            },
            train_ids.len(),
            val_ids.len()
        ));
        if let Some(line) = &sizing_line {
            progress.line(line);
        }
        progress.line(&format!(
            "charrnn: {} {}×{} ({} parameters), batch {} × seq {}, {} steps/epoch, lr {}, clip {}{}, {} thread(s){}",
            model.cell.label(),
            model.layers,
            model.hidden,
            layout.total,
            config.batch,
            config.seq,
            spe,
            config.lr,
            config.clip,
            if config.amsgrad { ", AMSGrad" } else { "" },
            threads,
            if st.step > 0 { format!(", resuming at step {}", st.step) } else { String::new() }
        ));
        Ok(Run {
            args: a,
            val_ids: val_ids.to_vec(),
            config,
            model,
            layout,
            vocab,
            batches,
            spe,
            threads: Threads(threads),
            out,
            params,
            adam,
            carry,
            st,
            target_steps,
            budget: a.minutes.map(|m| m * 60.0),
            progress,
            log,
            rng,
        })
    }

    /// Writes last.safetensors, best.safetensors too when `best`, and a step checkpoint when
    /// --keep asks for them (deleting all but the newest --keep).
    fn save(&mut self, best: bool) -> Result<()> {
        // The generator's state goes into the file; only a save needs it in text form.
        self.st.rng = self.rng.state().map(|w| format!("{w:016x}"));
        let step_name = format!("step-{:07}.safetensors", self.st.step);
        let keep = self.args.keep > 0;
        for (name, write) in [
            ("last.safetensors", true),
            ("best.safetensors", best),
            (step_name.as_str(), keep),
        ] {
            if write {
                let train = TrainRef {
                    config: &self.config,
                    state: &self.st,
                    adam: &self.adam,
                    carry: &self.carry,
                };
                checkpoint::save(
                    &self.out.join(name),
                    &self.model,
                    &self.vocab,
                    &self.params,
                    Some(train),
                )?;
            }
        }
        if keep {
            let mut steps: Vec<PathBuf> = std::fs::read_dir(&self.out)
                .map_err(|e| Error::io(format!("cannot list {}", self.out.display()), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("step-") && n.ends_with(".safetensors"))
                })
                .collect();
            steps.sort(); // zero-padded step numbers sort in step order
            for old in &steps[..steps.len().saturating_sub(self.args.keep)] {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    }

    /// Exact validation, then checkpoints and a short sample.
    fn validate(&mut self) -> Result<()> {
        let t0 = Instant::now();
        let val = evaluate(&self.layout, &self.params, &self.val_ids, self.threads);
        let st = &mut self.st;
        st.last_val = Some(val);
        let improved = st.best_val.is_none_or(|b| val < b);
        if improved {
            st.best_val = Some(val);
            st.evals_since_best = 0;
        } else {
            st.evals_since_best += 1;
        }
        self.save(improved)?;
        self.log.push(Record::Val {
            step: self.st.step,
            epoch: self.st.step as f64 / self.spe as f64,
            chars: self.chars_seen(),
            loss: val,
            bits_per_char: val / std::f64::consts::LN_2,
            best: improved,
        })?;
        self.progress.line(&format!(
            "step {} epoch {:.2}: validation loss {:.4} nats/char ({:.4} bits/char){} [eval {:.1}s]",
            self.st.step,
            self.st.step as f64 / self.spe as f64,
            val,
            val / std::f64::consts::LN_2,
            if improved { ", best so far" } else { "" },
            t0.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// How much of the run's budget is spent: the larger of steps / target steps and this
    /// invocation's training seconds / --minutes.
    fn progress_fraction(&self, run_seconds: f64) -> f64 {
        let by_steps = self
            .target_steps
            .map_or(0.0, |ts| self.st.step as f64 / ts as f64);
        let by_time = self.budget.map_or(0.0, |b| run_seconds / b);
        by_steps.max(by_time).clamp(0.0, 1.0)
    }

    fn chars_seen(&self) -> u64 {
        self.st.step * (self.config.batch * self.config.seq) as u64
    }

    fn print_sample(&self) {
        let sample = preview(&self.layout, &self.params, &self.vocab, self.st.step, 200);
        self.progress.line(&format!(
            "--- sample at step {} (temperature 0.8) ---\n{}\n---",
            self.st.step,
            sample.trim_end()
        ));
    }

    /// Steps until a stop condition; returns why it stopped.
    fn train_loop(&mut self) -> Result<&'static str> {
        install_interrupt_handler();
        let (b, t) = (self.config.batch, self.config.seq);
        let mut ws = Workspace::<f32>::new(&self.layout, b, t, true, self.threads);
        let mut grads = vec![0.0f32; self.layout.total];
        let (mut x, mut y) = (vec![0u32; b * t], vec![0u32; b * t]);
        let started = Instant::now();
        let mut run_seconds = 0.0; // training time in this invocation
        let mut loss_avg: Option<f64> = None;
        let (mut rate_chars, mut rate_secs) = (0.0, 0.0);
        let mut last_eval_step = None;
        let spe = self.spe;
        let (mut last_sample, mut last_save) = (Instant::now(), Instant::now());
        let (mut rss, mut last_rss) = (crate::runlog::rss_mb(), Instant::now());
        let (mut log_loss, mut log_n, mut log_secs) = (0.0, 0u64, 0.0);
        let reason = loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                break "interrupted";
            }
            if self.target_steps.is_some_and(|ts| self.st.step >= ts) {
                break "done";
            }
            if self.budget.is_some_and(|bgt| run_seconds >= bgt) {
                break "time budget reached";
            }
            if self
                .args
                .patience
                .is_some_and(|p| self.st.evals_since_best >= p)
            {
                break "stopped early: no improvement (--patience)";
            }
            let t0 = Instant::now();
            self.adam.lr = scheduled_lr(
                self.config.lr_schedule,
                self.config.lr,
                self.config.warmup,
                self.config.lr_decay,
                self.st.step,
                self.progress_fraction(run_seconds),
                self.st.step / spe,
            );
            let k = (self.st.step % spe) as usize;
            if k == 0 {
                self.carry.reset(); // new epoch: the streams restart, so does the state
            }
            self.batches.fill(k, &mut x, &mut y);
            let loss = step(
                &mut ws,
                &self.layout,
                &mut self.params,
                &mut grads,
                &mut self.adam,
                &mut self.carry,
                (&x, &y),
                self.config.clip,
                (self.config.dropout, &mut self.rng),
            );
            let st = &mut self.st;
            st.step += 1;
            st.adam_steps = self.adam.t;
            st.epoch = st.step / spe;
            st.cursor = st.step % spe;
            if !loss.is_finite() {
                self.save(false)?;
                bail!(
                    "training diverged at step {} (loss {loss}); try a smaller --lr or --clip",
                    self.st.step
                );
            }
            let dt = t0.elapsed().as_secs_f64();
            run_seconds += dt;
            st.train_seconds += dt;
            rate_chars += (b * t) as f64;
            rate_secs += dt;
            loss_avg = Some(loss_avg.map_or(loss, |l| 0.95 * l + 0.05 * loss));
            let cps = rate_chars / rate_secs;
            if rate_secs > 20.0 {
                // a moving window: halve the history
                rate_chars /= 2.0;
                rate_secs /= 2.0;
            }
            let secs_per_step = (b * t) as f64 / cps;
            let frac = self.progress_fraction(run_seconds);
            let st = &self.st;
            let mut eta = f64::INFINITY;
            if let Some(ts) = self.target_steps {
                eta = eta.min((ts - st.step.min(ts)) as f64 * secs_per_step);
            }
            if let Some(bgt) = self.budget {
                eta = eta.min(bgt - run_seconds);
            }
            let lr = if self.config.lr_schedule == Schedule::Constant && self.config.warmup == 0 {
                String::new()
            } else {
                format!(" lr {:.2e}", self.adam.lr)
            };
            let val = st.last_val.map_or("-".to_string(), |v| {
                format!("{v:.4} ({:.3} bpc)", v / std::f64::consts::LN_2)
            });
            if last_rss.elapsed() >= Duration::from_secs(1) {
                rss = crate::runlog::rss_mb(); // a read of /proc: once a second, not every step
                last_rss = Instant::now();
            }
            let status = format!(
                "step {}{} epoch {:.2} loss {:.4} val {} {:.0} chars/s{lr} elapsed {} eta {} mem {rss:.0} MB",
                st.step,
                self.target_steps.map_or(String::new(), |t| format!("/{t}")),
                st.step as f64 / spe as f64,
                loss_avg.unwrap(),
                val,
                cps,
                hms(started.elapsed().as_secs_f64()),
                if eta.is_finite() {
                    hms(eta)
                } else {
                    "-".into()
                },
            );
            self.progress.update(frac, &status);
            (log_loss, log_n, log_secs) = (log_loss + loss, log_n + 1, log_secs + dt);
            if self.st.step.is_multiple_of(self.args.log_every) {
                self.log.push(Record::Train {
                    step: self.st.step,
                    epoch: self.st.step as f64 / spe as f64,
                    chars: self.chars_seen(),
                    loss: log_loss / log_n as f64,
                    chars_per_s: (log_n * (b * t) as u64) as f64 / log_secs,
                    elapsed_s: started.elapsed().as_secs_f64(),
                    rss_mb: rss,
                    lr: self.adam.lr,
                })?;
                (log_loss, log_n, log_secs) = (0.0, 0, 0.0);
            }
            if self.st.step.is_multiple_of(self.args.eval_every) {
                self.validate()?;
                last_eval_step = Some(self.st.step);
                last_save = Instant::now();
            } else if self
                .args
                .save_every_minutes
                .is_some_and(|m| last_save.elapsed().as_secs_f64() >= 60.0 * m)
            {
                self.save(false)?;
                last_save = Instant::now();
            }
            if self.args.sample_every > 0.0
                && last_sample.elapsed().as_secs_f64() >= self.args.sample_every
            {
                self.print_sample();
                last_sample = Instant::now();
            }
        };
        if last_eval_step != Some(self.st.step) && self.st.step > 0 {
            self.validate()?;
        }
        Ok(reason)
    }

    /// The closing line, or the interrupt error (exit 130) that says how to resume.
    fn finish(self, reason: &str) -> Result<()> {
        self.progress.finish();
        let last = self.out.join("last.safetensors");
        if reason == "interrupted" {
            return Err(Error {
                kind: Kind::Interrupted,
                msg: format!(
                    "interrupted at step {}; saved {}; continue with: charrnn train {} --resume {}",
                    self.st.step,
                    last.display(),
                    self.args
                        .files
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    last.display()
                ),
            });
        }
        eprintln!(
            "charrnn: {reason} at step {} (epoch {:.2}, {} of training); best validation loss {:.4} nats/char; checkpoints in {}",
            self.st.step,
            self.st.step as f64 / self.spe as f64,
            hms(self.st.train_seconds),
            self.st.best_val.unwrap_or(f64::NAN),
            self.out.display()
        );
        Ok(())
    }
}

fn prepare_out_dir(out: &Path) -> Result<()> {
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
