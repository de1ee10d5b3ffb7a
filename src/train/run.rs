//! A training run once set up: the step loop of truncated BPTT until a stop condition, exact
//! validation and checkpoints, the progress line, the metrics log and the closing line (or
//! the Ctrl-C message that says how to resume).
//!
//! Owns what happens between the first step and the last save. Does not own the setup
//! (`setup`), the step's maths (`optim::step`) or the file format (`checkpoint`).

use super::args::TrainArgs;
use super::guard::{Guard, MAX_ROLLBACKS};
use super::interrupt;
use super::lock::RunLock;
use super::progress::{hms, rss_mb, Progress, Status};
use super::runlog::RunLog;
use super::setup::{Prepared, Start};
use crate::checkpoint::{self, Plan, TrainConfig, TrainRef, TrainState};
use crate::data::{Batches, Split, TrainingText, Vocab};
use crate::engine::{evaluate, Evaluator, State, Threads, Workspace};
use crate::error::{Error, Kind, Result};
use crate::model::{Layout, ModelConfig};
use crate::optim::{scheduled_lr, step::step, Adam};
use crate::report::metrics::Record;
use crate::rng::Rng;
use crate::sample::{Pick, Sampler};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Everything a training run holds.
pub(super) struct Run<'a> {
    args: &'a TrainArgs,
    config: TrainConfig,
    model: ModelConfig,
    layout: Layout,
    vocab: Vocab,
    batches: Batches,
    /// (C): the slice of the validation part that validation during training scores.
    val_ids: Vec<u32>,
    /// Where the text splits into training and validation.
    split: Split,
    steps_per_epoch: u64,
    threads: Threads,
    out: PathBuf,
    params: Vec<f32>,
    adam: Adam<f32>,
    carry: State<f32>,
    st: TrainState,
    /// The run's budget: the step to stop at, and the training seconds of the whole run.
    plan: Plan,
    progress: Progress,
    log: RunLog,
    /// The run's generator (dropout masks); its state is saved in every checkpoint.
    rng: Rng,
    /// The run folder's lock, held for the run's life.
    _lock: RunLock,
    /// With --full-val: the loss on the whole validation part at the end.
    full_val: Option<f64>,
    /// Seconds from this invocation's first step to its end, validation and saving included.
    wall_seconds: f64,
    /// Training seconds of the run before this invocation (0 unless resumed).
    trained_before: f64,
    /// Rollbacks the guard made in this invocation.
    rollbacks: u32,
}

/// The step loop's buffers and clocks (this invocation only; nothing here is saved).
struct Loop {
    ws: Workspace<f32>,
    grads: Vec<f32>, // (P): laid out like the parameters
    x: Vec<u32>,     // (T, B) input ids
    y: Vec<u32>,     // (T, B) target ids
    started: Instant,
    /// Exponential moving average of the training loss, for the status line.
    loss_avg: Option<f64>,
    rate: Rate,
    last_eval_step: Option<u64>,
    last_sample: Instant,
    last_save: Instant,
    rss: Rss,
    log: LogWindow,
    /// The step of the last checkpoint written, in this invocation or before.
    last_saved: Option<u64>,
    /// Steps taken in this invocation.
    steps: u64,
    /// Training seconds since the last validation (or this invocation's start).
    since_eval: f64,
    /// Steps since the last validation (or this invocation's start).
    steps_since_eval: u64,
    /// Seconds the last validation took with its checkpoint writes (0 before the first).
    eval_seconds: f64,
    /// Rolls the run back after a blow-up.
    guard: Guard,
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StopReason {
    /// Ctrl-C: saved, and the error says how to resume (exit 130).
    Interrupted,
    /// The step budget (`--steps`, `--epochs`) is reached.
    Done,
    /// The time budget (`--minutes`) is reached.
    TimeBudget,
    /// `--patience` validations in a row without improvement.
    NoImprovement,
}

impl StopReason {
    /// How the closing line says it.
    fn describe(self) -> &'static str {
        match self {
            StopReason::Interrupted => "interrupted",
            StopReason::Done => "done",
            StopReason::TimeBudget => "time budget reached",
            StopReason::NoImprovement => "stopped early: no improvement",
        }
    }
}

/// A moving window of training characters and their seconds, for chars/s.
#[derive(Default)]
struct Rate {
    chars: f64,
    seconds: f64,
}

/// The process's resident memory and when it was read (a read of /proc: once a second).
struct Rss {
    mb: f64,
    at: Instant,
}

/// The steps since the last metrics.jsonl line: their summed loss, count and seconds.
#[derive(Default)]
struct LogWindow {
    loss_sum: f64,
    steps: u64,
    seconds: f64,
}

/// Validations without improvement after which a run stops (without --patience).
pub(super) const DEFAULT_PATIENCE: u64 = 10;
/// Training seconds between validations at most (without --eval-every), unless validation
/// itself is slower (`EVAL_MAX_SHARE`).
const EVAL_AT_LEAST_EVERY: f64 = 60.0;

/// The largest share of a run's time that validation takes without --eval-every: the next
/// validation waits for at least (1 − share) / share times the last one's seconds of training
/// (four times). Validation scores one stream, character after character, about as fast as
/// training (2×304 on War and Peace: 320k characters in 15 s, training at 19k chars/s), so on a
/// large validation part 800,000 characters of training came every 40 s after 15 s of it:
/// 5:52 of a 15-minute run's 20:53.
const EVAL_MAX_SHARE: f64 = 0.2;

/// Whether a validation is due after `step`, with `since` = (steps, training seconds) since
/// the last validation, which took `last` seconds, and `steps_per_epoch`. With
/// `--eval-every N` (`flag`): at every multiple of N, so step checkpoints line up with the
/// flag. Without: once `every` steps (`default_eval_every`) or [`EVAL_AT_LEAST_EVERY`] seconds
/// have passed since the last validation, whichever is first, and not before
/// [`EVAL_MAX_SHARE`] allows; but a pass over the text is never put off (a small text, such as
/// a list of names, is checked every epoch however slow its validation). Both counts
/// restart at each validation, so the minute's clock and the characters' count never fire one
/// just after the other (they did when the count was of steps since the start: a 15-minute
/// run on tiny Shakespeare validated 25 times, mostly in pairs 55–258 steps apart, and spent
/// 6:11 of its 21:11 on validation and saving).
fn validation_due(
    flag: Option<u64>,
    (every, steps_per_epoch): (u64, u64),
    step: u64,
    since: (u64, f64),
    last: f64,
) -> bool {
    match flag {
        Some(n) => step.is_multiple_of(n),
        None => {
            since.0 >= steps_per_epoch
                || ((since.0 >= every || since.1 >= EVAL_AT_LEAST_EVERY)
                    && since.1 >= last * (1.0 - EVAL_MAX_SHARE) / EVAL_MAX_SHARE)
        }
    }
}

impl<'a> Run<'a> {
    /// The run `setup::prepare` made, before its first step.
    pub(super) fn new(p: Prepared<'a>) -> Run<'a> {
        let Prepared {
            args,
            config,
            text,
            start,
            layout,
            plan,
            rng,
            threads,
            out,
            lock,
            log,
            progress,
        } = p;
        let TrainingText {
            vocab,
            split,
            val_ids,
            batches,
            ..
        } = text;
        let Start {
            model,
            params,
            adam,
            carry,
            st,
            ..
        } = start;
        let trained_before = st.train_seconds;
        Run {
            args,
            config,
            model,
            layout,
            vocab,
            steps_per_epoch: batches.steps_per_epoch as u64,
            batches,
            val_ids,
            split,
            threads,
            out,
            params,
            adam,
            carry,
            st,
            plan,
            progress,
            log,
            rng,
            _lock: lock,
            full_val: None,
            wall_seconds: 0.0,
            trained_before,
            rollbacks: 0,
        }
    }

    /// Steps until a stop condition; returns why it stopped.
    pub(super) fn train_loop(&mut self) -> Result<StopReason> {
        let (b, t) = (self.config.batch, self.config.seq);
        let now = Instant::now();
        let mut lp = Loop {
            ws: {
                let mut ws = Workspace::<f32>::new(&self.layout, b, t, true, self.threads);
                ws.set_precision(self.config.precision);
                ws
            },
            grads: vec![0.0f32; self.layout.total],
            x: vec![0u32; b * t],
            y: vec![0u32; b * t],
            started: now,
            loss_avg: None,
            rate: Rate::default(),
            last_eval_step: None,
            last_sample: now,
            last_save: now,
            rss: Rss {
                mb: rss_mb(),
                at: now,
            },
            log: LogWindow::default(),
            last_saved: (self.st.step > 0).then_some(self.st.step),
            steps: 0,
            since_eval: 0.0,
            steps_since_eval: 0,
            eval_seconds: 0.0,
            guard: Guard::new(),
        };
        let reason = loop {
            if let Some(why) = self.stop_reason() {
                break why;
            }
            let (loss, dt) = self.train_step(&mut lp)?;
            self.show_progress(&mut lp, loss, dt);
            self.log_step(&mut lp, loss, dt)?;
            self.checkpoint_if_due(&mut lp)?;
        };
        // A fine-tuning run of --steps 0 validates and saves its starting point.
        let started = self.st.step > 0 || self.config.init_from.is_some();
        if lp.last_eval_step != Some(self.st.step) && started {
            self.validate(&mut lp)?;
        }
        if self.args.full_val
            && self.val_ids.len() < self.split.val
            && reason != StopReason::Interrupted
        {
            self.full_validation();
        }
        self.wall_seconds = lp.started.elapsed().as_secs_f64();
        self.rollbacks = lp.guard.rollbacks();
        Ok(reason)
    }

    /// Why the run should stop before the next step, if it should.
    fn stop_reason(&self) -> Option<StopReason> {
        if interrupt::requested() || self.progress.stop_requested() {
            Some(StopReason::Interrupted)
        } else if self.plan.steps.is_some_and(|ts| self.st.step >= ts) {
            Some(StopReason::Done)
        } else if self
            .plan
            .seconds
            .is_some_and(|s| self.st.train_seconds >= s)
        {
            Some(StopReason::TimeBudget)
        } else if self.st.patience.unwrap_or(DEFAULT_PATIENCE) <= self.st.evals_since_best {
            Some(StopReason::NoImprovement)
        } else {
            None
        }
    }

    /// One optimiser step at the scheduled learning rate on the epoch's next batch; returns its
    /// loss and seconds. A loss that is not finite saves and stops the run.
    fn train_step(&mut self, lp: &mut Loop) -> Result<(f64, f64)> {
        let t0 = Instant::now();
        let per_epoch = self.steps_per_epoch;
        self.adam.lr = scheduled_lr(
            self.config.lr_schedule,
            self.config.lr,
            self.config.warmup,
            self.config.lr_decay,
            self.st.step,
            self.progress_fraction(),
            self.st.step / per_epoch,
        );
        let k = (self.st.step % per_epoch) as usize;
        if k == 0 {
            self.carry.reset(); // new epoch: the streams restart, so does the state
        }
        self.batches.fill(k, &mut lp.x, &mut lp.y);
        let loss = step(
            &mut lp.ws,
            &self.layout,
            &mut self.params,
            &mut lp.grads,
            &mut self.adam,
            &mut self.carry,
            (&lp.x, &lp.y),
            self.config.clip,
            (self.config.dropout, &mut self.rng),
        );
        let st = &mut self.st;
        st.step += 1;
        st.adam_steps = self.adam.t;
        st.epoch = st.step / per_epoch;
        st.cursor = st.step % per_epoch;
        if !loss.is_finite() {
            return Err(self.diverged("the training loss", loss, lp.last_saved));
        }
        if let Some(r) = lp
            .guard
            .after_step(self.st.step, loss, &mut self.params, &mut self.adam)
        {
            self.carry.reset(); // the streams go on from a later batch than the weights saw
            self.st.adam_steps = self.adam.t;
            lp.loss_avg = None; // the jump's losses would fail the divergence check after it
            self.progress.line(&format!(
                "step {}: the training loss jumped (its 10-step average {:.3} nats/char against {:.3} over 100 steps), a blow-up: rolled back to the weights of step {} and skipped the batches in between (rollback {} of at most {MAX_ROLLBACKS})",
                r.step,
                r.fast,
                r.slow,
                r.to_step,
                lp.guard.rollbacks()
            ));
            self.log.push(Record::Rollback {
                step: r.step,
                to_step: r.to_step,
                fast: r.fast,
                slow: r.slow,
            })?;
        }
        let dt = t0.elapsed().as_secs_f64();
        self.st.train_seconds += dt;
        lp.steps += 1;
        lp.since_eval += dt;
        lp.steps_since_eval += 1;
        Ok((loss, dt))
    }

    /// The status line: step, epoch, loss, validation, speed, training time, memory.
    fn show_progress(&mut self, lp: &mut Loop, loss: f64, dt: f64) {
        let chars = (self.config.batch * self.config.seq) as f64;
        lp.rate.chars += chars;
        lp.rate.seconds += dt;
        lp.loss_avg = Some(lp.loss_avg.map_or(loss, |l| 0.95 * l + 0.05 * loss));
        let cps = lp.rate.chars / lp.rate.seconds;
        if lp.rate.seconds > 20.0 {
            // a moving window: halve the history
            lp.rate.chars /= 2.0;
            lp.rate.seconds /= 2.0;
        }
        let st = &self.st;
        let mut eta = f64::INFINITY;
        if let Some(ts) = self.plan.steps {
            eta = eta.min((ts - st.step.min(ts)) as f64 * chars / cps);
        }
        if let Some(s) = self.plan.seconds {
            eta = eta.min(s - st.train_seconds);
        }
        if lp.rss.at.elapsed() >= Duration::from_secs(1) {
            lp.rss = Rss {
                mb: rss_mb(),
                at: Instant::now(),
            };
        }
        let status = Status {
            step: st.step,
            target: self.plan.steps,
            epoch: st.step as f64 / self.steps_per_epoch as f64,
            loss: lp.loss_avg.unwrap_or(loss),
            val: st.last_val,
            chars_per_s: cps,
            train_seconds: st.train_seconds,
            budget_seconds: self.plan.seconds,
            eta,
            rss_mb: lp.rss.mb,
        };
        let frac = self.progress_fraction();
        self.progress.update(frac, &status);
    }

    /// A metrics.jsonl line every --log-every steps: the mean loss and speed since the last.
    fn log_step(&mut self, lp: &mut Loop, loss: f64, dt: f64) -> Result<()> {
        let chars = (self.config.batch * self.config.seq) as u64;
        lp.log.loss_sum += loss;
        lp.log.steps += 1;
        lp.log.seconds += dt;
        if !self.st.step.is_multiple_of(self.args.log_every) {
            return Ok(());
        }
        let LogWindow {
            loss_sum,
            steps,
            seconds,
        } = lp.log;
        self.check_divergence(lp)?;
        self.log.push(Record::Train {
            step: self.st.step,
            epoch: self.st.step as f64 / self.steps_per_epoch as f64,
            chars: self.chars_seen(),
            loss: loss_sum / steps as f64,
            chars_per_s: (steps * chars) as f64 / seconds,
            elapsed_s: lp.started.elapsed().as_secs_f64(),
            rss_mb: lp.rss.mb,
            lr: self.adam.lr,
        })?;
        lp.log = LogWindow::default();
        Ok(())
    }

    /// Validation and checkpoints every --eval-every steps, a save every
    /// --save-every-minutes, a short sample every --sample-every seconds.
    fn checkpoint_if_due(&mut self, lp: &mut Loop) -> Result<()> {
        let since = (lp.steps_since_eval, lp.since_eval);
        let every = self.eval_every();
        if validation_due(
            self.args.eval_every,
            (every, self.steps_per_epoch),
            self.st.step,
            since,
            lp.eval_seconds,
        ) {
            let t0 = Instant::now();
            self.validate(lp)?;
            lp.eval_seconds = t0.elapsed().as_secs_f64();
            lp.last_eval_step = Some(self.st.step);
            lp.last_save = Instant::now();
            lp.since_eval = 0.0;
            lp.steps_since_eval = 0;
        } else if self
            .args
            .save_every_minutes
            .is_some_and(|m| lp.last_save.elapsed().as_secs_f64() >= 60.0 * m)
        {
            self.save(false)?;
            lp.last_saved = Some(self.st.step);
            lp.last_save = Instant::now();
        }
        if self.args.sample_every > 0.0
            && lp.last_sample.elapsed().as_secs_f64() >= self.args.sample_every
        {
            self.print_sample();
            lp.last_sample = Instant::now();
        }
        Ok(())
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
            self.delete_old_step_checkpoints()?;
        }
        Ok(())
    }

    /// Keeps the newest --keep step-NNNNNNN.safetensors.
    fn delete_old_step_checkpoints(&self) -> Result<()> {
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
        Ok(())
    }

    /// Exact validation of the validation slice, then checkpoints and the log; a diverged
    /// loss stops the run before anything is saved.
    fn validate(&mut self, lp: &mut Loop) -> Result<()> {
        let t0 = Instant::now();
        self.check_divergence(lp)?;
        let val = evaluate(&self.layout, &self.params, &self.val_ids, self.threads);
        if !val.is_finite() {
            return Err(self.diverged("the validation loss", val, lp.last_saved));
        }
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
        lp.last_saved = Some(self.st.step);
        self.log.push(Record::Val {
            step: self.st.step,
            epoch: self.st.step as f64 / self.steps_per_epoch as f64,
            chars: self.chars_seen(),
            loss: val,
            bits_per_char: val / std::f64::consts::LN_2,
            best: improved,
        })?;
        self.progress.line(&format!(
            "step {} epoch {:.2}: validation loss {:.4} nats/char ({:.4} bits/char){} [eval {:.1}s]",
            self.st.step,
            self.st.step as f64 / self.steps_per_epoch as f64,
            val,
            val / std::f64::consts::LN_2,
            if improved { ", best so far" } else { "" },
            t0.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Steps between validations: --eval-every, else 800,000 characters or a pass over the
    /// text, whichever is sooner (`config::default_eval_every`).
    fn eval_every(&self) -> u64 {
        self.args.eval_every.unwrap_or_else(|| {
            super::config::default_eval_every(
                self.steps_per_epoch,
                self.config.batch,
                self.config.seq,
            )
        })
    }

    /// How much of the run's budget is spent: the larger of steps / target steps and training
    /// seconds / the time budget.
    fn progress_fraction(&self) -> f64 {
        let by_steps = self
            .plan
            .steps
            .map_or(0.0, |ts| self.st.step as f64 / ts as f64);
        let by_time = self.plan.seconds.map_or(0.0, |b| self.st.train_seconds / b);
        by_steps.max(by_time).clamp(0.0, 1.0)
    }

    /// Divergence: the training loss (its moving average over about 20 steps) stays more than
    /// a nat above a uniform guess over the vocabulary (ln V, what a model scores at
    /// initialisation). Checked before every save, so no diverged weights are written. A high
    /// validation loss with a low training loss is overfitting, not this.
    fn check_divergence(&self, lp: &Loop) -> Result<()> {
        let uniform = (self.model.vocab as f64).ln();
        match lp.loss_avg {
            Some(l) if lp.steps >= 20 && (l.is_nan() || l > uniform + 1.0) => {
                Err(self.diverged("the training loss", l, lp.last_saved))
            }
            _ => Ok(()),
        }
    }

    /// The divergence error (exit 3): what happened, what to change, what was kept.
    fn diverged(&self, what: &str, loss: f64, last_saved: Option<u64>) -> Error {
        let v = self.model.vocab;
        let clip = if self.config.clip > 0.0 {
            "keep --clip".to_string()
        } else {
            "keep --clip (it is 0, off; the default 5 bounds every step)".to_string()
        };
        let kept = match last_saved {
            Some(s) => format!(
                "best.safetensors and last.safetensors in {} are from step {s}, before it",
                self.out.display()
            ),
            None => "no checkpoint was written".to_string(),
        };
        Error {
            kind: Kind::Diverged,
            msg: format!(
                "training diverged at step {}: {what} is {loss:.4} nats/char, far above a uniform guess over the {v} characters ({:.2}), so the weights blew up; lower --lr (it is {}; the default for this cell is {}) and {clip}; {kept}",
                self.st.step,
                (v as f64).ln(),
                self.config.lr,
                super::config::default_lr(self.model.cell)
            ),
        }
    }

    /// With --full-val: the whole validation part, read in pieces, after the last step.
    fn full_validation(&mut self) {
        let t0 = Instant::now();
        let (start, len) = (self.split.train, self.split.val);
        let mut e = Evaluator::new(&self.layout, &self.params, self.threads);
        let piece = Evaluator::CHUNK * 4096;
        for s in (start..start + len).step_by(piece) {
            e.push(&self.batches.ids().to_vec(s, (s + piece).min(start + len)));
        }
        self.full_val = Some(e.mean());
        self.progress.line(&format!(
            "step {}: the whole validation part ({len} characters): {:.4} nats/char ({:.4} bits/char) [eval {:.1}s]",
            self.st.step,
            e.mean(),
            e.mean() / std::f64::consts::LN_2,
            t0.elapsed().as_secs_f64()
        ));
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

    /// The closing line, or the interrupt error (exit 130) that says how to resume.
    pub(super) fn finish(self, reason: StopReason) -> Result<()> {
        let last = self.out.join("last.safetensors");
        if reason == StopReason::Interrupted {
            self.progress.finish();
            return Err(Error {
                kind: Kind::Interrupted,
                msg: format!(
                    "interrupted at step {}; saved {}{CONTINUE_WITH}{}",
                    self.st.step,
                    last.display(),
                    self.resume_command(&last)
                ),
            });
        }
        if reason == StopReason::NoImprovement {
            self.progress.line(&format!(
                "charrnn: the validation loss has not improved for {} validations (best.safetensors holds the best, {:.4} nats/char): if the training loss still falls, the model is memorising the text (a smaller --hidden or more --dropout would generalise better); if it does not, a lower --lr may help (--patience sets how long to wait)",
                self.st.evals_since_best,
                self.st.best_val.unwrap_or(f64::NAN)
            ));
        }
        let val = match self.full_val {
            Some(f) => format!(
                "; validation loss {f:.4} nats/char on the whole validation part (best on its first {} characters: {:.4})",
                self.val_ids.len(),
                self.st.best_val.unwrap_or(f64::NAN)
            ),
            None => format!(
                "; best validation loss {:.4} nats/char",
                self.st.best_val.unwrap_or(f64::NAN)
            ),
        };
        let rolled = match self.rollbacks {
            0 => String::new(),
            1 => "; 1 rollback after a blow-up (metrics.jsonl has it)".to_string(),
            n => format!("; {n} rollbacks after blow-ups (metrics.jsonl has them)"),
        };
        self.progress.line(&format!(
            "charrnn: {} at step {} (epoch {:.2}): {}{val}{rolled}; checkpoints in {}",
            reason.describe(),
            self.st.step,
            self.st.step as f64 / self.steps_per_epoch as f64,
            self.clocks(),
            self.out.display()
        ));
        self.progress.finish();
        Ok(())
    }

    /// The closing line's clocks: training, and all of it with validation and saving. Only
    /// this invocation's wall clock is known, so a resumed run gives the whole run's training
    /// and then both clocks of this invocation (the whole run's training beside this
    /// invocation's wall clock made "in all" shorter than "of training").
    fn clocks(&self) -> String {
        let session = self.st.train_seconds - self.trained_before;
        let both = |train: f64| {
            format!(
                "{} of training ({} in all, with validation and saving)",
                hms(train),
                hms(self.wall_seconds)
            )
        };
        if self.trained_before > 0.0 {
            format!(
                "{} of training since step 0; in this invocation {}",
                hms(self.st.train_seconds),
                both(session)
            )
        } else {
            both(session)
        }
    }

    /// The command that continues this run: its files, the checkpoint, and the flags given
    /// that a checkpoint does not remember (threads decide the arithmetic; the rest what is
    /// written and when).
    fn resume_command(&self, last: &std::path::Path) -> String {
        let a = self.args;
        let mut cmd = vec!["charrnn train".to_string()];
        cmd.extend(a.files.iter().map(|p| shell_word(p)));
        cmd.push(format!("--resume {}", shell_word(last)));
        let mut flag = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                cmd.push(format!("--{name} {v}"));
            }
        };
        flag("threads", a.threads.requested.map(|v| v.to_string()));
        flag("eval-every", a.eval_every.map(|v| v.to_string()));
        flag(
            "log-every",
            (a.log_every != 10).then(|| a.log_every.to_string()),
        );
        flag("keep", (a.keep != 3).then(|| a.keep.to_string()));
        flag(
            "sample-every",
            (a.sample_every != 30.0).then(|| a.sample_every.to_string()),
        );
        flag(
            "save-every-minutes",
            a.save_every_minutes.map(|v| v.to_string()),
        );
        if a.full_val {
            cmd.push("--full-val".into());
        }
        cmd.join(" ")
    }
}

/// What an interrupted run's message says before the command that continues it.
pub(crate) const CONTINUE_WITH: &str = "; continue with: ";

/// A path as one word of a POSIX shell command (quoted when it has spaces or the like).
fn shell_word(p: &std::path::Path) -> String {
    let s = p.display().to_string();
    shlex::try_quote(&s).map_or(s.clone(), |q| q.into_owned())
}

/// A short sample to watch the model learn (its own generator: training is not disturbed).
fn preview(layout: &Layout, params: &[f32], vocab: &Vocab, seed: u64, len: usize) -> String {
    let mut s = Sampler::new(layout, params, 1);
    let mut rng = Rng::new(seed);
    let mut id = vocab.id('\n').unwrap_or(0);
    let mut out = String::new();
    for _ in 0..len {
        s.feed(&[id]);
        id = s.pick(0, &Pick::temperature(0.8), &mut rng);
        out.push(vocab.char(id));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{shell_word, validation_due, EVAL_AT_LEAST_EVERY};

    /// The steps a run of `steps` steps of `dt` seconds validates at, each validation taking
    /// `cost` seconds.
    fn validations(flag: Option<u64>, every: u64, steps: u64, (dt, cost): (f64, f64)) -> Vec<u64> {
        validations_of(flag, (every, 10_000), steps, (dt, cost))
    }

    /// `validations` of a text of `spe` steps per epoch.
    fn validations_of(
        flag: Option<u64>,
        (every, spe): (u64, u64),
        steps: u64,
        (dt, cost): (f64, f64),
    ) -> Vec<u64> {
        let (mut since, mut out) = ((0u64, 0.0f64), Vec::new());
        for step in 1..=steps {
            since = (since.0 + 1, since.1 + dt);
            let last = if out.is_empty() { 0.0 } else { cost };
            if validation_due(flag, (every, spe), step, since, last) {
                out.push(step);
                since = (0, 0.0);
            }
        }
        out
    }

    fn gaps(v: &[u64]) -> Vec<u64> {
        v.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[test]
    fn the_minute_and_the_step_count_do_not_fire_in_pairs() {
        // A minute is 480 steps of 0.125 s (exact in binary), fewer than the 781 of the
        // count: every minute, evenly (a count from the start fired at 781, 1562, … too).
        let per_minute = (EVAL_AT_LEAST_EVERY / 0.125) as u64;
        let v = validations(None, 781, 9_600, (0.125, 1.0));
        assert_eq!(v.len() as u64, 9_600 / per_minute, "{v:?}");
        assert!(gaps(&v).iter().all(|&g| g == per_minute), "{v:?}");
        // Fast steps: the count comes first, every 781 steps.
        let v = validations(None, 781, 9_600, (0.01, 1.0));
        assert_eq!(v, (1..=12).map(|k| 781 * k).collect::<Vec<_>>());
    }

    #[test]
    fn a_slow_validation_waits_for_four_times_its_seconds_of_training() {
        // Steps of 1/16 s (exact in binary): the count's 781 steps are 48.8 s of training.
        // A validation of 10 s asks for 40 s after it: the count still decides.
        let v = validations(None, 781, 12_000, (0.0625, 10.0));
        assert!(gaps(&v).iter().all(|&g| g == 781), "{v:?}");
        // One of 15 s (a large validation part) asks for 60 s: 960 steps, not 781.
        let v = validations(None, 781, 12_000, (0.0625, 15.0));
        assert_eq!(v[0], 781, "the first comes at the count");
        assert!(gaps(&v).iter().all(|&g| g == 960), "{v:?}");
        // One of 30 s asks for 120 s, longer than the minute: 1,920 steps.
        let v = validations(None, 781, 12_000, (0.0625, 30.0));
        assert!(gaps(&v).iter().all(|&g| g == 1_920), "{v:?}");
        // A pass over the text is never put off: a text of 7 steps an epoch whose validation
        // and save take far longer than its steps is still checked every epoch.
        let v = validations_of(None, (7, 7), 700, (0.001, 0.5));
        assert_eq!(v, (1..=100).map(|k| 7 * k).collect::<Vec<_>>());
        // A pass also comes before the share's wait on a large text (2,000 steps of 0.0625 s
        // is 125 s; a 40 s validation asks for 160 s).
        let v = validations_of(None, (781, 2_000), 12_000, (0.0625, 40.0));
        assert!(gaps(&v).iter().all(|&g| g == 2_000), "{v:?}");
    }

    #[test]
    fn an_explicit_eval_every_validates_at_its_multiples_whatever_the_clock() {
        let v = validations(Some(500), 781, 3_000, (1.0, 100.0));
        assert_eq!(v, vec![500, 1000, 1500, 2000, 2500, 3000]);
    }

    #[test]
    fn a_path_in_the_continue_command_is_one_shell_word() {
        use std::path::Path;
        assert_eq!(
            shell_word(Path::new("runs/x/last.safetensors")),
            "runs/x/last.safetensors"
        );
        assert_eq!(shell_word(Path::new("my tales.txt")), "'my tales.txt'");
        assert_eq!(shell_word(Path::new("it's.txt")), "\"it's.txt\"");
    }
}
