//! The one training step of truncated BPTT (dropout masks, forward, loss, backward, carry,
//! clip, Adam), and a timer of it on random ids. The training run, the sizing probe and
//! `charrnn bench` all call these, so what is timed is exactly what is trained.
//!
//! Owns the order of a step's parts. Does not own their maths (`engine`, `optim`) or the data.

use super::{clip_grad_norm, Adam};
use crate::engine::{init_params, State, Threads, Workspace};
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

/// Median seconds of one training step (`step`, the whole of it) on random ids, after
/// `warmup` untimed steps: `steps` timed steps, or more until `min_seconds` have passed; also
/// returns the parameters it ended with.
pub fn time_steps(
    layout: &Layout,
    b: usize,
    t: usize,
    threads: Threads,
    warmup: usize,
    (steps, min_seconds): (usize, f64),
) -> (f64, Vec<f32>) {
    let cfg = layout.config;
    let mut rng = Rng::new(1);
    let mut params: Vec<f32> = init_params(layout, &mut rng);
    let n = b * t;
    let mut ids = |_| (rng.next_u64() % cfg.vocab as u64) as u32;
    let x: Vec<u32> = (0..n).map(&mut ids).collect();
    let y: Vec<u32> = (0..n).map(&mut ids).collect();
    let mut ws = Workspace::<f32>::new(layout, b, t, true, threads);
    let mut grads = vec![0.0f32; layout.total];
    let mut adam = Adam::new(layout.total, 2e-3, false);
    let mut carry = State::zeros(cfg.layers, b, cfg.hidden);
    let mut times = Vec::new();
    let mut drop_rng = Rng::new(2);
    let mut i = 0;
    while i < warmup + steps || times.iter().sum::<f64>() < min_seconds {
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
            (0.0, &mut drop_rng),
        );
        if i > warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    (median(&mut times), params)
}
