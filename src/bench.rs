//! `charrnn bench`: the engine's speed on random data, no corpus needed. Times full training
//! steps (forward, loss, backward, clip, Adam) after a warm-up and reports the median, the
//! GFLOP/s by the 72H²+6HV count (for 2 layers; `model::train_flops_per_char` in general), the
//! share of a matmul peak measured in the same process, and batch-1 sampling speed.
//!
//! A benchmark, never a test: numbers from it are compared side by side with the PyTorch peer
//! (`bench/compare.sh`), never against a fixed threshold.

use crate::cli::BenchArgs;
use crate::engine::{State, Workspace};
use crate::error::Result;
use crate::linalg::{matmul, MatRef, Threads};
use crate::model::{init_params, train_flops_per_char, Layout, ModelConfig};
use crate::optim::Adam;
use crate::rng::Rng;
use crate::sample::Sampler;
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Median GFLOP/s of an n×n×n f32 matmul on `threads` threads.
fn matmul_peak(n: usize, threads: Threads) -> f64 {
    let mut rng = Rng::new(9);
    let a: Vec<f32> = (0..n * n).map(|_| rng.uniform() as f32).collect();
    let b = a.clone();
    let mut c = vec![0.0f32; n * n];
    let mut times = Vec::new();
    for i in 0..12 {
        let t0 = Instant::now();
        matmul(
            &mut c,
            MatRef::new(&a, n, n),
            MatRef::new(&b, n, n),
            false,
            threads,
        );
        if i >= 2 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    2.0 * (n * n * n) as f64 / median(&mut times) / 1e9
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let threads = crate::train::setup_threads(a.threads)?;
    for (name, v) in [
        ("--hidden", a.hidden),
        ("--layers", a.layers),
        ("--batch", a.batch),
        ("--seq", a.seq),
        ("--vocab", a.vocab),
    ] {
        if v == 0 {
            crate::bail!("{name} must be at least 1");
        }
    }
    if a.steps == 0 {
        crate::bail!("--steps must be at least 1");
    }
    let cfg = ModelConfig {
        cell: a.cell,
        vocab: a.vocab,
        hidden: a.hidden,
        layers: a.layers,
        embed: a.embed,
    };
    let layout = Layout::new(cfg);
    let (b, t) = (a.batch, a.seq);
    let n = b * t;
    let thr = Threads(threads);
    let (step_s, params) = time_steps(&layout, b, t, thr, a.warmup, (a.steps, 0.0));
    let cps = n as f64 / step_s;
    let gflops = cps * train_flops_per_char(&cfg) / 1e9;
    let peak = matmul_peak(512, thr);

    // Batch-1 sampling: feed + pick per character.
    let mut s = Sampler::new(&layout, &params, 1);
    let mut id = 0;
    let mut srng = Rng::new(2);
    for _ in 0..200 {
        s.feed(&[id]);
        id = s.pick(0, &crate::sample::Pick::temperature(1.0), &mut srng);
    }
    let mut rates = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        for _ in 0..a.sample_chars {
            s.feed(&[id]);
            id = s.pick(0, &crate::sample::Pick::temperature(1.0), &mut srng);
        }
        rates.push(a.sample_chars as f64 / t0.elapsed().as_secs_f64());
    }
    let sample_cps = median(&mut rates);

    if a.json {
        println!(
            "{{\"cell\":\"{}\",\"hidden\":{},\"layers\":{},\"vocab\":{},\"batch\":{b},\"seq\":{t},\"threads\":{threads},\"steps\":{},\"median_step_ms\":{:.3},\"train_chars_per_s\":{:.1},\"gflops\":{:.2},\"matmul_peak_gflops\":{:.2},\"share_of_peak\":{:.3},\"sample_chars_per_s\":{:.1}}}",
            a.cell.name(), a.hidden, a.layers, a.vocab, a.steps, step_s * 1e3, cps, gflops, peak, gflops / peak, sample_cps
        );
    } else {
        println!(
            "{} {}×{} V={} B={b} T={t} threads={threads}: median step {:.2} ms over {} steps",
            a.cell.label(),
            a.layers,
            a.hidden,
            a.vocab,
            step_s * 1e3,
            a.steps
        );
        println!("train     {cps:>10.0} chars/s  {gflops:7.1} GFLOP/s  ({:.0}% of a {peak:.1} GFLOP/s 512³ matmul)", 100.0 * gflops / peak);
        println!("sample    {sample_cps:>10.0} chars/s  (batch 1)");
    }
    Ok(())
}

/// Median seconds of one training step (`train::step`, the whole of it) on random ids, after
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
        crate::train::step(
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
