//! A run's settings from its flags: a fresh run's, checked and with defaults filled in, or a
//! resumed run's, whose flags must agree with the checkpoint's; and when the run stops.
//!
//! Owns the defaults and the checks of the training flags. Does not read text or build the
//! model (see `setup`).

use super::args::TrainArgs;
use crate::bail;
use crate::checkpoint::{default_lr_decay, Plan, TrainConfig, TrainState};
use crate::engine::MatmulPrecision;
use crate::error::Result;
use crate::model::ModelConfig;
use crate::optim::Schedule;
use std::path::Path;

/// Validation during training scores this many characters of the validation part by default.
pub const DEFAULT_VAL_CHARS: u64 = 1_000_000;

/// The Adam learning rate without `--lr`: 4e-3 for the LSTM, 2e-3 (karpathy/char-rnn's) for
/// the GRU and the plain RNN. Measured on War and Peace, 2×256 LSTM, bf16, 2 threads, seeds 1
/// to 3, 1,500 steps at a constant rate: 2e-3 ended at 1.643, 1.682, 1.618 nats/char; 4e-3 at
/// 1.439, 1.483; 8e-3 (200 warm-up steps) at 1.426, 1.435; a 100-step warm-up at 2e-3 made
/// it worse (1.728, 1.746, 1.709). With the default cosine over a five-minute budget (6,050
/// steps, seed 1) 4e-3 ended at 1.2412, where eleven five-minute runs at 2e-3 had ended
/// between 1.25 and 1.53 (`bench/results/lr-2026-11-30-5683b90.md`). The other cells were not
/// measured, so they keep 2e-3.
pub fn default_lr(cell: crate::model::Cell) -> f64 {
    match cell {
        crate::model::Cell::Lstm => 4e-3,
        _ => 2e-3,
    }
}

/// The learning rate of a fine-tuning run (`--init-from`) without `--lr`, as a share of the
/// cell's fresh rate (`default_lr`): 0.003 for the LSTM. Measured on a quick 2×256 base, 400
/// steps on 50,000 characters the base had not seen, one seed
/// (`bench/results/finetune-defaults-2026-12-02.md`): English (War and Peace)
/// 0.0005, 0.001, 0.002, 0.003, 0.004 ended at 1.4533, 1.4090, 1.3876, 1.3861, 1.3911
/// nats/char; German with ä ö ü ß, new to the base, 0.001 to 0.004 at 1.6336, 1.5296, 1.4933,
/// 1.4863. The GRU's and RNN's share is not measured.
pub const FINETUNE_LR_SHARE: f64 = 0.75;

/// The learning rate of a fine-tuning run with a base of this cell and no `--lr`.
pub fn finetune_lr(cell: crate::model::Cell) -> f64 {
    FINETUNE_LR_SHARE * default_lr(cell)
}

/// The warm-up of a fine-tuning run without `--warmup`: none. Fresh Adam moments make the first
/// steps move every weight by about the learning rate, but a warm-up of 50 or 150 steps made no
/// difference that could be measured (1.3876 and 1.3911 nats/char against 1.3860 without, at
/// 0.002, English, in the measurement of `FINETUNE_LR_SHARE`).
pub const FINETUNE_WARMUP: u64 = 0;

/// The dropout of a fine-tuning run without `--dropout`: 0.2 whatever the passes (the sizing
/// rule of fresh runs would give 0.4 to most fine-tuning runs, which pass over a small text
/// dozens of times). In the measurement of `FINETUNE_LR_SHARE` (about nine passes), 0, 0.2 and
/// 0.4 ended at 1.3921, 1.3876 and 1.4434 nats/char.
pub const FINETUNE_DROPOUT: f64 = 0.2;

/// Streams per step without `--batch`: 32 (karpathy/char-rnn's was 50). More, smaller updates
/// in the same minutes, and on AMX a whole number of 16-row tiles (50 streams pad to 64 rows).
/// Measured at 5 minutes, defaults otherwise, 2 threads, one sitting
/// (`bench/results/recipe-2026-12-01-8a0db24.md`), batch 50 → 32, nats/char: fairy tales bf16
/// seeds 1 and 2, 1.2332 → 1.2202 and 1.2240 → 1.1970; tiny Shakespeare bf16, 1.4694 → 1.4634
/// and 1.4772 → 1.4601; fairy tales f32 seed 1, 1.2537 → 1.2302.
pub const DEFAULT_BATCH: usize = 32;

/// Characters per stream per step without `--seq`: 32 (karpathy/char-rnn's was 50). Steps of
/// 32 × 32 characters give 1.56 times the updates per character, about 1.4 times per minute,
/// for about 10 % fewer characters a second (9–13 % in `charrnn bench`); the state still
/// carries across steps, only the gradient is cut sooner. Measured at 5 minutes, defaults
/// otherwise, 2 threads, one sitting, alternating (`bench/results/recipe-2026-12-01-b5716f4.md`),
/// seq 50 → 32, nats/char: fairy tales seeds 1 and 2, 1.2421 → 1.2117 (both 2×256) and
/// 1.2880 → 1.2008 (2×224 and 2×240: the sizing's probe moved with the machine); tiny
/// Shakespeare 1.4678 → 1.4725 and 1.4830 → 1.4779 (2×256 against 2×240 and 2×288).
pub const DEFAULT_SEQ: usize = 32;

/// Characters of training between validations without `--eval-every`: 800,000 (500 steps of
/// 32 × 50, the cadence before the default became 32 × 32; 781 steps of it now), so that
/// smaller steps do not validate more often.
pub const EVAL_EVERY_CHARS: usize = 800_000;

/// Steps between validations without `--eval-every`: [`EVAL_EVERY_CHARS`] in steps of
/// `batch × seq` characters, or one pass over the text (`steps_per_epoch`), whichever is
/// sooner (a small text is checked every epoch); at least 1.
pub fn default_eval_every(steps_per_epoch: u64, batch: usize, seq: usize) -> u64 {
    let by_chars = (EVAL_EVERY_CHARS / (batch * seq).max(1)).max(1) as u64;
    steps_per_epoch.clamp(1, by_chars)
}

/// The products' precision without `--precision` before anything is measured (see
/// `precision`: bf16 on AMX, else f32); a fresh run's sizing may measure and change it.
pub fn default_precision() -> MatmulPrecision {
    super::precision::decide(None, None, crate::engine::isa::kernels()).precision
}

/// The flags of a fresh run, checked, with defaults filled in; without --hidden the hidden
/// size is 0 and without --dropout the dropout 0 until `size_fresh_model` chooses them.
pub(super) fn fresh_config(a: &TrainArgs) -> Result<(ModelConfig, TrainConfig)> {
    let layers = a.layers.unwrap_or(2);
    let cfg = TrainConfig {
        batch: a.batch.unwrap_or(DEFAULT_BATCH),
        seq: a.seq.unwrap_or(DEFAULT_SEQ),
        lr: a
            .lr
            .unwrap_or_else(|| default_lr(a.cell.unwrap_or_default())),
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
        encoding: a.encoding.clone(),
        val_chars: Some(a.val_chars.unwrap_or(DEFAULT_VAL_CHARS)),
        precision: a.precision.unwrap_or_else(default_precision),
        init_from: None,
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
    check_model_limits(a.hidden, layers, a.embed)?;
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

/// A model a checkpoint can hold (`checkpoint::MAX_HIDDEN`, `MAX_LAYERS`; the embedding as wide
/// as a hidden size at most): beyond them a run could not be saved or read back, and they keep
/// every count of the layout within 64 bits. `bench` keeps to them too.
pub fn check_model_limits(
    hidden: Option<usize>,
    layers: usize,
    embed: Option<usize>,
) -> Result<()> {
    use crate::checkpoint::{MAX_HIDDEN, MAX_LAYERS};
    for (name, v, max) in [
        ("--hidden", hidden.unwrap_or(1), MAX_HIDDEN),
        ("--layers", layers, MAX_LAYERS),
        ("--embed", embed.unwrap_or(0), MAX_HIDDEN),
    ] {
        if v > max {
            bail!("{name} must be at most {max} (the largest a checkpoint holds), got {v}");
        }
    }
    Ok(())
}

/// On resume, a flag that would change the arithmetic must agree with the checkpoint.
pub(super) fn check_resume_flags(
    a: &TrainArgs,
    m: &ModelConfig,
    c: &TrainConfig,
    ckpt: &Path,
) -> Result<()> {
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
        "--val-chars",
        a.val_chars.map(|v| v.to_string()),
        c.val_chars.map_or("0".into(), |v| v.to_string()),
    );
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

/// The step a run stops at, from `--steps` and `--epochs` (the whole run's; 10 epochs when no
/// budget is given at all), or None when only `--minutes` bounds it.
fn target_steps(a: &TrainArgs, steps_per_epoch: u64) -> Option<u64> {
    let by_epochs = a
        .epochs
        .or((a.steps.is_none() && a.minutes.is_none()).then_some(10.0))
        .map(|e| (e * steps_per_epoch as f64).ceil() as u64);
    match (a.steps, by_epochs) {
        (Some(s), Some(e)) => Some(s.min(e)),
        (s, e) => s.or(e),
    }
}

/// The run's budget. A fresh run's comes from its flags. A resumed run keeps the one in its
/// checkpoint unless a budget flag is given (then `--steps`/`--epochs` count the whole run and
/// `--minutes` this invocation's training); the second value says what changed, if anything.
pub(super) fn plan(
    a: &TrainArgs,
    saved: Option<&TrainState>,
    steps_per_epoch: u64,
) -> (Plan, Option<String>) {
    let given = a.steps.is_some() || a.epochs.is_some() || a.minutes.is_some();
    let spent = saved.map_or(0.0, |s| s.train_seconds);
    let from_flags = Plan {
        steps: target_steps(a, steps_per_epoch),
        seconds: a.minutes.map(|m| spent + 60.0 * m),
    };
    match saved.map(|s| s.plan) {
        None => (from_flags, None),
        Some(Some(p)) if !given => (p, None),
        Some(old) => {
            let show = |p: Option<Plan>| match p {
                None => "10 epochs (a checkpoint without a saved budget)".to_string(),
                Some(p) => p.describe(),
            };
            let changed = (old != Some(from_flags)).then(|| {
                format!(
                    "the run's budget changes from {} to {}",
                    show(old),
                    show(Some(from_flags))
                )
            });
            (from_flags, changed.filter(|_| given))
        }
    }
}

/// Checks the flags that do not depend on the text or the checkpoint.
pub(super) fn check_run_flags(a: &TrainArgs) -> Result<()> {
    if let (Some(r), Some(_)) = (&a.resume, &a.init_from) {
        bail!(
            "--init-from starts a new run from a model and --resume continues a run; give one of them (a fine-tuning run continues with --resume {} alone)",
            r.display()
        );
    }
    if a.eval_every == Some(0) {
        bail!("--eval-every must be at least 1");
    }
    if a.steps == Some(0) && a.init_from.is_none() {
        bail!("--steps must be at least 1 (0 only with --init-from, to validate and save the starting point)");
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::default_eval_every;

    #[test]
    fn validation_comes_every_800k_characters_or_every_pass() {
        // The old cadence at 32 × 50 is kept: 500 steps.
        assert_eq!(default_eval_every(627, 32, 50), 500);
        // Smaller steps validate after as many characters, not as many steps.
        assert_eq!(default_eval_every(980, 32, 32), 781);
        // A small text is checked every pass; a step larger than 800,000 characters every step.
        assert_eq!(default_eval_every(3, 32, 32), 3);
        assert_eq!(default_eval_every(0, 32, 32), 1);
        assert_eq!(default_eval_every(100, 1000, 1000), 1);
    }
}
