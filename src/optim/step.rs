//! The one training step of truncated BPTT (dropout masks, forward, loss, backward, carry,
//! clip, Adam), and a timer of it on random ids. The training run, the sizing probe and
//! `charrnn bench` all call these, so what is timed is exactly what is trained.
//!
//! Owns the order of a step's parts. Does not own their maths (`engine`, `optim`) or the data.

use super::{clip_grad_norm, Adam};
use crate::engine::{init_params, MatmulPrecision, State, Threads, Workspace};
use crate::model::Layout;
use crate::rng::Rng;
use std::time::Instant;

/// One optimiser step on batch (x, y) (time-major ids, (T, B) each): new dropout masks (drop
/// probability and the run's generator), forward from the carried state, loss, backward, carry
/// the final state, clip the global gradient norm to `clip` (0: off), Adam. Returns the mean
/// loss in nats/char.
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

/// The median of `v` (sorted in place); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Median seconds of one training step and the spread of the timed steps, (max − min) /
/// median (see `time_steps`).
pub fn time_steps_spread(
    layout: &Layout,
    (b, t): (usize, usize),
    (threads, precision): (Threads, MatmulPrecision),
    (warmup, dropout): (usize, f64),
    (steps, min_seconds): (usize, f64),
) -> (f64, f64) {
    let (median, times, _) = timed_steps(
        layout,
        (b, t),
        (threads, precision),
        (warmup, dropout),
        (steps, min_seconds),
    );
    let (lo, hi) = times
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    (median, (hi - lo) / median)
}

/// Median seconds of one training step (`step`, the whole of it, with new dropout masks of
/// drop probability `dropout` each step, as a run draws them) on random ids, after `warmup`
/// untimed steps: `steps` timed steps, or more until `min_seconds` have passed; also returns
/// the parameters it ended with.
pub fn time_steps(
    layout: &Layout,
    (b, t): (usize, usize),
    (threads, precision): (Threads, MatmulPrecision),
    (warmup, dropout): (usize, f64),
    (steps, min_seconds): (usize, f64),
) -> (f64, Vec<f32>) {
    let (median, _, params) = timed_steps(
        layout,
        (b, t),
        (threads, precision),
        (warmup, dropout),
        (steps, min_seconds),
    );
    (median, params)
}

/// (median seconds, every timed step's seconds, the parameters it ended with).
fn timed_steps(
    layout: &Layout,
    (b, t): (usize, usize),
    (threads, precision): (Threads, MatmulPrecision),
    (warmup, dropout): (usize, f64),
    (steps, min_seconds): (usize, f64),
) -> (f64, Vec<f64>, Vec<f32>) {
    let cfg = layout.config;
    let mut rng = Rng::new(1);
    let mut params: Vec<f32> = init_params(layout, &mut rng);
    let n = b * t;
    let mut ids = |_| (rng.next_u64() % cfg.vocab as u64) as u32;
    let x: Vec<u32> = (0..n).map(&mut ids).collect();
    let y: Vec<u32> = (0..n).map(&mut ids).collect();
    let mut ws = Workspace::<f32>::new(layout, b, t, true, threads);
    ws.set_precision(precision);
    let mut grads = vec![0.0f32; layout.total];
    let mut adam = Adam::new(layout.total, 2e-3, false);
    let mut carry = State::zeros(cfg.layers, b, cfg.hidden);
    let mut times = Vec::new();
    let mut drop_rng = Rng::new(2);
    let mut i = 0;
    while i < warmup.saturating_add(steps) || times.iter().sum::<f64>() < min_seconds {
        i += 1;
        let t0 = Instant::now();
        step(
            &mut ws,
            layout,
            &mut params,
            &mut grads,
            &mut adam,
            &mut carry,
            (&x, &y),
            5.0,
            (dropout, &mut drop_rng),
        );
        if i > warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let m = median(&mut times.clone());
    (m, times, params)
}

/// A 2×64 LSTM over a vocabulary of 20, for tests that train one (here and in `train`).
#[cfg(test)]
pub(crate) fn small_lstm() -> Layout {
    use crate::model::{Cell, ModelConfig};
    Layout::new(ModelConfig {
        cell: Cell::Lstm,
        vocab: 20,
        hidden: 64,
        layers: 2,
        embed: 0,
    })
}

/// `len` ids of a text with structure over 20 characters: each follows from the two before it
/// nine times in ten, else is random (one fixed generator, so every call gives the same text).
#[cfg(test)]
pub(crate) fn structured_text(len: usize) -> Vec<u32> {
    let v = 20u32;
    let mut rng = Rng::new(7);
    let mut text = vec![0u32, 1];
    while text.len() < len {
        let (p, q) = (text[text.len() - 2], text[text.len() - 1]);
        let next = if rng.uniform() < 0.9 {
            (3 * p + 5 * q + 1) % v
        } else {
            (rng.next_u64() % v as u64) as u32
        };
        text.push(next);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::isa::Bf16Products;

    /// Losses of `steps` training steps on a text with structure (each character follows
    /// from the two before it nine times in ten), in `precision`, from the same seed.
    fn losses(precision: MatmulPrecision, steps: usize, threads: usize) -> Vec<f64> {
        losses_on(
            precision,
            crate::engine::isa::kernels().bf16,
            steps,
            threads,
        )
    }

    /// `losses` with the bf16 products on `kernel`.
    fn losses_on(
        precision: MatmulPrecision,
        kernel: Bf16Products,
        steps: usize,
        threads: usize,
    ) -> Vec<f64> {
        let layout = small_lstm();
        let (b, t) = (16, 32);
        let text = structured_text(60_000);
        let mut params: Vec<f32> = init_params(&layout, &mut Rng::new(1));
        let mut ws = Workspace::<f32>::new(&layout, b, t, true, Threads(threads));
        ws.set_precision(precision);
        ws.set_bf16_kernel(kernel);
        let mut grads = vec![0.0f32; layout.total];
        let mut adam = Adam::new(layout.total, 3e-3, false);
        let mut carry = State::zeros(2, b, 64);
        let mut drop_rng = Rng::new(2);
        (0..steps)
            .map(|s| {
                // Stream k reads its own stretch of the text, T characters further each step.
                let (mut x, mut y) = (Vec::new(), Vec::new());
                for ti in 0..t {
                    for k in 0..b {
                        let at = k * 3_500 + s * t + ti;
                        x.push(text[at]);
                        y.push(text[at + 1]);
                    }
                }
                step(
                    &mut ws,
                    &layout,
                    &mut params,
                    &mut grads,
                    &mut adam,
                    &mut carry,
                    (&x, &y),
                    5.0,
                    (0.1, &mut drop_rng),
                )
            })
            .collect()
    }

    /// The band: over steps 150–200 the mean losses of a bf16 and an f32 run from the same
    /// seed differ by at most 0.05 nats/char, and no single step by more than 0.25; both have
    /// learned (their loss fell by over 1 nat from ln 20 ≈ 3.0). On every bf16 kernel this CPU
    /// runs.
    #[test]
    fn bf16_training_tracks_f32_for_200_steps() {
        let f = losses(MatmulPrecision::F32, 200, 2);
        for kernel in crate::engine::isa::Cpu::here().bf16_kernels() {
            let h = losses_on(MatmulPrecision::Bf16, kernel, 200, 2);
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (mf, mh) = (mean(&f[150..]), mean(&h[150..]));
            assert!(
                (mf - mh).abs() <= 0.05,
                "{kernel:?}: mean loss over steps 150-200: f32 {mf:.4}, bf16 {mh:.4}"
            );
            let worst = f
                .iter()
                .zip(&h)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= 0.25,
                "{kernel:?}: a step's losses differ by {worst:.4}"
            );
            assert!(
                mf < f[0] - 1.0 && mh < h[0] - 1.0,
                "{kernel:?}: no learning: f32 {mf:.3}, bf16 {mh:.3}"
            );
        }
    }

    /// Within a precision a run is a function of its seed: the same losses, bit for bit.
    #[test]
    fn bf16_training_is_deterministic() {
        for kernel in crate::engine::isa::Cpu::here().bf16_kernels() {
            assert_eq!(
                losses_on(MatmulPrecision::Bf16, kernel, 20, 2),
                losses_on(MatmulPrecision::Bf16, kernel, 20, 2),
                "{kernel:?}"
            );
        }
    }
}
