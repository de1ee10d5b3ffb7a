//! Setting a run up: the text read and encoded, the model built fresh (sized for the budget)
//! or restored from a checkpoint, the output folder checked and `config.json` written, and the
//! lines that say what is about to happen.
//!
//! Owns everything before the first step. Does not step (see `run`).

use super::args::TrainArgs;
use super::config::{check_resume_flags, check_run_flags, fresh_config, target_steps};
use super::progress::Progress;
use super::run::Run;
use super::runlog::RunLog;
use super::sizing::size_fresh_model;
use crate::bail;
use crate::checkpoint::{self, CorpusInfo, ResumeState, TrainConfig, TrainSnapshot, TrainState};
use crate::data::{self, Batches, Vocab};
use crate::engine::{init_params, State, Threads};
use crate::error::{Error, Result};
use crate::model::{Layout, ModelConfig};
use crate::optim::Adam;
use crate::rng::Rng;
use std::path::{Path, PathBuf};

/// A checkpoint being resumed: its model, vocabulary, weights and training snapshot.
struct Resumed {
    model: ModelConfig,
    vocab: Vocab,
    params: Vec<f32>,
    snap: TrainSnapshot,
}

/// The text as the run sees it: encoded, with what config.json and the first line report.
struct Text {
    name: String,
    files: usize,
    skipped: usize,
    bytes: usize,
    sha256: String,
    chars: usize,
    vocab: Vocab,
    ids: Vec<u32>,
    /// Characters mapped to the unknown symbol.
    unknown: usize,
    fingerprint: String,
}

/// The model, optimiser and run state a run starts from.
struct Start {
    model: ModelConfig,
    params: Vec<f32>,
    adam: Adam<f32>,
    carry: State<f32>,
    st: TrainState,
    sizing_line: Option<String>,
}

impl<'a> Run<'a> {
    /// Checks the flags, reads the text, builds or restores the model and prepares the
    /// output folder; prints what it is about to do.
    pub(super) fn prepare(a: &'a TrainArgs) -> Result<Run<'a>> {
        let threads = crate::engine::threads_from_flag(a.threads)?;
        check_run_flags(a)?;
        let resumed = load_resumed(a)?;
        let fresh = match &resumed {
            Some(_) => None,
            None => Some(fresh_config(a)?),
        };
        let mut config = match (&resumed, &fresh) {
            (Some(r), _) => r.snap.config.clone(),
            (None, Some((_, c))) => c.clone(),
            (None, None) => unreachable!("a run is either fresh or resumed"),
        };
        let text = read_text(a, &config, resumed.as_ref())?;
        let (train_ids, val_ids) = data::split(&text.ids, config.val_frac);
        if val_ids.len() < 2 {
            bail!(
                "the validation part of {} has {} character(s); it needs at least 2: use a larger --val-frac or a longer text",
                text.name,
                val_ids.len()
            );
        }
        let batches = Batches::new(train_ids, config.batch, config.seq)?;
        let spe = batches.steps_per_epoch as u64;
        let start = match resumed {
            Some(r) => restore(r),
            None => {
                let m = ModelConfig {
                    vocab: text.vocab.len(),
                    ..fresh.expect("a fresh run has a fresh config").0
                };
                let shape = (batches.train_len(), spe);
                fresh_start(a, m, &mut config, &text, shape, Threads(threads))
            }
        };
        let rng = rng_from_state(&start.st)?;
        let layout = Layout::new(start.model);

        // Where checkpoints go; fail now, not after an hour, if it cannot be written.
        let out: PathBuf = match (&a.out, &a.resume) {
            (Some(o), _) => o.clone(),
            (None, Some(r)) => r.parent().map(Path::to_path_buf).unwrap_or_default(),
            (None, None) => Path::new("runs").join(a.files[0].file_stem().unwrap_or_default()),
        };
        prepare_out_dir(&out)?;
        write_run_config(a, &out, &text, &start, &config, (threads, spe))?;
        let log = RunLog::open(&out, start.st.step)?;
        let target_steps = target_steps(a, spe);
        if let Some(t) = target_steps.filter(|&t| start.st.step >= t) {
            bail!(
                "the run is already at step {} (target {t}); give a larger --steps or --epochs",
                start.st.step
            );
        }
        let progress = Progress::new();
        print_header(&progress, &text, &start, &layout, &config, (threads, spe));
        let mut adam = start.adam;
        adam.weight_decay = config.weight_decay;
        adam.decay = layout
            .tensors
            .iter()
            .filter(|t| t.name.contains("weight"))
            .map(|t| t.offset..t.offset + t.len)
            .collect();
        Ok(Run {
            args: a,
            val_ids: val_ids.to_vec(),
            config,
            model: start.model,
            layout,
            vocab: text.vocab,
            batches,
            spe,
            threads: Threads(threads),
            out,
            params: start.params,
            adam,
            carry: start.carry,
            st: start.st,
            target_steps,
            budget: a.minutes.map(|m| m * 60.0),
            progress,
            log,
            rng,
        })
    }
}

/// With `--resume`: the checkpoint, whose flags the command line must agree with.
fn load_resumed(a: &TrainArgs) -> Result<Option<Resumed>> {
    let Some(p) = &a.resume else {
        return Ok(None);
    };
    let ck = checkpoint::load(p)?;
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

/// Reads the corpus, applies `--ascii`, builds (or, on resume, takes) the vocabulary and
/// encodes the text. On resume the text must be the one the run was trained on.
fn read_text(a: &TrainArgs, config: &TrainConfig, resumed: Option<&Resumed>) -> Result<Text> {
    let corpus = data::read_corpus(&a.files, config.lossy)?;
    let sha256 = data::sha256_hex(corpus.text.as_bytes());
    let bytes = corpus.text.len();
    let text = if config.ascii {
        data::to_ascii(&corpus.text)
    } else {
        corpus.text
    };
    let vocab = match resumed {
        Some(r) => r.vocab.clone(),
        None => Vocab::build(&text, config.max_vocab, config.min_count),
    };
    // The text as trained on: the corpus itself unless --ascii changed it.
    let fingerprint = if config.ascii {
        data::fingerprint(&text)
    } else {
        sha256.clone()
    };
    let chars = text.chars().count();
    if let Some(r) = resumed {
        let was = &r.snap.state.corpus;
        if was.fingerprint != fingerprint {
            bail!(
                "{} is not the text this run was trained on ({}, {} characters); resume with that file",
                corpus.name,
                was.file,
                was.chars
            );
        }
    }
    let (ids, unknown) = vocab.encode(&text, &corpus.name)?;
    Ok(Text {
        name: corpus.name,
        files: corpus.files,
        skipped: corpus.skipped,
        bytes,
        sha256,
        chars,
        vocab,
        ids,
        unknown,
        fingerprint,
    })
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
    }
}

/// A fresh run: the model sized for the budget (what the flags left open), initialised from
/// the seed, with zero moments and state.
fn fresh_start(
    a: &TrainArgs,
    mut m: ModelConfig,
    config: &mut TrainConfig,
    text: &Text,
    (train_len, spe): (usize, u64),
    threads: Threads,
) -> Start {
    let sizing_line = size_fresh_model(a, &mut m, config, (train_len, spe), threads);
    let layout = Layout::new(m);
    let mut rng = Rng::new(config.seed);
    let params: Vec<f32> = init_params(&layout, &mut rng);
    let st = TrainState {
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
            file: text.name.clone(),
            chars: text.chars,
            fingerprint: text.fingerprint.clone(),
        },
    };
    Start {
        model: m,
        params,
        adam: Adam::new(layout.total, config.lr, config.amsgrad),
        carry: State::zeros(m.layers, config.batch, m.hidden),
        st,
        sizing_line,
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
    text: &Text,
    start: &Start,
    config: &TrainConfig,
    (threads, spe): (usize, u64),
) -> Result<()> {
    let run_config = serde_json::json!({
        "charrnn_version": env!("CARGO_PKG_VERSION"),
        "commit": env!("CHARRNN_COMMIT"),
        "command": std::env::args().collect::<Vec<_>>(),
        "corpus": {
            "paths": a.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "files": text.files,
            "skipped_files": text.skipped,
            "bytes": text.bytes,
            "chars": text.chars,
            "sha256": text.sha256,
            "vocabulary": text.vocab.len(),
        },
        "model": start.model,
        "parameters": Layout::new(start.model).total,
        "sizing": start.sizing_line,
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
    let json = serde_json::to_string_pretty(&run_config).expect("JSON values serialise") + "\n";
    crate::atomic::write(&out.join("config.json"), |w| w.write_all(json.as_bytes()))
}

/// The corpus line, the sizing line (fresh runs) and the model line.
fn print_header(
    progress: &Progress,
    text: &Text,
    start: &Start,
    layout: &Layout,
    config: &TrainConfig,
    (threads, spe): (usize, u64),
) {
    let (train, val) = data::split(&text.ids, config.val_frac);
    progress.line(&format!(
        "charrnn: {}{}: {} characters, vocabulary {}{}; train {} / validation {}",
        text.name,
        if text.skipped > 0 {
            format!(" ({} files skipped: not UTF-8 text)", text.skipped)
        } else {
            String::new()
        },
        text.chars,
        text.vocab.len(),
        if text.unknown > 0 {
            format!(" ({} rare characters as U+FFFD)", text.unknown)
        } else {
            String::new()
        },
        train.len(),
        val.len()
    ));
    if let Some(line) = &start.sizing_line {
        progress.line(line);
    }
    let model = start.model;
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
        if start.st.step > 0 {
            format!(", resuming at step {}", start.st.step)
        } else {
            String::new()
        }
    ));
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
