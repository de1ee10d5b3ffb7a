//! Auto-sizing: when `--hidden` is not given, pick the hidden size (and, when `--dropout` is
//! not given, the dropout) that the run's budget buys the best model with.
//!
//! The rule, measured on tiny Shakespeare, the fairy tales and War and Peace
//! (`bench/results/quality-*.md` has the runs; `docs/quality.md` the summary):
//! - a time budget (`--minutes`): a probe times real training steps at two sizes on this
//!   machine, with this vocabulary, batch and thread count, drawing dropout masks as the run
//!   will (`PROBE_DROPOUT`; median of several steps each, the spread printed), and fits
//!   seconds per character = a + b·FLOPs(H). The size chosen is the
//!   largest (in steps of 16) whose budget still shows it `CHARS_PER_PARAM` characters per
//!   parameter: a model seeing fewer is still under-trained when time runs out, one seeing many
//!   more could have been larger. The size follows machine speed smoothly (half the speed,
//!   about 1/√2 the parameters), and a probe off by 10 % moves it by about 5 %, not a step.
//! - unless the text is what runs out: when that size would pass over the text more than
//!   `ENOUGH_PASSES` times, the budget buys the largest size that still passes over it that
//!   often, held back by strong dropout (measured on tiny Shakespeare, 5 minutes: 2×304 at
//!   15.5 passes, dropout 0.25, 1.4621 and 1.4693; 2×384 at 11.4 passes, dropout 0.4, 1.4512
//!   and 1.4529). The larger of the two sizes is taken, so the size still moves a step at a
//!   time with machine speed.
//! - an epoch or step budget: the largest size with no more parameters than training
//!   characters (karpathy/char-rnn's rule of thumb); no probe needed.
//! - either way, never more than `MAX_PARAMS_PER_CHAR` parameters per training character (a
//!   list of names gets a small model, not one with thousands of parameters per character),
//!   and never below `MIN_HIDDEN`.
//! - dropout from the expected passes over the text, rising smoothly: more passes, more
//!   memorising, more dropout (`dropout_for`). Measured at a pinned size: the fairy tales at
//!   4.6 passes (2×240), 0.1 ahead of 0.25 by 0.010 nats/char, and at 4.5–5.7, 0.1 ahead of 0.2
//!   by 0.010 and 0.031; tiny Shakespeare at 9 passes (2×240), 0.25 ahead of 0.1 by 0.003 and
//!   0.014 (`bench/results/dropout-*.md`). From 8 passes, and fully from 10, it rises further
//!   with the recurrent parameters per training character, to 0.4 at 1.8 (tiny Shakespeare:
//!   2×304 for 5 minutes, 1.2 per character, 0.25 better than 0.35; 2×384, 1.9, with 0.4
//!   above; 2×512 for 15 minutes, 3.3 per character, ends at 1.4709 with 0.25 and 1.4494 with
//!   0.4).
//!
//! Owns the rule and the probe. Does not own training (see `run`) or the timing loop (see
//! `optim::step::time_steps`).

use super::args::TrainArgs;
use super::precision::{Decision, Timed};
use super::probes::Point;
use crate::checkpoint::TrainConfig;
use crate::data::Batches;
use crate::engine::{MatmulPrecision, Threads};
use crate::model::{train_flops_per_char, Layout, ModelConfig};

/// The smallest and largest hidden sizes chosen, and the step between candidates.
pub const MIN_HIDDEN: usize = 32;
pub const MAX_HIDDEN: usize = 1024;
pub const HIDDEN_STEP: usize = 16;

/// Characters a time budget should show the model per parameter (see the module header).
/// Measured on the fairy tales, 5 minutes, 2 threads, f32, seed 1, one sitting: 2×128 (130
/// characters per parameter) 1.3580 nats/char, 2×192 (35) 1.3985, 2×256 (13) 1.3396.
pub const CHARS_PER_PARAM: f64 = 12.0;

/// Passes over the text a time budget need not exceed (see the module header): when the size
/// `CHARS_PER_PARAM` gives would pass over the text more often, the largest size that passes
/// over it this often is taken instead. Measured on tiny Shakespeare, 5 minutes, 2 threads,
/// seeds 1 and 2: 2×384 with dropout 0.4 (11.4 passes) ended 0.011 and 0.016 nats/char below
/// 2×304 with 0.25 (15.5 passes).
pub const ENOUGH_PASSES: f64 = 11.0;

/// Parameters per training character at most, whatever the budget.
pub const MAX_PARAMS_PER_CHAR: f64 = 3.0;

/// The sizes the probe times.
pub const PROBE_SIZES: [usize; 2] = [128, 384];

/// The drop probability the probe's steps draw masks with when the run's dropout is left to
/// the rule: a run of more than four passes gets dropout, and its masks are part of every step
/// (measured at 27912a1: 2×288, B=32, T=50, bf16, 2 threads, `charrnn bench --dropout 0.25`
/// 14 % slower than without, and the probe, timed without, overestimated five-minute runs by
/// 11–22 %). Drawing a mask costs the same for any p > 0. A run the rule leaves without
/// dropout (four passes or fewer: a large text) is then timed about 5 % slow, which moves its
/// size by about 2 %.
pub const PROBE_DROPOUT: f64 = 0.1;

/// Rounds of the probe at most, and what makes one steady (see `Speed::probe`): the first size
/// timed before and after the others within 15 %, and each size's timed steps within ±50 % of
/// their median. Measured: in one sitting the first ~15 s of a process trained at 35–45k
/// chars/s and then ~60k (2×240, bf16); a probe in that phase timed H=128 at 73k chars/s with a
/// spread of ±124 % where later probes timed 130k (±8 %), and the run was sized one step small
/// (`bench/results/quality-2026-11-30-3d4cda1.md`).
pub const PROBE_ROUNDS: usize = 3;
pub const PROBE_DRIFT: f64 = 0.15;
pub const PROBE_MAX_SPREAD: f64 = 1.0;

/// Whether a probe round is steady: every spread at most `PROBE_MAX_SPREAD`, and `again` (the
/// first size timed once more after the others) within `PROBE_DRIFT` of the first timing,
/// relative to the faster of the two.
pub fn steady(points: &[Point], again: Point) -> bool {
    let (first, second) = (points[0].1, again.1);
    points
        .iter()
        .chain([&again])
        .all(|p| p.2 <= PROBE_MAX_SPREAD)
        && (first - second).abs() <= PROBE_DRIFT * first.max(second)
}

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
    /// Expected training characters per second at this size (time budgets only).
    pub chars_per_s: Option<f64>,
    /// One line for the user: what was chosen and why.
    pub reason: String,
}

/// Dropout for a run expected to pass over its text `epochs` times with `per_char` recurrent
/// parameters per training character, to two decimals. By the passes, piecewise linear with no
/// step: 0 up to 4 passes, 0.1 at 5, 0.25 from 10 on. Raised linearly with `per_char`, from
/// that at 1.2 to `MAX_DROPOUT` at 1.8, by a share that grows from none at 8 passes to all at
/// 10 (too few passes to memorise much before). The measurements are in the module header.
pub fn dropout_for(epochs: f64, per_char: f64) -> f64 {
    let by_passes = match epochs {
        e if e <= 4.0 => 0.0,
        e if e <= 5.0 => 0.1 * (e - 4.0),
        e if e <= 10.0 => 0.1 + 0.15 * (e - 5.0) / 5.0,
        _ => 0.25,
    };
    let share = ((epochs - 8.0) / 2.0).clamp(0.0, 1.0);
    let t = share * ((per_char - 1.2) / 0.6).clamp(0.0, 1.0);
    ((by_passes + (MAX_DROPOUT - by_passes) * t) * 100.0).round() / 100.0
}

/// The most dropout the rule gives.
pub const MAX_DROPOUT: f64 = 0.4;

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

/// 1.5k, 230k, 1.80M: a count in sensible units.
pub fn count(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e4 => format!("{:.0}k", x / 1e3),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// The measured speed of training steps: seconds per character = a + b·FLOPs per character,
/// fitted through two timed sizes.
#[derive(Clone, Debug)]
pub struct Speed {
    a: f64,
    b: f64,
    /// (hidden, chars/s, spread of the timed steps) at each timed size.
    pub points: Vec<(usize, f64, f64)>,
    /// This run's own probe, when `points` are a stored one (see `probes`).
    pub today: Option<Vec<(usize, f64, f64)>>,
    /// Where `points` came from (see `probes::settle`), for the sizing line.
    pub note: Option<String>,
    /// False when the machine's speed moved during every round of the probe (see `probe`).
    pub steady: bool,
}

impl Speed {
    /// Times `PROBE_SIZES` of `base` (its hidden size replaced) with this batch, threads and
    /// precision, then the first size again: a round is steady when the two timings of the
    /// first size agree within `PROBE_DRIFT` and no size's steps spread by more than
    /// `PROBE_MAX_SPREAD`. Up to `PROBE_ROUNDS` rounds; the first steady one is used, else the
    /// last, marked unsteady (`Speed::steady`), so it is neither trusted over a stored probe nor
    /// stored (see `probes::settle`).
    ///
    /// Each step draws dropout masks of drop probability `dropout` (0: none), as the run will.
    pub fn probe(
        base: ModelConfig,
        (batch, seq, dropout): (usize, usize, f64),
        (threads, precision): (Threads, MatmulPrecision),
    ) -> Speed {
        let time = |h: usize| {
            let layout = Layout::new(ModelConfig { hidden: h, ..base });
            // The first steps of a fresh process run cold (page faults, thread start-up):
            // two untimed, then the median of at least five and a third of a second.
            let (step_s, spread) = crate::optim::step::time_steps_spread(
                &layout,
                (batch, seq),
                (threads, precision),
                (2, dropout),
                (5, 0.33),
            );
            (h, (batch * seq) as f64 / step_s, spread)
        };
        let mut drift = String::new();
        for round in 1..=PROBE_ROUNDS {
            let points: Vec<Point> = PROBE_SIZES.iter().map(|&h| time(h)).collect();
            let again = time(PROBE_SIZES[0]);
            if steady(&points, again) {
                let mut sp = Speed::fit(base, points);
                if round > 1 {
                    sp.note = Some(format!("steady in round {round} ({drift})"));
                }
                return sp;
            }
            drift = format!(
                "H={} at {} then {} chars/s",
                PROBE_SIZES[0],
                count(points[0].1),
                count(again.1)
            );
            if round == PROBE_ROUNDS {
                let mut sp = Speed::fit(base, points);
                sp.steady = false;
                sp.note = Some(format!(
                    "the machine's speed moved during all {PROBE_ROUNDS} rounds of the probe (last: {drift})"
                ));
                return sp;
            }
        }
        unreachable!("PROBE_ROUNDS is at least 1")
    }

    /// The line through the points' seconds per character against FLOPs per character.
    pub fn fit(base: ModelConfig, points: Vec<(usize, f64, f64)>) -> Speed {
        let at = |h: usize| train_flops_per_char(&ModelConfig { hidden: h, ..base });
        let (x0, y0) = (at(points[0].0), 1.0 / points[0].1);
        let (x1, y1) = (at(points[1].0), 1.0 / points[1].1);
        let mut b = (y1 - y0) / (x1 - x0);
        let mut a = y0 - b * x0;
        if b.is_nan() || b <= 0.0 || a < 0.0 {
            // Noise made the line nonsense: no fixed cost, the larger size's cost per FLOP.
            (a, b) = (0.0, y1 / x1);
        }
        Speed {
            a,
            b,
            points,
            today: None,
            note: None,
            steady: true,
        }
    }

    /// The speed of one size, measured (`chars_per_s` gives it for any size asked).
    pub fn measured(h: usize, chars_per_s: f64, spread: f64) -> Speed {
        Speed {
            a: 1.0 / chars_per_s,
            b: 0.0,
            points: vec![(h, chars_per_s, spread)],
            today: None,
            note: None,
            steady: true,
        }
    }

    /// Expected training characters per second at hidden size `h`.
    pub fn chars_per_s(&self, base: ModelConfig, h: usize) -> f64 {
        1.0 / (self.a + self.b * train_flops_per_char(&ModelConfig { hidden: h, ..base }))
    }

    /// "41k chars/s at H=128 (±3 %), 9.8k chars/s at H=384 (±2 %)", then where the points came
    /// from and, when they are a stored probe, today's.
    pub fn describe(&self) -> String {
        let list = |pts: &[(usize, f64, f64)]| {
            pts.iter()
                .map(|(h, r, s)| format!("{} chars/s at H={h} (±{:.0} %)", count(*r), 50.0 * s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut d = list(&self.points);
        if let Some(note) = &self.note {
            d += &format!(", {note}");
        }
        if let Some(today) = &self.today {
            if *today != self.points {
                d += &format!("; today's: {}", list(today));
            }
        }
        d
    }
}

/// Picks the hidden size for `base` (its `hidden` is ignored) when `hidden` is `None`, and the
/// dropout when `dropout` is `None`. `train_chars` is the length of the training part;
/// `batch × seq` characters make one step. With a time budget and no `hidden`, `speed` is the
/// probe (`Speed::probe`); with one, its chars/s say how many passes the budget buys.
pub fn choose(
    base: ModelConfig,
    (hidden, dropout): (Option<usize>, Option<f64>),
    train_chars: usize,
    budget: Budget,
    speed: Option<&Speed>,
) -> Sizing {
    let sizes = Candidates {
        base,
        chars: train_chars.max(1) as f64,
        dropout,
    };
    match (budget, speed) {
        (Budget::Seconds(secs), Some(sp)) => sizes.for_time(hidden, secs, sp),
        (Budget::Epochs(e), _) | (Budget::Seconds(e), None) => sizes.for_passes(hidden, e),
    }
}

/// The hidden sizes `choose` picks from (`MIN_HIDDEN` to `MAX_HIDDEN` in steps of
/// `HIDDEN_STEP`) for one model and training text.
struct Candidates {
    base: ModelConfig,
    /// Training characters.
    chars: f64,
    /// `--dropout`, if given.
    dropout: Option<f64>,
}

impl Candidates {
    fn with(&self, h: usize) -> ModelConfig {
        ModelConfig {
            hidden: h,
            ..self.base
        }
    }

    fn params(&self, h: usize) -> f64 {
        Layout::new(self.with(h)).total as f64
    }

    /// The dropout given, else the rule's for `epochs` passes at size `h`.
    fn dropout(&self, epochs: f64, h: usize) -> f64 {
        self.dropout
            .unwrap_or_else(|| dropout_for(epochs, recurrent_per_char(self.with(h), self.chars)))
    }

    /// The largest candidate that `fits` within the data's bound (`MAX_PARAMS_PER_CHAR`;
    /// `MIN_HIDDEN` when none does), and whether that bound was what stopped it.
    fn largest(&self, fits: &dyn Fn(usize) -> bool) -> (usize, bool) {
        let data_cap = MAX_PARAMS_PER_CHAR * self.chars;
        let candidates: Vec<usize> = (MIN_HIDDEN..=MAX_HIDDEN).step_by(HIDDEN_STEP).collect();
        let h = candidates
            .iter()
            .rev()
            .copied()
            .find(|&h| fits(h) && self.params(h) <= data_cap);
        let capped = candidates.iter().rev().copied().find(|&h| fits(h)) != h;
        (h.unwrap_or(MIN_HIDDEN), capped)
    }

    /// "; limited by the text: …" when the data's bound stopped size `h`.
    fn data_note(&self, h: usize, capped: bool) -> String {
        if capped {
            format!(
                "; limited by the text: {} parameters for {} training characters (at most {MAX_PARAMS_PER_CHAR} each)",
                count(self.params(h)),
                count(self.chars)
            )
        } else {
            String::new()
        }
    }

    /// A time budget of `secs` seconds at the probe's speed `sp`: the larger of the size shown
    /// `CHARS_PER_PARAM` characters per parameter and the size that passes over the text
    /// `ENOUGH_PASSES` times.
    fn for_time(&self, hidden: Option<usize>, secs: f64, sp: &Speed) -> Sizing {
        let seen = |h: usize| sp.chars_per_s(self.base, h) * secs;
        let (h, why) = match hidden {
            Some(h) => (h, format!("hidden {h} as given")),
            None => {
                let (hc, capped_c) = self.largest(&|h| seen(h) >= CHARS_PER_PARAM * self.params(h));
                let (hp, capped_p) = self.largest(&|h| seen(h) >= ENOUGH_PASSES * self.chars);
                let why = if hp > hc {
                    format!(
                        "hidden {hp}: the largest the budget passes over the text {ENOUGH_PASSES} times ({} characters, {} parameters, {:.1} characters each; at {CHARS_PER_PARAM} each, hidden {hc} would pass over it {:.1} times){}; probe: {}",
                        count(seen(hp)),
                        count(self.params(hp)),
                        seen(hp) / self.params(hp),
                        seen(hc) / self.chars,
                        self.data_note(hp, capped_p),
                        sp.describe()
                    )
                } else {
                    format!(
                        "hidden {hc}: the largest the budget shows about {CHARS_PER_PARAM} characters per parameter ({} characters, {} parameters){}; probe: {}",
                        count(seen(hc)),
                        count(self.params(hc)),
                        self.data_note(hc, capped_c),
                        sp.describe()
                    )
                };
                (hc.max(hp), why)
            }
        };
        let e = seen(h) / self.chars;
        Sizing {
            hidden: h,
            dropout: self.dropout(e, h),
            epochs: e,
            chars_per_s: Some(sp.chars_per_s(self.base, h)),
            reason: format!(
                "{why}; about {e:.1} passes over {} training characters",
                count(self.chars)
            ),
        }
    }

    /// A budget of `e` passes over the text: the largest size with no more parameters than
    /// training characters.
    fn for_passes(&self, hidden: Option<usize>, e: f64) -> Sizing {
        let (h, why) = match hidden {
            Some(h) => (h, format!("hidden {h} as given")),
            None => {
                let (h, capped) = self.largest(&|h| self.params(h) <= self.chars);
                let why = if self.params(h) > self.chars {
                    format!(
                        "hidden {h}: the smallest; even it has more parameters ({}) than training characters ({})",
                        count(self.params(h)),
                        count(self.chars)
                    )
                } else {
                    format!(
                        "hidden {h}: the largest with no more parameters ({}) than training characters ({}){}",
                        count(self.params(h)),
                        count(self.chars),
                        self.data_note(h, capped)
                    )
                };
                (h, why)
            }
        };
        Sizing {
            hidden: h,
            dropout: self.dropout(e, h),
            epochs: e,
            chars_per_s: None,
            reason: format!("{why}; {e:.1} passes over the text"),
        }
    }
}

/// Memory was checked for the probe's sizes (see `memory`); a larger choice must fit too: the
/// largest that does, said on the sizing line.
fn keep_within_memory(
    s: &mut Sizing,
    m: &ModelConfig,
    config: &TrainConfig,
    train_len: usize,
    threads: Threads,
) {
    let text = super::memory::Text {
        chars: (train_len as f64 / (1.0 - config.val_frac)).ceil() as u64,
        vocab: m.vocab,
    };
    let available = crate::memory::available();
    let fits = |h: usize| {
        let m = ModelConfig { hidden: h, ..*m };
        super::memory::fits(&m, config, threads.0, text, available)
    };
    let h = largest_that_fits(s.hidden, fits);
    if h < s.hidden {
        s.reason = format!(
            "{}; limited by memory to hidden {h} (the {} available)",
            s.reason,
            available.map_or("?".into(), crate::memory::bytes)
        );
        s.hidden = h;
    }
}

/// The largest candidate size up to `h` (h itself, or a multiple of `HIDDEN_STEP` below it)
/// that `fits`; `MIN_HIDDEN` when none does (the memory check then says why).
fn largest_that_fits(h: usize, fits: impl Fn(usize) -> bool) -> usize {
    if fits(h) {
        return h;
    }
    (MIN_HIDDEN..h)
        .step_by(HIDDEN_STEP)
        .rev()
        .find(|&c| fits(c))
        .unwrap_or(MIN_HIDDEN)
}

/// From this many distinct characters a fresh run without `--embed` learns an embedding of
/// width `AUTO_EMBED` instead of one-hot input.
pub const AUTO_EMBED_VOCAB: usize = 1000;
pub const AUTO_EMBED: usize = 128;

/// Fills in what a fresh run left to the budget: an embedding for a large vocabulary, the
/// hidden size and the dropout (see `choose`), and the products' precision (see `precision`:
/// a probe times both where the CPU multiplies bf16 itself). Returns the line that says what
/// was chosen and why, or None when the flags chose everything.
pub(super) fn size_fresh_model(
    a: &TrainArgs,
    m: &mut ModelConfig,
    config: &mut TrainConfig,
    batches: &Batches,
    threads: Threads,
) -> Option<String> {
    let (train_len, steps_per_epoch) = (batches.train_len(), batches.steps_per_epoch);
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
    // The passes --steps or --epochs allow, when one is given (the run stops at the first).
    let passes_cap = match (a.steps, a.epochs) {
        (None, None) => None,
        (s, e) => Some(
            s.map_or(f64::MAX, |s| s as f64 / steps_per_epoch as f64)
                .min(e.unwrap_or(f64::MAX)),
        ),
    };
    let budget = match (a.minutes, passes_cap) {
        (Some(min), _) => Budget::Seconds(min * 60.0),
        (None, cap) => Budget::Epochs(cap.unwrap_or(10.0)),
    };
    let probing = Probing::new(a, *m, config, threads);
    let (speed, decision) = match budget {
        Budget::Seconds(_) if a.hidden.is_none() => {
            let (sp, d) = probing.both();
            (Some(sp), d)
        }
        _ => probing.stored(),
    };
    config.precision = decision.precision;
    if let Some(w) = &decision.warning {
        eprintln!("{w}");
    }
    if a.hidden.is_some() && a.dropout.is_some() {
        return auto_embed.then(|| format!("charrnn: sizing: as given{embed_note}"));
    }
    let speed = match (budget, speed) {
        (Budget::Seconds(_), None) => {
            Some(probing.measure(a.hidden.unwrap_or(PROBE_SIZES[0]), config.precision))
        }
        (_, sp) => sp,
    };
    let mut s = choose(*m, (a.hidden, a.dropout), train_len, budget, speed.as_ref());
    if let Some(cap) = passes_cap.filter(|&cap| cap < s.epochs) {
        s = capped(*m, (a.hidden, a.dropout), train_len, s, cap);
    }
    if a.hidden.is_none() {
        keep_within_memory(&mut s, m, config, train_len, threads);
    }
    m.hidden = s.hidden;
    config.dropout = s.dropout;
    Some(format!(
        "charrnn: sizing: {}; dropout {}{}{embed_note}; {}{}",
        s.reason,
        s.dropout,
        if a.dropout.is_some() {
            " as given"
        } else {
            " for that many passes"
        },
        crate::engine::isa::kernels().products(config.precision == MatmulPrecision::Bf16),
        decision.why,
    ))
}

/// A time budget's sizing `s` for a run that --steps or --epochs end after `cap` passes,
/// fewer than the minutes would buy: no larger than the size for `cap` passes, and the dropout
/// for `cap` passes (a run sized for the minutes' 2,000 passes got dropout 0.4 and made 2).
fn capped(
    m: ModelConfig,
    (hidden, dropout): (Option<usize>, Option<f64>),
    train_chars: usize,
    s: Sizing,
    cap: f64,
) -> Sizing {
    let by_passes = choose(m, (hidden, dropout), train_chars, Budget::Epochs(cap), None);
    let h = s.hidden.min(by_passes.hidden);
    let at_h = choose(
        m,
        (Some(h), dropout),
        train_chars,
        Budget::Epochs(cap),
        None,
    );
    let why = if h < s.hidden {
        by_passes.reason
    } else {
        s.reason
    };
    Sizing {
        hidden: h,
        dropout: at_h.dropout,
        epochs: cap,
        chars_per_s: s.chars_per_s,
        reason: format!("{why}; but --steps or --epochs end the run after {cap:.1} passes, before the minutes do"),
    }
}

/// What a fresh run's probes time: the model's shape, batch × seq, the dropout the steps draw
/// masks with, threads; which precisions (both where `precision::times_both`); and where
/// this machine's probes are stored.
struct Probing {
    m: ModelConfig,
    batch: usize,
    seq: usize,
    dropout: f64,
    threads: Threads,
    given: Option<MatmulPrecision>,
    precisions: Vec<MatmulPrecision>,
    path: std::path::PathBuf,
}

impl Probing {
    fn new(a: &TrainArgs, m: ModelConfig, config: &TrainConfig, threads: Threads) -> Probing {
        let kernels = crate::engine::isa::kernels();
        let precisions = if super::precision::times_both(a.precision, kernels) {
            vec![MatmulPrecision::F32, MatmulPrecision::Bf16]
        } else {
            vec![config.precision]
        };
        Probing {
            m,
            batch: config.batch,
            seq: config.seq,
            dropout: a.dropout.unwrap_or(PROBE_DROPOUT),
            threads,
            given: a.precision,
            precisions,
            path: crate::data::fetch::cache_dir(a.source.cache.as_deref()).join("probes.json"),
        }
    }

    /// The stored probes' key for `precision`.
    fn key(&self, precision: MatmulPrecision) -> String {
        super::probes::key(
            self.m,
            (self.batch, self.seq, self.dropout > 0.0),
            (self.threads, precision),
        )
    }

    /// The sizing probe in each precision (see `Speed::probe`, `probes::settle`), and the
    /// precision it decides; the speed is the chosen precision's.
    fn both(&self) -> (Speed, Decision) {
        eprintln!(
            "charrnn: timing training steps at H={} and H={} on this machine to size the model{} (a few seconds, not counted in the budget)…",
            PROBE_SIZES[0],
            PROBE_SIZES[1],
            if self.precisions.len() > 1 { ", in f32 and in bf16" } else { "" }
        );
        let mut speeds: Vec<Speed> = self.precisions.iter().map(|&p| self.probe(p)).collect();
        let decision = match &speeds[..] {
            [f, b] => super::precision::decide(
                self.given,
                Some(Timed {
                    f32: &f.points,
                    bf16: &b.points,
                    source: "this machine's probe",
                }),
                crate::engine::isa::kernels(),
            ),
            _ => super::precision::decide(self.given, None, crate::engine::isa::kernels()),
        };
        let at = self
            .precisions
            .iter()
            .position(|&p| p == decision.precision);
        (speeds.swap_remove(at.unwrap_or(0)), decision)
    }

    /// The sizing probe in `precision`, settled against the stored one.
    fn probe(&self, precision: MatmulPrecision) -> Speed {
        let fresh = Speed::probe(
            self.m,
            (self.batch, self.seq, self.dropout),
            (self.threads, precision),
        );
        let key = self.key(precision);
        let (points, note) =
            super::probes::settle(&self.path, &key, fresh.points.clone(), fresh.steady);
        let mut sp = Speed::fit(self.m, points);
        sp.note = Some(match &fresh.note {
            Some(n) => format!("{note}; {n}"),
            None => note,
        });
        sp.today = Some(fresh.points);
        sp
    }

    /// The precision without a probe of this run: from this machine's stored probes of both
    /// precisions, when there are, else the rule.
    fn stored(&self) -> (Option<Speed>, Decision) {
        let kernels = crate::engine::isa::kernels();
        let [f, b] = [MatmulPrecision::F32, MatmulPrecision::Bf16]
            .map(|p| super::probes::lookup(&self.path, &self.key(p)));
        let timed = match (&f, &b) {
            (Some(f), Some(b)) if self.precisions.len() > 1 => Some(Timed {
                f32: f,
                bf16: b,
                source: "this machine's stored probes",
            }),
            _ => None,
        };
        (None, super::precision::decide(self.given, timed, kernels))
    }

    /// One size timed in `precision` (a time budget with `--hidden`).
    fn measure(&self, h: usize, precision: MatmulPrecision) -> Speed {
        let layout = Layout::new(ModelConfig {
            hidden: h,
            ..self.m
        });
        let (step_s, spread) = crate::optim::step::time_steps_spread(
            &layout,
            (self.batch, self.seq),
            (self.threads, precision),
            (2, self.dropout),
            (5, 0.33),
        );
        Speed::measured(h, (self.batch * self.seq) as f64 / step_s, spread)
    }
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
    fn the_size_chosen_is_the_largest_that_fits_in_memory() {
        assert_eq!(largest_that_fits(1024, |_| true), 1024);
        assert_eq!(largest_that_fits(1024, |h| h <= 500), 496);
        assert_eq!(largest_that_fits(1024, |_| false), MIN_HIDDEN);
        assert_eq!(largest_that_fits(100, |h| h < 100), 96);
    }

    #[test]
    fn a_probe_round_is_steady_only_when_the_first_size_agrees_before_and_after() {
        let pts = |r0: f64, s0: f64| vec![(128, r0, s0), (384, 29e3, 0.04)];
        assert!(steady(&pts(130e3, 0.08), (128, 125e3, 0.06)));
        // The slow start seen in one sitting: 73k (±124 %) then 130k.
        assert!(!steady(&pts(73e3, 2.48), (128, 130e3, 0.08)));
        // Agreeing timings, but one size's steps spread too far.
        assert!(!steady(&pts(130e3, 1.2), (128, 128e3, 0.05)));
        // 20 % apart, each tight: the machine's speed moved between them.
        assert!(!steady(&pts(100e3, 0.05), (128, 125e3, 0.05)));
        assert!(steady(&pts(110e3, 0.05), (128, 125e3, 0.05)));
    }

    fn params(h: usize) -> f64 {
        Layout::new(ModelConfig {
            hidden: h,
            ..base()
        })
        .total as f64
    }

    /// A machine that steps `flops_per_s` FLOPs a second with no fixed cost.
    fn machine(flops_per_s: f64) -> Speed {
        let at = |h| {
            (
                h,
                flops_per_s
                    / train_flops_per_char(&ModelConfig {
                        hidden: h,
                        ..base()
                    }),
                0.02,
            )
        };
        Speed::fit(base(), vec![at(128), at(384)])
    }

    #[test]
    fn epoch_budgets_size_by_parameters_per_character() {
        let s = |chars| choose(base(), (None, None), chars, Budget::Epochs(10.0), None);
        for chars in [300_000usize, 1_000_000, 2_000_000] {
            let h = s(chars).hidden;
            assert!(
                params(h) <= chars as f64 && params(h + HIDDEN_STEP) > chars as f64,
                "{chars}: {h}"
            );
        }
        assert_eq!(
            s(10_000).hidden,
            MIN_HIDDEN,
            "the smallest when nothing fits"
        );
        let given = choose(
            base(),
            (Some(64), Some(0.5)),
            1_000_000,
            Budget::Epochs(3.0),
            None,
        );
        assert_eq!((given.hidden, given.dropout), (64, 0.5));
    }

    #[test]
    fn time_budgets_follow_machine_speed_smoothly_without_a_cliff() {
        let pick = |speed: f64| {
            let sp = machine(speed);
            choose(
                base(),
                (None, None),
                10_000_000,
                Budget::Seconds(300.0),
                Some(&sp),
            )
        };
        let fast = pick(100e9);
        // The budget shows it at least CHARS_PER_PARAM characters per parameter, and would
        // show the next size up fewer.
        let sp = machine(100e9);
        let per_param = |h: usize| sp.chars_per_s(base(), h) * 300.0 / params(h) / CHARS_PER_PARAM;
        let (h, next) = (fast.hidden, fast.hidden + HIDDEN_STEP);
        assert!(
            per_param(h) >= 1.0 && per_param(next) < 1.0,
            "{h}: {}",
            per_param(h)
        );
        // Half the speed: about 1/√2 of the parameters, not a jump to a much smaller model.
        let half = pick(50e9);
        let ratio = params(half.hidden) / params(fast.hidden);
        assert!(
            (0.6..0.8).contains(&ratio),
            "{} → {}: {ratio}",
            fast.hidden,
            half.hidden
        );
        // A probe 10 % off moves the size by at most a step or two.
        for noisy in [90e9, 110e9] {
            let h = pick(noisy).hidden as i64;
            assert!(
                (h - fast.hidden as i64).abs() <= 2 * HIDDEN_STEP as i64,
                "{h} vs {}",
                fast.hidden
            );
        }
        // Along a sweep of speeds the size never falls by more than a step at once.
        let sizes: Vec<usize> = (0..40)
            .map(|i| pick(20e9 * 1.05f64.powi(i)).hidden)
            .collect();
        assert!(
            sizes
                .windows(2)
                .all(|w| w[1] >= w[0] && w[1] - w[0] <= HIDDEN_STEP),
            "{sizes:?}"
        );
    }

    #[test]
    fn a_budget_that_outruns_the_text_buys_a_larger_model_that_passes_over_it_enough() {
        let chars = 1_000_000usize;
        let n = chars as f64;
        let sweep: Vec<(Speed, Sizing)> = (0..60)
            .map(|i| {
                let sp = machine(30e9 * 1.06f64.powi(i));
                let s = choose(
                    base(),
                    (None, None),
                    chars,
                    Budget::Seconds(300.0),
                    Some(&sp),
                );
                (sp, s)
            })
            .collect();
        let seen = |sp: &Speed, h: usize| sp.chars_per_s(base(), h) * 300.0;
        let mut by_passes = 0;
        for (sp, s) in &sweep {
            let (h, next) = (s.hidden, s.hidden + HIDDEN_STEP);
            let (shows, passes) = (seen(sp, h) / params(h), seen(sp, h) / n);
            // Each size is justified by one of the two bounds and the next size up by neither
            // (or by the text's bound).
            assert!(
                shows >= CHARS_PER_PARAM || passes >= ENOUGH_PASSES,
                "{}",
                s.reason
            );
            assert!(
                (seen(sp, next) / params(next) < CHARS_PER_PARAM
                    && seen(sp, next) / n < ENOUGH_PASSES)
                    || params(next) > MAX_PARAMS_PER_CHAR * n,
                "{}",
                s.reason
            );
            assert!((s.epochs - passes).abs() < 1e-9);
            if shows < CHARS_PER_PARAM {
                by_passes += 1;
                assert!(
                    s.reason.contains("passes over the text 11 times"),
                    "{}",
                    s.reason
                );
            }
        }
        assert!(
            by_passes >= 5,
            "{by_passes} of the sweep sized by the passes"
        );
        // The size grows with the machine's speed a step at a time, through the change of rule.
        let sizes: Vec<usize> = sweep.iter().map(|(_, s)| s.hidden).collect();
        assert!(
            sizes
                .windows(2)
                .all(|w| w[1] >= w[0] && w[1] - w[0] <= HIDDEN_STEP),
            "{sizes:?}"
        );
        // Sized by the passes and far above a parameter per character: strong dropout.
        let (_, big) = sweep
            .iter()
            .find(|(_, s)| {
                recurrent_per_char(
                    ModelConfig {
                        hidden: s.hidden,
                        ..base()
                    },
                    n,
                ) > 1.8
            })
            .expect("a sweep this fast reaches 1.8 recurrent parameters per character");
        assert_eq!(big.dropout, MAX_DROPOUT, "{}", big.reason);
    }

    #[test]
    fn a_small_text_gets_a_small_model_whatever_the_budget() {
        // 300 made-up names: about 2,500 characters of 27 kinds.
        let names = ModelConfig {
            vocab: 27,
            ..base()
        };
        let sp = Speed::fit(names, vec![(128, 1e6, 0.0), (384, 2e5, 0.0)]);
        let s = choose(names, (None, None), 2_200, Budget::Seconds(30.0), Some(&sp));
        assert_eq!(s.hidden, MIN_HIDDEN);
        let per_char = Layout::new(ModelConfig {
            hidden: s.hidden,
            ..names
        })
        .total as f64
            / 2_200.0;
        assert!(per_char < 10.0, "{per_char} parameters per character");
        // 20,000 characters: within the data's bound.
        let s = choose(
            names,
            (None, None),
            20_000,
            Budget::Seconds(300.0),
            Some(&sp),
        );
        let p = Layout::new(ModelConfig {
            hidden: s.hidden,
            ..names
        })
        .total as f64;
        assert!(
            p <= MAX_PARAMS_PER_CHAR * 20_000.0 && s.hidden > MIN_HIDDEN,
            "{} {p}",
            s.hidden
        );
        assert!(s.reason.contains("limited by the text"), "{}", s.reason);
        assert!(
            count(2_467.0) == "2.5k" && count(1_796_564.0) == "1.80M" && count(230_000.0) == "230k"
        );
    }

    #[test]
    fn dropout_grows_with_the_passes_over_the_text_and_the_parameters_per_character() {
        assert_eq!(dropout_for(3.0, 1.0), 0.0);
        assert_eq!(dropout_for(5.0, 1.0), 0.1);
        assert_eq!(dropout_for(8.0, 1.0), 0.19);
        assert_eq!(dropout_for(12.0, 1.0), 0.25);
        assert_eq!(dropout_for(40.0, 1.0), 0.25);
        // The measured points below 10 passes: the fairy tales at 4.6 and 5.6 passes wanted 0.1
        // rather than 0.2 or 0.25, tiny Shakespeare at 9 passes 0.25 rather than 0.1.
        assert!(dropout_for(4.6, 0.7) <= 0.1 && dropout_for(5.6, 0.7) < 0.15);
        assert!(dropout_for(9.0, 0.75) > 0.2);
        // No step in the passes, whatever the parameters per character.
        for per_char in [0.5, 1.5, 3.3] {
            let ramp: Vec<f64> = (0..=300)
                .map(|i| dropout_for(0.1 * i as f64, per_char))
                .collect();
            assert!(
                ramp.windows(2)
                    .all(|w| w[1] >= w[0] && w[1] - w[0] <= 0.021),
                "{per_char}: {ramp:?}"
            );
        }
        assert_eq!(dropout_for(14.7, 3.3), 0.4);
        assert_eq!(dropout_for(15.1, 3.3), 0.4);
        // The measured points: 2×304 on tiny Shakespeare (1.2 per character, 15.5 passes),
        // 2×384 (1.9, 11.4 passes).
        assert_eq!(dropout_for(15.5, 1.19), 0.25);
        assert_eq!(dropout_for(11.4, 1.87), 0.4);
        assert_eq!(dropout_for(11.0, 1.6), 0.35);
        // No step in the parameters per character.
        let ramp: Vec<f64> = (0..=100)
            .map(|i| dropout_for(12.0, 1.0 + 0.01 * i as f64))
            .collect();
        assert!(
            ramp.windows(2)
                .all(|w| w[1] >= w[0] && w[1] - w[0] <= 0.011),
            "{ramp:?}"
        );
        assert_eq!(
            dropout_for(8.0, 3.3),
            dropout_for(8.0, 1.0),
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
    fn the_probe_measures_real_steps() {
        let sp = Speed::probe(
            ModelConfig {
                vocab: 20,
                ..base()
            },
            (4, 8, PROBE_DROPOUT),
            (Threads(1), MatmulPrecision::F32),
        );
        assert!(sp.points.iter().all(|&(_, r, s)| r > 0.0 && s >= 0.0));
        assert!(sp.chars_per_s(base(), 128) > sp.chars_per_s(base(), 512));
    }

    #[test]
    fn a_run_without_a_probe_decides_by_this_machines_stored_probes() {
        let dir = tempfile::tempdir().unwrap();
        let probing = Probing {
            m: base(),
            batch: 32,
            seq: 32,
            dropout: 0.1,
            threads: Threads(2),
            given: Some(MatmulPrecision::Bf16),
            precisions: vec![MatmulPrecision::F32, MatmulPrecision::Bf16],
            path: dir.path().join("probes.json"),
        };
        let (speed, d) = probing.stored();
        assert!(speed.is_none());
        assert_eq!((d.precision, d.warning), (MatmulPrecision::Bf16, None));
        let store = |p: MatmulPrecision, at384: f64| {
            let points = vec![(128, 100e3, 0.1), (384, at384, 0.1)];
            super::super::probes::settle(&probing.path, &probing.key(p), points, true);
        };
        store(MatmulPrecision::F32, 20e3);
        store(MatmulPrecision::Bf16, 15e3);
        let w = probing
            .stored()
            .1
            .warning
            .expect("bf16 is slower in the stored probes");
        assert!(w.contains("15k against 20k chars/s in f32 at H=384"), "{w}");
        assert!(w.contains("this machine's stored probes"), "{w}");
        store(MatmulPrecision::Bf16, 30e3);
        assert_eq!(probing.stored().1.warning, None);
    }
}
