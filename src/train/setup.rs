//! Setting a run up: the text read in two streaming passes (count, then encode), the model
//! built fresh (sized for the budget) or restored from a checkpoint, the output folder locked
//! and checked, `config.json` written, and the lines that say what is about to happen.
//!
//! Owns everything before the first step. Does not step (see `run`).

use super::args::TrainArgs;
use super::config::{check_resume_flags, check_run_flags, fresh_config, plan};
use super::lock::lock;
use super::progress::Progress;
use super::run::Run;
use super::runlog::RunLog;
use super::sizing::size_fresh_model;
use crate::bail;
use crate::checkpoint::{self, CorpusInfo, ResumeState, TrainConfig, TrainSnapshot, TrainState};
use crate::data::{corpus::Scan, Batches, Corpus, Decoding, Vocab};
use crate::engine::{init_params, MatmulPrecision, State, Threads};
use crate::error::{Error, Result};
use crate::model::{Layout, ModelConfig};
use crate::optim::{Adam, Schedule};
use crate::rng::Rng;
use std::path::{Path, PathBuf};

/// A checkpoint being resumed: its model, vocabulary, weights and training snapshot.
struct Resumed {
    model: ModelConfig,
    vocab: Vocab,
    params: Vec<f32>,
    snap: TrainSnapshot,
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

/// A resumed run's settings: the checkpoint's, but for what a run may change when it resumes
/// (the products' precision).
fn resumed_config(saved: &TrainConfig, a: &TrainArgs) -> TrainConfig {
    TrainConfig {
        precision: a.precision.unwrap_or(saved.precision),
        ..saved.clone()
    }
}

/// The split of the encoded text.
struct Split {
    train: usize,
    val: usize,
    /// The slice of the validation part that validation during training scores.
    slice: Vec<u32>,
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
            (Some(r), _) => resumed_config(&r.snap.config, a),
            (None, Some((_, c))) => c.clone(),
            (None, None) => unreachable!("a run is either fresh or resumed"),
        };
        let out = out_dir(a);
        // A folder in use fails now, before a long read of the text.
        let early_lock = if out.is_dir() {
            Some(lock(&out)?)
        } else {
            None
        };
        let decoding = Decoding::new(
            config.lossy,
            a.encoding.as_deref().or(config.encoding.as_deref()),
        )?;
        let corpus = Corpus::open(&a.files)?;
        let scan = corpus.scan(&decoding, config.ascii)?;
        let vocab = match &resumed {
            Some(r) => {
                check_same_text(&scan, &r.snap.state.corpus)?;
                r.vocab.clone()
            }
            None => Vocab::from_counts(&scan.counts, config.max_vocab, config.min_count),
        };
        prepare_out_dir(&out)?;
        let run_lock = match early_lock {
            Some(l) => l,
            None => lock(&out)?,
        };
        let encoded = corpus.encode(&decoding, config.ascii, &vocab, scan.chars, &out)?;
        let ids = encoded.ids;
        let split = split(&ids, &config, &scan.name)?;
        let batches = Batches::new(ids, split.train, config.batch, config.seq)?;
        let spe = batches.steps_per_epoch as u64;
        let start = match resumed {
            Some(r) => restore(r),
            None => {
                let m = ModelConfig {
                    vocab: vocab.len(),
                    ..fresh.expect("a fresh run has a fresh config").0
                };
                let info = CorpusInfo {
                    file: scan.name.clone(),
                    chars: scan.chars as usize,
                    fingerprint: scan.fingerprint.clone(),
                };
                fresh_start(
                    a,
                    m,
                    &mut config,
                    info,
                    (split.train, spe),
                    Threads(threads),
                )
            }
        };
        let (plan, changed) = plan(a, a.resume.is_some().then_some(&start.st), spe);
        let rng = rng_from_state(&start.st)?;
        let layout = Layout::new(start.model);
        write_run_config(
            a,
            &out,
            (&corpus, &scan, &vocab),
            &start,
            &config,
            (threads, spe),
        )?;
        let log = RunLog::open(&out, start.st.step)?;
        if let Some(t) = plan.steps.filter(|&t| start.st.step >= t) {
            bail!(
                "the run is already at step {} (target {t}); give a larger --steps or --epochs",
                start.st.step
            );
        }
        if let Some(s) = plan.seconds.filter(|&s| start.st.train_seconds >= s) {
            bail!(
                "the run has already trained {:.1} of its {:.1} minutes; give --minutes to train longer",
                start.st.train_seconds / 60.0,
                s / 60.0
            );
        }
        let progress = Progress::new();
        print_header(
            &progress,
            &scan,
            &vocab,
            encoded.unknown,
            &split,
            &start,
            &layout,
            &config,
            (threads, spe),
        );
        if let Some(change) = changed {
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
        let Start {
            model,
            params,
            adam,
            carry,
            mut st,
            ..
        } = start;
        st.plan = Some(plan);
        let adam = with_weight_decay(adam, &layout, config.weight_decay);
        Ok(Run {
            args: a,
            val_ids: split.slice,
            val_split: (split.train, split.val),
            config,
            model,
            layout,
            vocab,
            batches,
            steps_per_epoch: spe,
            threads: Threads(threads),
            out,
            params,
            adam,
            carry,
            st,
            plan,
            progress,
            log,
            rng,
            _lock: run_lock,
            full_val: None,
            wall_seconds: 0.0,
            rollbacks: 0,
        })
    }
}

/// `--out`, else the resumed checkpoint's folder, else runs/<file stem>.
fn out_dir(a: &TrainArgs) -> PathBuf {
    match (&a.out, &a.resume) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => r.parent().map(Path::to_path_buf).unwrap_or_default(),
        (None, None) => Path::new("runs").join(a.files[0].file_stem().unwrap_or_default()),
    }
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

/// On resume the text must be the one the run was trained on (by fingerprint: the decoded
/// text, whatever its encoding on disk).
fn check_same_text(scan: &Scan, was: &CorpusInfo) -> Result<()> {
    if was.fingerprint != scan.fingerprint {
        bail!(
            "{} is not the text this run was trained on ({}, {} characters); resume with that file",
            scan.name,
            was.file,
            was.chars
        );
    }
    Ok(())
}

/// Splits off the last `--val-frac` as validation (⌊n·(1−val_frac)⌋, as the PyTorch peers do)
/// and reads the slice of it that validation during training scores.
fn split(ids: &crate::data::Ids, c: &TrainConfig, name: &str) -> Result<Split> {
    let n = ids.len();
    let train = (n as f64 * (1.0 - c.val_frac)) as usize;
    let val = n - train;
    if val < 2 {
        bail!(
            "the validation part of {name} has {val} character(s); it needs at least 2: use a larger --val-frac or a longer text"
        );
    }
    let slice = match c.val_chars {
        Some(k) if k >= 2 && (k as usize) < val => k as usize,
        _ => val,
    };
    Ok(Split {
        train,
        val,
        slice: ids.to_vec(train, train + slice),
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
    corpus: CorpusInfo,
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
        corpus,
        plan: None,
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
    (corpus, scan, vocab): (&Corpus, &Scan, &Vocab),
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
            "threads": threads,
            "steps": a.steps,
            "epochs": a.epochs,
            "minutes": a.minutes,
            "eval_every": a.eval_every.unwrap_or_else(|| {
                super::config::default_eval_every(spe, config.batch, config.seq)
            }),
            "log_every": a.log_every,
            "sample_every": a.sample_every,
            "keep": a.keep,
            "save_every_minutes": a.save_every_minutes,
            "patience": a.patience,
            "full_val": a.full_val,
            "steps_per_epoch": spe,
        },
    });
    let json = serde_json::to_string_pretty(&run_config).expect("JSON values serialise") + "\n";
    crate::atomic::write(&out.join("config.json"), |w| w.write_all(json.as_bytes()))
}

/// The corpus line, the sizing line (fresh runs) and the model line.
#[allow(clippy::too_many_arguments)]
fn print_header(
    progress: &Progress,
    scan: &Scan,
    vocab: &Vocab,
    unknown: u64,
    split: &Split,
    start: &Start,
    layout: &Layout,
    config: &TrainConfig,
    (threads, spe): (usize, u64),
) {
    let slice = if split.slice.len() < split.val {
        format!(" (validating on its first {})", split.slice.len())
    } else {
        String::new()
    };
    progress.line(&format!(
        "charrnn: {}{}: {} characters, vocabulary {}{}; train {} / validation {}{slice}",
        scan.name,
        if scan.skipped > 0 {
            format!(" ({} files skipped: not text)", scan.skipped)
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
    if let Some(line) = &start.sizing_line {
        progress.line(line);
    }
    if config.precision == MatmulPrecision::Bf16 && !crate::engine::amx::available() {
        progress.line("charrnn: this CPU has no bf16 matrix unit (AMX): bf16 products run as f32 products of the rounded operands, correct but no faster; --precision f32 is faster here");
    }
    let model = start.model;
    progress.line(&format!(
        "charrnn: {} {}×{} ({} parameters), batch {} × seq {}, {} steps/epoch, lr {}, clip {}{}, {} products, {} thread(s){}",
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
        config.precision.name(),
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
