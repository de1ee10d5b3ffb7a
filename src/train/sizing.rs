//! Auto-sizing: when `--hidden` is not given, pick the hidden size (and, when `--dropout` is
//! not given, the dropout) that the run's budget buys the best model with.
//!
//! The rule, measured on tiny Shakespeare, the fairy tales and War and Peace (docs/quality.md and
//! bench/results/quality-*.md have the runs):
//! - a time budget (`--minutes`): time a few real training steps of each candidate size
//!   (2 layers by default, H = 128, 192, 256, 384, 512, 768, 1024) on this machine, with this
//!   vocabulary, batch and thread count, and take the largest that still passes over the
//!   training text at least `MIN_EPOCHS` times in the budget. Fewer passes than that and the
//!   larger model is still under-trained when time runs out; if even the smallest falls short,
//!   the smallest.
//! - an epoch or step budget: the largest size whose parameter count stays within the
//!   number of training characters (karpathy/char-rnn's rule of thumb); no probe needed.
//! - dropout from the expected passes over the text: more passes, more memorising, more
//!   dropout; 0.4 for recurrent layers with more than 2.5 parameters per training character
//!   that pass over it at least 10 times (`dropout_for`; measured: 2×512 on tiny Shakespeare
//!   for 15 minutes, 3.3 per character, ends at 1.4709 with 0.25 and 1.4494 with 0.4).
//!
//! Owns the rule and the probe. Does not own training (see `run`) or the timing loop (see
//! `optim::step::time_steps`).

use super::args::TrainArgs;
use crate::checkpoint::TrainConfig;
use crate::engine::Threads;
use crate::model::{Layout, ModelConfig};

/// Candidate hidden sizes, smallest first.
pub const SIZES: [usize; 7] = [128, 192, 256, 384, 512, 768, 1024];

/// Passes over the training text a time budget must buy for a size to be chosen.
pub const MIN_EPOCHS: f64 = 8.0;

/// What the run's stop condition promises.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// Seconds of training (`--minutes`).
    Seconds(f64),
    /// Passes over the training text (`--epochs`, or `--steps` over the steps per epoch).
    Epochs(f64),
}

/// The choice and why.
#[derive(Clone, Debug)]
pub struct Sizing {
    pub hidden: usize,
    pub dropout: f64,
    /// Passes over the training text the budget is expected to buy at this size.
    pub epochs: f64,
    /// Measured training characters per second at this size (time budgets only).
    pub chars_per_s: Option<f64>,
    /// One line for the user: what was chosen and why.
    pub reason: String,
}

/// Dropout for a run expected to pass over its text `epochs` times with `per_char` recurrent
/// parameters per training character.
pub fn dropout_for(epochs: f64, per_char: f64) -> f64 {
    let by_passes = match epochs {
        e if e < 5.0 => 0.0,
        e if e < 10.0 => 0.1,
        e if e < 15.0 => 0.2,
        _ => 0.25,
    };
    if epochs >= 10.0 && per_char > 2.5 {
        0.4
    } else {
        by_passes
    }
}

/// Parameters of the recurrent layers (not the embedding or the head) per training character.
fn recurrent_per_char(c: ModelConfig, chars: f64) -> f64 {
    let layout = Layout::new(c);
    let prefix = format!("{}.", c.cell.name());
    let n: usize = layout
        .tensors
        .iter()
        .filter(|t| t.name.starts_with(&prefix))
        .map(|t| t.len)
        .sum();
    n as f64 / chars
}

/// Picks the hidden size for `base` (its `hidden` is ignored) when `hidden` is `None`, and the
/// dropout when `dropout` is `None`. `train_chars` is the length of the training part;
/// `batch × seq` characters make one step.
pub fn choose(
    base: ModelConfig,
    hidden: Option<usize>,
    dropout: Option<f64>,
    train_chars: usize,
    budget: Budget,
    (batch, seq): (usize, usize),
    threads: Threads,
) -> Sizing {
    let chars = train_chars.max(1) as f64;
    let with = |h: usize| ModelConfig { hidden: h, ..base };
    let pick_dropout = |e: f64, h: usize| {
        dropout.unwrap_or_else(|| dropout_for(e, recurrent_per_char(with(h), chars)))
    };
    let mb = |c: f64| format!("{:.2}M", c / 1e6);
    match budget {
        Budget::Epochs(e) => {
            let h = hidden.unwrap_or_else(|| {
                let fits = |h: &&usize| Layout::new(with(**h)).total as f64 <= chars;
                *SIZES.iter().rev().find(fits).unwrap_or(&SIZES[0])
            });
            let params = Layout::new(with(h)).total as f64;
            let why = match hidden {
                Some(_) => format!("hidden {h} as given"),
                None if params > chars => format!(
                    "hidden {h}: the smallest; even it has more parameters ({}) than training characters ({})",
                    mb(params),
                    mb(chars)
                ),
                None => format!(
                    "hidden {h}: the largest with no more parameters ({}) than training characters ({})",
                    mb(params),
                    mb(chars)
                ),
            };
            Sizing {
                hidden: h,
                dropout: pick_dropout(e, h),
                epochs: e,
                chars_per_s: None,
                reason: format!("{why}; {e:.1} passes over the text"),
            }
        }
        Budget::Seconds(secs) => {
            let probe = |h: usize| {
                let layout = Layout::new(with(h));
                // The first steps of a fresh process run cold (page faults, thread start-up):
                // two untimed, then at least three timed and a quarter of a second.
                let (step_s, _) =
                    crate::optim::step::time_steps(&layout, batch, seq, threads, 2, (3, 0.25));
                (batch * seq) as f64 / step_s
            };
            let epochs_at = |rate: f64| rate * secs / chars;
            let (h, rate, why) = match hidden {
                Some(h) => (h, probe(h), format!("hidden {h} as given")),
                None => {
                    // Rates fall with size: stop probing at the first size that falls short.
                    let mut best = (SIZES[0], probe(SIZES[0]));
                    let mut short = None;
                    if epochs_at(best.1) >= MIN_EPOCHS {
                        for &h in &SIZES[1..] {
                            let r = probe(h);
                            if epochs_at(r) < MIN_EPOCHS {
                                short = Some((h, r));
                                break;
                            }
                            best = (h, r);
                        }
                    }
                    let why = match short {
                        Some((hs, rs)) => format!(
                            "hidden {}: the largest that passes over the text at least {MIN_EPOCHS} times in the budget (measured {:.0} chars/s; {hs} would manage {:.1} at {:.0} chars/s)",
                            best.0, best.1, epochs_at(rs), rs
                        ),
                        None if best.0 == SIZES[0] => format!(
                            "hidden {}: the smallest; even it passes over the text only {:.1} times in the budget (measured {:.0} chars/s)",
                            best.0, epochs_at(best.1), best.1
                        ),
                        None => format!("hidden {}: the largest candidate (measured {:.0} chars/s)", best.0, best.1),
                    };
                    (best.0, best.1, why)
                }
            };
            let e = epochs_at(rate);
            Sizing {
                hidden: h,
                dropout: pick_dropout(e, h),
                epochs: e,
                chars_per_s: Some(rate),
                reason: format!(
                    "{why}; about {e:.1} passes over {} training characters",
                    mb(chars)
                ),
            }
        }
    }
}

/// From this many distinct characters a fresh run without `--embed` learns an embedding of
/// width `AUTO_EMBED` instead of one-hot input.
pub const AUTO_EMBED_VOCAB: usize = 1000;
pub const AUTO_EMBED: usize = 128;

/// Fills in what a fresh run left to the budget: an embedding for a large vocabulary, the
/// hidden size and the dropout (see `choose`). Returns the line that says what was chosen
/// and why, or None when the flags chose everything.
pub(super) fn size_fresh_model(
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
    let s = choose(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cell;

    fn base() -> ModelConfig {
        ModelConfig {
            cell: Cell::Lstm,
            vocab: 65,
            hidden: 0,
            layers: 2,
            embed: 0,
        }
    }

    #[test]
    fn epoch_budgets_size_by_parameters_per_character() {
        let s = |chars| {
            choose(
                base(),
                None,
                None,
                chars,
                Budget::Epochs(10.0),
                (50, 50),
                Threads(1),
            )
        };
        // 2×256 with V=65 has 0.83M parameters; 2×384, 1.83M.
        assert_eq!(s(1_000_000).hidden, 256);
        assert_eq!(s(2_000_000).hidden, 384);
        assert_eq!(s(10_000).hidden, 128, "the smallest when nothing fits");
        let given = choose(
            base(),
            Some(64),
            Some(0.5),
            1_000_000,
            Budget::Epochs(3.0),
            (50, 50),
            Threads(1),
        );
        assert_eq!((given.hidden, given.dropout), (64, 0.5));
    }

    #[test]
    fn dropout_grows_with_the_passes_over_the_text_and_the_parameters_per_character() {
        assert_eq!(dropout_for(3.0, 1.0), 0.0);
        assert_eq!(dropout_for(8.0, 1.0), 0.1);
        assert_eq!(dropout_for(12.0, 1.0), 0.2);
        assert_eq!(dropout_for(40.0, 1.0), 0.25);
        assert_eq!(dropout_for(14.7, 3.3), 0.4);
        assert_eq!(dropout_for(15.1, 3.3), 0.4);
        assert_eq!(
            dropout_for(8.0, 3.3),
            0.1,
            "too few passes to memorise much"
        );
        // 2×512 on 1.0M characters: 3.3M recurrent parameters, the head and embedding not counted.
        let per_char = recurrent_per_char(
            ModelConfig {
                hidden: 512,
                embed: 16,
                ..base()
            },
            1e6,
        );
        assert!((3.1..3.3).contains(&per_char), "{per_char}");
    }

    #[test]
    fn time_budgets_take_the_largest_size_with_enough_passes() {
        // A tiny text and a generous budget: every candidate passes often enough, so the largest.
        let big = choose(
            base(),
            None,
            None,
            100,
            Budget::Seconds(1e9),
            (2, 2),
            Threads(1),
        );
        assert_eq!(big.hidden, *SIZES.last().unwrap());
        // A budget no size can fill: the smallest, and it says so.
        let small = choose(
            base(),
            None,
            None,
            1 << 30,
            Budget::Seconds(1e-3),
            (2, 2),
            Threads(1),
        );
        assert_eq!(small.hidden, SIZES[0]);
        assert!(small.reason.contains("the smallest"), "{}", small.reason);
        assert!(small.chars_per_s.unwrap() > 0.0 && small.epochs < MIN_EPOCHS);
    }
}
