//! Setting a run up: the flags checked, the checkpoint read (a resumed run, or the base of a
//! fine-tuning run), the output folder claimed (and the run it held replaced, if so asked), the
//! text read and split (`data::TrainingText`), the model built fresh (sized for the budget),
//! carried over from the base (`init_from`) or restored, `config.json` written, and the lines
//! that say what is about to happen.
//!
//! Owns everything before the first step. Does not step (see `run`), own the folder's rules
//! (see `folder`) or how a base model becomes a fine-tuning run's start (see `init_from`).

use super::args::TrainArgs;
use super::config::{check_resume_flags, check_run_flags, fresh_config, plan};
use super::folder::{out_dir, RunFolder};
use super::init_from::{carry_base, finetune_config, load_base, Base};
use super::lock::RunLock;
use super::progress::Progress;
use super::runlog::RunLog;
use super::sizing::size_fresh_model;
use crate::bail;
use crate::checkpoint::{
    self, CorpusInfo, Plan, ResumeState, TrainConfig, TrainSnapshot, TrainState,
};
use crate::data::{TextSpec, TrainedOn, TrainingText, Vocab, VocabFrom};
use crate::engine::{init_params, MatmulPrecision, State, Threads};
use crate::error::{Error, Result};
use crate::model::{Layout, ModelConfig};
use crate::optim::{Adam, Schedule};
use crate::rng::Rng;
use std::path::{Path, PathBuf};

/// Everything a run starts from (`Run::new` takes it).
pub(super) struct Prepared<'a> {
    pub(super) args: &'a TrainArgs,
    pub(super) config: TrainConfig,
    pub(super) text: TrainingText,
    pub(super) start: Start,
    pub(super) layout: Layout,
    pub(super) plan: Plan,
    /// The run's generator (dropout masks), from the state.
    pub(super) rng: Rng,
    pub(super) threads: Threads,
    pub(super) out: PathBuf,
    pub(super) lock: RunLock,
    pub(super) log: RunLog,
    pub(super) progress: Progress,
}

/// The model, optimiser and run state a run starts from.
pub(super) struct Start {
    pub(super) model: ModelConfig,
    pub(super) params: Vec<f32>,
    pub(super) adam: Adam<f32>,
    pub(super) carry: State<f32>,
    pub(super) st: TrainState,
    /// What the sizing chose and why (fresh runs that left something to it), or which
    /// settings a fine-tuning run took.
    pub(super) sizing_line: Option<String>,
    /// What a fine-tuning run took from its base (and a warning when that is little).
    pub(super) init_lines: Vec<String>,
}

/// A checkpoint being resumed: its model, vocabulary, weights and training snapshot.
struct Resumed {
    model: ModelConfig,
    vocab: Vocab,
    params: Vec<f32>,
    snap: TrainSnapshot,
}

/// Where a run starts: a checkpoint, the model the flags describe (its vocabulary, and
/// the hidden size unless given, still open), or a base model to fine-tune (with the line
/// that says which settings the run takes).
enum Origin {
    Resumed(Box<Resumed>),
    Fresh(ModelConfig),
    Base(Box<Base>, String),
}

impl Origin {
    /// The training state of the checkpoint resumed.
    fn state(&self) -> Option<&TrainState> {
        match self {
            Origin::Resumed(r) => Some(&r.snap.state),
            Origin::Fresh(_) | Origin::Base(..) => None,
        }
    }
}

/// Checks the flags, reads the text, builds or restores the model and prepares the output
/// folder; prints what it is about to do through `progress`.
pub(super) fn prepare(a: &TrainArgs, progress: Progress) -> Result<Prepared<'_>> {
    let threads = Threads(a.threads.count()?);
    check_run_flags(a)?;
    let (origin, mut config) = origin(a)?;
    check_memory(a, &origin, &config, threads, None)?;
    let out = out_dir(a);
    let mut folder = RunFolder::claim(out.clone(), a, origin.state())?;
    let text = TrainingText::read(&text_spec(a, &config, &origin), || folder.make())?;
    check_memory(a, &origin, &config, threads, Some(&text))?;
    let mut start = match origin {
        Origin::Resumed(r) => restore(*r),
        Origin::Fresh(m) => fresh_start(a, m, &mut config, &text, threads),
        Origin::Base(b, line) => finetune_start(*b, line, &mut config, &text),
    };
    let steps_per_epoch = text.batches.steps_per_epoch as u64;
    let (plan, changed) = plan(a, a.resume.is_some().then_some(&start.st), steps_per_epoch);
    // A resumed run keeps its --patience unless a new one is given.
    start.st.patience = a.patience.or(start.st.patience);
    if a.resume.is_some() {
        check_budget_left(&plan, &start.st)?;
        check_patience_left(&start.st)?;
    }
    let rng = rng_from_state(&start.st)?;
    let layout = Layout::new(start.model);
    folder.replace_old_run()?;
    write_run_config(a, &out, &text, &start, &config, threads)?;
    let log = RunLog::open(&out, start.st.step)?;
    print_header(&progress, &text, &start, &layout, &config, threads);
    if let Some(change) = changed {
        print_budget_change(&progress, &change, &config);
    }
    start.st.plan = Some(plan);
    start.adam = with_weight_decay(start.adam, &layout, config.weight_decay);
    Ok(Prepared {
        args: a,
        config,
        text,
        start,
        layout,
        plan,
        rng,
        threads,
        out,
        lock: folder.into_lock(),
        log,
        progress,
    })
}

/// The checkpoint resumed (its flags checked against the command line), the base model to
/// fine-tune, or the fresh model's flags; and the run's settings.
fn origin(a: &TrainArgs) -> Result<(Origin, TrainConfig)> {
    if let Some(r) = load_resumed(a)? {
        let config = resumed_config(&r.snap.config, a);
        return Ok((Origin::Resumed(Box::new(r)), config));
    }
    let base = load_base(a)?;
    let (model, config) = fresh_config(a)?;
    Ok(match base {
        Some(b) => {
            let (config, line) = finetune_config(a, &b, config);
            (Origin::Base(Box::new(b), line), config)
        }
        None => (Origin::Fresh(model), config),
    })
}

/// Refuses a run past the memory available, before what it sizes is allocated (see
/// `memory`): before the text is read (`text` None) with what is known, a resumed run's text
/// and vocabulary from its checkpoint, a base model's vocabulary, a fresh run's as of one
/// character, the text as empty (a lower bound); after, exactly.
fn check_memory(
    a: &TrainArgs,
    origin: &Origin,
    config: &TrainConfig,
    threads: Threads,
    text: Option<&TrainingText>,
) -> Result<()> {
    use super::memory::{as_flags_give, check, Text};
    let (model, chars, vocab) = match origin {
        Origin::Resumed(r) => (r.model, r.snap.state.corpus.chars as u64, r.vocab.len()),
        Origin::Base(b, _) => (b.model, 0, b.vocab.len()),
        Origin::Fresh(m) => (*m, 0, 1),
    };
    let text = text.map_or(Text { chars, vocab }, |t| Text {
        chars: t.scan.chars,
        vocab: t.vocab.len(),
    });
    let model = match origin {
        Origin::Fresh(_) => as_flags_give(a, model, text.vocab),
        // A base model's vocabulary grows by the text's new characters.
        _ => ModelConfig {
            vocab: text.vocab,
            ..model
        },
    };
    let resumed = matches!(origin, Origin::Resumed(_));
    let probed = matches!(origin, Origin::Fresh(_)) && a.hidden.is_none();
    check(&model, config, threads.0, text, resumed, probed)
}

/// A resumed run's settings: the checkpoint's, but for what a run may change when it resumes
/// (the products' precision).
fn resumed_config(saved: &TrainConfig, a: &TrainArgs) -> TrainConfig {
    TrainConfig {
        precision: a.precision.unwrap_or(saved.precision),
        ..saved.clone()
    }
}

/// What to read: the files and the reading flags; a resumed run's vocabulary and text.
fn text_spec<'a>(a: &'a TrainArgs, config: &'a TrainConfig, origin: &'a Origin) -> TextSpec<'a> {
    TextSpec {
        files: &a.files,
        lossy: config.lossy,
        encoding: a.encoding.as_deref().or(config.encoding.as_deref()),
        ascii: config.ascii,
        vocab: match origin {
            Origin::Resumed(r) => {
                let was = &r.snap.state.corpus;
                VocabFrom::Resumed {
                    vocab: &r.vocab,
                    trained_on: TrainedOn {
                        file: &was.file,
                        chars: was.chars,
                        fingerprint: &was.fingerprint,
                    },
                }
            }
            Origin::Fresh(_) => VocabFrom::Counts {
                max_vocab: config.max_vocab,
                min_count: config.min_count,
            },
            Origin::Base(b, _) => VocabFrom::Extends {
                base: &b.vocab,
                max_vocab: config.max_vocab,
                min_count: config.min_count,
            },
        },
        val_frac: config.val_frac,
        val_chars: config.val_chars,
        batch: config.batch,
        seq: config.seq,
    }
}

/// A resumed run already at its budget is refused: nothing would be trained.
fn check_budget_left(plan: &Plan, st: &TrainState) -> Result<()> {
    if let Some(t) = plan.steps.filter(|&t| st.step >= t) {
        bail!(
            "the run is already at step {} (target {t}); give a larger --steps or --epochs",
            st.step
        );
    }
    if let Some(s) = plan.seconds.filter(|&s| st.train_seconds >= s) {
        bail!(
            "the run has already trained {:.1} of its {:.1} minutes; give --minutes to train longer",
            st.train_seconds / 60.0,
            s / 60.0
        );
    }
    Ok(())
}

/// A resumed run that stopped early is refused unless --patience now allows more validations
/// without improvement: it would validate once and stop again, having trained nothing.
fn check_patience_left(st: &TrainState) -> Result<()> {
    let k = st.patience.unwrap_or(super::run::DEFAULT_PATIENCE);
    if st.evals_since_best >= k {
        bail!(
            "the run stopped early at step {}: its validation loss has not improved for {} validations (--patience {k}), so it would stop again at once; give --patience more than {} to train on (best.safetensors holds the best model)",
            st.step,
            st.evals_since_best,
            st.evals_since_best
        );
    }
    Ok(())
}

/// The line that says a resumed run's budget changed (and what that does to a cosine
/// schedule).
fn print_budget_change(progress: &Progress, change: &str, config: &TrainConfig) {
    let cosine = config.lr_schedule == Schedule::Cosine;
    progress.line(&format!(
        "charrnn: {change}{}",
        if cosine {
            "; the cosine learning-rate schedule is re-planned over the new budget from here, so the run is not the one a single run of that length would give"
        } else {
            ""
        }
    ));
}

/// AdamW's decay applies to the weight matrices, not the biases.
fn with_weight_decay(mut adam: Adam<f32>, layout: &Layout, weight_decay: f64) -> Adam<f32> {
    adam.weight_decay = weight_decay;
    adam.decay = layout
        .tensors
        .iter()
        .filter(|t| t.name.contains("weight"))
        .map(|t| t.offset..t.offset + t.len)
        .collect();
    adam
}

/// With `--resume`: the checkpoint, whose flags the command line must agree with.
fn load_resumed(a: &TrainArgs) -> Result<Option<Resumed>> {
    let Some(p) = &a.resume else {
        return Ok(None);
    };
    let ck = checkpoint::load(p)?;
    if ck.weights_only {
        bail!(
            "{} holds the weights alone (an export: no optimiser moments or carried state), so it cannot be resumed; start a new run from it with --init-from {}",
            p.display(),
            p.display()
        );
    }
    let Some(snap) = ck.train else {
        bail!(
            "{} holds no training state, so it cannot be resumed",
            p.display()
        );
    };
    check_resume_flags(a, &ck.model, &snap.config, p)?;
    Ok(Some(Resumed {
        model: ck.model,
        vocab: ck.vocab,
        params: ck.params,
        snap,
    }))
}

/// The resumed run's model, optimiser and state, as saved.
fn restore(r: Resumed) -> Start {
    let TrainSnapshot { state, resume, .. } = r.snap;
    let ResumeState { adam, carry } = resume.expect("checkpoint::load reads the resume state");
    Start {
        model: r.model,
        params: r.params,
        adam,
        carry,
        st: state,
        sizing_line: None,
        init_lines: Vec::new(),
    }
}

/// A fresh run: the model sized for the budget (what the flags left open), initialised from
/// the seed, with zero moments and state.
fn fresh_start(
    a: &TrainArgs,
    m: ModelConfig,
    config: &mut TrainConfig,
    text: &TrainingText,
    threads: Threads,
) -> Start {
    let mut m = ModelConfig {
        vocab: text.vocab.len(),
        ..m
    };
    let sizing_line = size_fresh_model(a, &mut m, config, &text.batches, threads);
    let mut rng = Rng::new(config.seed);
    let params: Vec<f32> = init_params(&Layout::new(m), &mut rng);
    new_run(m, params, config, text, &rng, sizing_line)
}

/// A fine-tuning run: the base's model and weights carried to the text's vocabulary, with
/// zero moments and state.
fn finetune_start(
    base: Base,
    line: String,
    config: &mut TrainConfig,
    text: &TrainingText,
) -> Start {
    let (m, params, init_lines) = carry_base(base, text, config);
    let rng = Rng::new(config.seed);
    Start {
        init_lines,
        ..new_run(m, params, config, text, &rng, Some(line))
    }
}

/// A run at step 0 from these weights: zero Adam moments and carried state, the generator
/// `rng` as it is now.
fn new_run(
    m: ModelConfig,
    params: Vec<f32>,
    config: &TrainConfig,
    text: &TrainingText,
    rng: &Rng,
    sizing_line: Option<String>,
) -> Start {
    let layout = Layout::new(m);
    let st = TrainState {
        step: 0,
        epoch: 0,
        cursor: 0,
        steps_per_epoch: text.batches.steps_per_epoch as u64,
        adam_steps: 0,
        rng: rng.state().map(|w| format!("{w:016x}")),
        best_val: None,
        last_val: None,
        evals_since_best: 0,
        patience: None,
        train_seconds: 0.0,
        corpus: CorpusInfo {
            file: text.scan.name.clone(),
            chars: text.scan.chars as usize,
            fingerprint: text.scan.fingerprint.clone(),
        },
        plan: None,
    };
    Start {
        model: m,
        params,
        adam: Adam::new(layout.total, config.lr, config.amsgrad),
        carry: State::zeros(m.layers, config.batch, m.hidden),
        st,
        sizing_line,
        init_lines: Vec::new(),
    }
}

/// The run's generator from the state's hex words.
fn rng_from_state(st: &TrainState) -> Result<Rng> {
    let mut words = [0u64; 4];
    for (w, hex) in words.iter_mut().zip(&st.rng) {
        *w = u64::from_str_radix(hex, 16)
            .map_err(|_| Error::input("the checkpoint's generator state is damaged"))?;
    }
    Ok(Rng::from_state(words))
}

/// config.json: every setting, the corpus, the build and the command line.
fn write_run_config(
    a: &TrainArgs,
    out: &Path,
    text: &TrainingText,
    start: &Start,
    config: &TrainConfig,
    threads: Threads,
) -> Result<()> {
    let (corpus, scan, vocab) = (&text.corpus, &text.scan, &text.vocab);
    let steps_per_epoch = text.batches.steps_per_epoch as u64;
    let run_config = serde_json::json!({
        "charrnn_version": env!("CARGO_PKG_VERSION"),
        "commit": env!("CHARRNN_COMMIT"),
        "command": std::env::args().collect::<Vec<_>>(),
        "corpus": {
            "paths": a.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "files": scan.files,
            "skipped_files": scan.skipped,
            "bytes": corpus.bytes,
            "chars": scan.chars,
            "sha256": scan.sha256,
            "encoding": config.encoding,
            "vocabulary": vocab.len(),
        },
        "model": start.model,
        "parameters": Layout::new(start.model).total,
        "sizing": start.sizing_line,
        "train": config,
        "run": {
            "out": out.display().to_string(),
            "resume": a.resume.as_ref().map(|p| p.display().to_string()),
            "threads": threads.0,
            "steps": a.steps,
            "epochs": a.epochs,
            "minutes": a.minutes,
            "eval_every": a.eval_every.unwrap_or_else(|| {
                super::config::default_eval_every(steps_per_epoch, config.batch, config.seq)
            }),
            "log_every": a.log_every,
            "sample_every": a.sample_every,
            "keep": a.keep,
            "save_every_minutes": a.save_every_minutes,
            "patience": a.patience,
            "full_val": a.full_val,
            "steps_per_epoch": steps_per_epoch,
        },
    });
    let json = serde_json::to_string_pretty(&run_config).expect("JSON values serialise") + "\n";
    crate::atomic::write(&out.join("config.json"), |w| w.write_all(json.as_bytes()))
}

/// The corpus line, the sizing line (fresh runs) and the model line.
fn print_header(
    progress: &Progress,
    text: &TrainingText,
    start: &Start,
    layout: &Layout,
    config: &TrainConfig,
    threads: Threads,
) {
    let (scan, vocab, unknown, split) = (&text.scan, &text.vocab, text.unknown, text.split);
    let slice = if text.val_ids.len() < split.val {
        format!(" (validating on its first {})", text.val_ids.len())
    } else {
        String::new()
    };
    progress.line(&format!(
        "charrnn: {}{}: {} characters, vocabulary {}{}; train {} / validation {}{slice}",
        scan.name,
        if !scan.skipped.is_empty() {
            format!(" ({} files skipped: not text)", scan.skipped.len())
        } else {
            String::new()
        },
        scan.chars,
        vocab.len(),
        if unknown > 0 {
            format!(" ({unknown} rare characters as U+FFFD)")
        } else {
            String::new()
        },
        split.train,
        split.val
    ));
    for line in scan.skip_lines() {
        progress.line(&line);
    }
    for line in start.init_lines.iter().chain(&start.sizing_line) {
        progress.line(line);
    }
    if config.precision == MatmulPrecision::Bf16
        && !crate::engine::isa::kernels().bf16.in_hardware()
    {
        progress.line("charrnn: this CPU multiplies no bf16 itself (neither AMX nor AVX512_BF16, or CHARRNN_KERNELS chose neither): bf16 products run as f32 products of the rounded operands, correct but slower; --precision f32 is faster here");
    }
    let model = start.model;
    progress.line(&format!(
        "charrnn: {} {}×{} ({} parameters), batch {} × seq {}, {} steps/epoch, lr {}, clip {}{}, {}, {} thread(s){}",
        model.cell.label(),
        model.layers,
        model.hidden,
        layout.total,
        config.batch,
        config.seq,
        text.batches.steps_per_epoch,
        config.lr,
        config.clip,
        if config.amsgrad { ", AMSGrad" } else { "" },
        crate::engine::isa::kernels().products(config.precision == MatmulPrecision::Bf16),
        threads.0,
        if start.st.step > 0 {
            format!(", resuming at step {}", start.st.step)
        } else {
            String::new()
        }
    ));
}
