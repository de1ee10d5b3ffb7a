//! The guard against a training blow-up. Now and then a run's loss leaps far above where it was
//! within a few dozen steps and never comes back (tiny Shakespeare, 1 thread, seed 1, at
//! 1470581: validation 1.50 → 3.49 at step 3,500, the run ending 0.03 behind its other seeds):
//! a few large updates throw the weights where Adam, at that learning rate, does not find its
//! way back. Large-model trainers answer it by going back to weights from before the spike and
//! skipping the batches in between (PaLM, Chowdhery et al. 2022, §5.1: "restart training from a
//! checkpoint roughly 100 steps before the spike started, and skip roughly 200–500 data
//! batches"). This does that in memory.
//!
//! Telling a jump from noise: two moving averages of the step's training loss, a fast one
//! (weight 0.1, about 10 steps) and a slow one (weight 0.01, about 100 steps), and the noise of
//! one step's loss around the fast average (the same 100-step weight). A jump is the fast
//! average above the slow one by more than `MIN_JUMP` nats and by more than `NOISE_SIGMAS`
//! standard deviations of the fast average's own noise. A falling loss puts the fast average
//! below the slow one; a text that slowly gets harder moves both together; a single odd batch
//! moves the fast average by a tenth of its difference. The thresholds are checked against the
//! per-step losses of real runs (`charrnn train --log-every 1`) in the tests and the docs.
//!
//! What is kept: every `KEEP_EVERY` steps, when the averages show no rise, a copy of the weights
//! and Adam's moments and step count; the newest two. A jump rolls back to the newest copy from
//! at least 100 steps before it is seen (so 100–200 steps back), drops newer ones (they may
//! already hold the start of the jump), and the run goes on from the current batch (the ones
//! in between are skipped) with the carried state reset, as at an epoch's start. Without such
//! a copy (in the first 200–300 steps of an invocation) it does not roll back. The cost is two
//! copies of the weights and the moments: 24 bytes per parameter (32 with AMSGrad), e.g. 42 MB
//! for 1.75M parameters, and one copy every 100 steps (under 0.1 % of a step's time).
//!
//! Owns the averages and the kept copies (this invocation only, not in checkpoints: a resumed
//! run keeps its first copy once its averages have settled again, `WARM_STEPS` steps in, so a
//! resumed run and an uninterrupted one agree exactly unless one of them rolls back). Does not
//! own the step (`optim::step`), the carried state or what the run prints and logs (`run`).

use crate::optim::Adam;

/// Nats per character the fast average must rise above the slow one to count as a jump.
pub const MIN_JUMP: f64 = 0.25;
/// ...and standard deviations of the fast average's noise it must rise by.
pub const NOISE_SIGMAS: f64 = 8.0;
/// Steps between kept copies.
pub const KEEP_EVERY: u64 = 100;
/// Steps this invocation takes before the averages are trusted (and copies are kept).
pub const WARM_STEPS: u64 = 100;
/// Rollbacks one invocation makes at most; after them a blow-up is left to the divergence check.
pub const MAX_ROLLBACKS: u32 = 10;

const FAST: f64 = 0.1;
const SLOW: f64 = 0.01;

/// The loss averages after some steps.
#[derive(Clone, Copy, Debug, Default)]
struct Averages {
    fast: f64,
    slow: f64,
    /// Mean square of a step's loss minus the fast average before it (nats²).
    noise: f64,
}

impl Averages {
    /// The least rise of the fast average over the slow one that counts as a jump (nats/char):
    /// `MIN_JUMP`, or `NOISE_SIGMAS` standard deviations of the fast average, whose variance
    /// is the step's noise × w / (2 − w) for an exponential average of weight w.
    fn threshold(&self) -> f64 {
        let sd_fast = (self.noise * FAST / (2.0 - FAST)).sqrt();
        MIN_JUMP.max(NOISE_SIGMAS * sd_fast)
    }

    fn rise(&self) -> f64 {
        self.fast - self.slow
    }
}

/// Weights, moments and averages as they were at a step.
struct Kept {
    step: u64,
    params: Vec<f32>,
    adam: Adam<f32>,
    averages: Averages,
}

/// A rollback the guard made: the step it was noticed at, the step whose weights the run goes
/// on from, and the fast and slow averages of the training loss (nats/char) that showed it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rollback {
    pub step: u64,
    pub to_step: u64,
    pub fast: f64,
    pub slow: f64,
}

/// The guard's state for one invocation of a run.
#[derive(Default)]
pub struct Guard {
    averages: Averages,
    /// Steps observed in this invocation.
    seen: u64,
    /// Oldest first; at most two.
    kept: Vec<Kept>,
    rollbacks: u32,
}

impl Guard {
    pub fn new() -> Guard {
        Guard::default()
    }

    /// Rollbacks made so far in this invocation.
    pub fn rollbacks(&self) -> u32 {
        self.rollbacks
    }

    /// After the optimiser step that made `step` steps in all, with training loss `loss`
    /// (nats/char, finite): a jump rolls `params` and `adam` back to the newest kept copy from
    /// at least `KEEP_EVERY` steps before and returns what it did (the caller resets the
    /// carried state); otherwise, every `KEEP_EVERY` steps while the loss shows no rise, keeps
    /// a copy of them.
    pub fn after_step(
        &mut self,
        step: u64,
        loss: f64,
        params: &mut [f32],
        adam: &mut Adam<f32>,
    ) -> Option<Rollback> {
        self.observe(loss);
        if self.seen < WARM_STEPS {
            return None;
        }
        let a = self.averages;
        if a.rise() > a.threshold() {
            // A copy from less than `KEEP_EVERY` steps before may hold the start of the jump
            // (it shows some steps after it starts): drop it, roll back to an older one or not
            // at all (the first copy after a resume may be the only one).
            self.kept.retain(|k| k.step + KEEP_EVERY <= step);
            if self.rollbacks >= MAX_ROLLBACKS || self.kept.is_empty() {
                return None;
            }
            self.kept.drain(..self.kept.len() - 1);
            let k = &self.kept[0];
            params.copy_from_slice(&k.params);
            copy_adam(adam, &k.adam);
            self.averages = k.averages;
            self.rollbacks += 1;
            return Some(Rollback {
                step,
                to_step: k.step,
                fast: a.fast,
                slow: a.slow,
            });
        }
        if step.is_multiple_of(KEEP_EVERY) && a.rise() <= 0.5 * a.threshold() {
            self.keep(step, params, adam);
        }
        None
    }

    fn observe(&mut self, loss: f64) {
        let a = &mut self.averages;
        if self.seen == 0 {
            *a = Averages {
                fast: loss,
                slow: loss,
                noise: 0.0,
            };
        } else {
            let d = loss - a.fast;
            a.noise += SLOW * (d * d - a.noise);
            a.fast += FAST * d;
            a.slow += SLOW * (loss - a.slow);
        }
        self.seen += 1;
    }

    /// Keeps a copy of the weights and moments at `step`, reusing the oldest copy's buffers
    /// once two are kept.
    fn keep(&mut self, step: u64, params: &[f32], adam: &Adam<f32>) {
        let averages = self.averages;
        if self.kept.len() == 2 {
            let mut k = self.kept.remove(0);
            k.step = step;
            k.params.copy_from_slice(params);
            copy_adam(&mut k.adam, adam);
            k.averages = averages;
            self.kept.push(k);
        } else {
            self.kept.push(Kept {
                step,
                params: params.to_vec(),
                adam: adam.clone(),
                averages,
            });
        }
    }
}

/// `to` becomes `from` (moments and step count; the learning rate stays the schedule's),
/// without allocating.
fn copy_adam(to: &mut Adam<f32>, from: &Adam<f32>) {
    to.t = from.t;
    to.m.copy_from_slice(&from.m);
    to.v.copy_from_slice(&from.v);
    if let (Some(t), Some(f)) = (&mut to.vmax, &from.vmax) {
        t.copy_from_slice(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{init_params, State, Threads, Workspace};
    use crate::optim::step::{small_lstm, step, structured_text};
    use crate::rng::Rng;

    /// Feeds `losses` to a guard over a one-parameter model; returns the steps (1-based) at
    /// which it rolled back.
    fn rollbacks_on(losses: &[f64]) -> Vec<u64> {
        let mut g = Guard::new();
        let mut p = vec![0.0f32];
        let mut adam = Adam::new(1, 1e-3, false);
        (1..=losses.len() as u64)
            .filter(|&s| {
                g.after_step(s, losses[s as usize - 1], &mut p, &mut adam)
                    .is_some()
            })
            .collect()
    }

    /// A loss that falls like a run's (fast, then slowly), with Gaussian noise of `sd` per step
    /// and a bump of +0.3 on the first batch of each 600-step epoch (the carried state reset).
    fn a_run(steps: usize, sd: f64, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        (0..steps)
            .map(|i: usize| {
                let s = i as f64;
                let bump = if i.is_multiple_of(600) { 0.3 } else { 0.0 };
                1.3 + 2.9 * (-s / 150.0).exp()
                    + 0.3 * (-s / 3000.0).exp()
                    + sd * rng.normal()
                    + bump
            })
            .collect()
    }

    /// No rollback on falling losses with noise up to three times that of a step of a real run
    /// (about 0.04 nats/char at 1,600 characters a batch), nor on a text that gets 0.6 nats
    /// harder over 1,000 steps.
    #[test]
    fn noise_bumps_and_slow_drift_are_not_jumps() {
        for (sd, seed) in [(0.02, 1), (0.04, 2), (0.12, 3)] {
            let r = rollbacks_on(&a_run(20_000, sd, seed));
            assert!(r.is_empty(), "sd {sd}: rolled back at {r:?}");
        }
        let mut drift = a_run(6_000, 0.04, 4);
        for (s, l) in drift.iter_mut().enumerate().skip(3_000) {
            *l += 0.6 * ((s - 3_000) as f64 / 1_000.0).min(1.0);
        }
        let r = rollbacks_on(&drift);
        assert!(r.is_empty(), "drift: rolled back at {r:?}");
    }

    /// A rise of 0.6 nats in 20 steps (the start of the blow-up seen: 1.35 to 2.7 in 30) is
    /// caught within 20 steps of its start, and the run goes back to the kept copy from at
    /// least 100 steps before it.
    #[test]
    fn a_sudden_rise_is_caught_soon() {
        let mut l = a_run(5_000, 0.04, 5);
        for (s, x) in l.iter_mut().enumerate().skip(3_450) {
            *x += 0.6 * ((s - 3_450) as f64 / 20.0).min(1.0);
        }
        let r = rollbacks_on(&l);
        assert!(!r.is_empty(), "the rise was not caught");
        assert!(
            (3_451..=3_470).contains(&r[0]),
            "first rollback at step {}",
            r[0]
        );
        let mut g = Guard::new();
        let (mut p, mut adam) = (vec![0.0f32], Adam::new(1, 1e-3, false));
        let first = (1..=l.len() as u64)
            .find_map(|s| g.after_step(s, l[s as usize - 1], &mut p, &mut adam))
            .unwrap();
        assert!(
            first.to_step + 100 <= first.step && first.to_step + 250 >= first.step,
            "{first:?}"
        );
    }

    /// A jump seen less than 100 steps after the only kept copy (as after a resume) does not
    /// roll back to it: that copy may hold the jump's start. Once the jump has passed and
    /// newer copies are kept, a second jump rolls back to one of those.
    #[test]
    fn a_copy_from_just_before_a_jump_is_not_used() {
        // A loss that has settled (as where a run resumes), with a step's noise of 0.04.
        let mut rng = Rng::new(6);
        let mut l: Vec<f64> = (0..1_000).map(|_| 1.5 + 0.04 * rng.normal()).collect();
        for (s, x) in l.iter_mut().enumerate() {
            if (120..200).contains(&s) || (650..700).contains(&s) {
                *x += 0.8;
            }
        }
        let r = rollbacks_on(&l);
        assert!(
            r.iter().all(|&s| s > 650) && !r.is_empty(),
            "rolled back at {r:?}"
        );
    }

    /// With a noisy step (standard deviation 0.3, as with tiny batches) a lasting rise of 0.4
    /// is within the fast average's noise (8 × 0.3 × √(0.1 / 1.9) = 0.55): not a jump.
    #[test]
    fn a_rise_within_the_noise_is_not_a_jump() {
        let mut l = a_run(3_000, 0.3, 7);
        for x in l.iter_mut().skip(2_000) {
            *x += 0.4;
        }
        let r = rollbacks_on(&l);
        assert!(r.is_empty(), "rolled back at {r:?}");
    }

    /// Means of the training loss over the last 50 of `steps` steps of a 2×64 LSTM on a text
    /// with structure (each character follows from the two before it nine times in ten), when
    /// steps 250–254 are taken at learning rate `spike_lr` (a blow-up provoked the way they
    /// come: a few updates far too large), with or without the guard. Also the rollbacks.
    fn provoked(spike_lr: f64, guarded: bool, steps: u64) -> (f64, Vec<Rollback>) {
        let layout = small_lstm();
        let (b, t) = (16, 32);
        let text = structured_text(16 * 30_000);
        let mut params: Vec<f32> = init_params(&layout, &mut Rng::new(1));
        let mut ws = Workspace::<f32>::new(&layout, b, t, true, Threads(1));
        let mut grads = vec![0.0f32; layout.total];
        let mut adam = Adam::new(layout.total, 3e-3, false);
        let mut carry = State::zeros(2, b, 64);
        let mut drop_rng = Rng::new(2);
        let mut guard = Guard::new();
        let (mut tail, mut rolled) = (Vec::new(), Vec::new());
        for s in 0..steps {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for ti in 0..t {
                for k in 0..b {
                    let at = k * 30_000 + s as usize * t + ti;
                    x.push(text[at]);
                    y.push(text[at + 1]);
                }
            }
            adam.lr = if (250..255).contains(&s) {
                spike_lr
            } else {
                3e-3
            };
            let loss = step(
                &mut ws,
                &layout,
                &mut params,
                &mut grads,
                &mut adam,
                &mut carry,
                (&x, &y),
                5.0,
                (0.0, &mut drop_rng),
            );
            if guarded {
                if let Some(r) = guard.after_step(s + 1, loss, &mut params, &mut adam) {
                    carry.reset();
                    rolled.push(r);
                }
            }
            if s + 50 >= steps {
                tail.push(loss);
            }
        }
        (tail.iter().sum::<f64>() / tail.len() as f64, rolled)
    }

    /// A provoked blow-up (five steps at learning rate 0.3, a hundred times the run's): without
    /// the guard the model is still far behind 550 steps later; with it the run rolls back to
    /// a copy from before step 250 and ends within 0.15 nats/char of the run that had no
    /// blow-up (0.05 on the machine it was written on: the margin is for other CPUs' f32
    /// sums). The run without one never rolls back.
    #[test]
    fn a_provoked_blow_up_is_rolled_back() {
        let (clean, none) = provoked(3e-3, true, 800);
        assert!(none.is_empty(), "rolled back a clean run: {none:?}");
        let (wrecked, _) = provoked(0.3, false, 800);
        let (saved, rolled) = provoked(0.3, true, 800);
        assert!(
            wrecked > clean + 0.5,
            "the provocation did not blow the run up: {wrecked:.3} against {clean:.3}"
        );
        assert!(!rolled.is_empty(), "no rollback");
        assert!(rolled[0].to_step <= 250, "{rolled:?}");
        assert!(
            saved < clean + 0.15,
            "guarded {saved:.3}, clean {clean:.3}, unguarded {wrecked:.3}"
        );
    }
}
