//! `charrnn bench`: the engine's speed on random data, no corpus needed. Times full training
//! steps (forward, loss, backward, clip, Adam) after a warm-up and reports the median, the
//! GFLOP/s by the 72H²+6HV count (for 2 layers; `model::train_flops_per_char` in general), the
//! share of a matmul peak measured in the same process (in the training step's precision),
//! and sampling speed.
//!
//! A benchmark, never a test: numbers from it are compared side by side with the PyTorch peer
//! (`bench/compare.sh`), never against a fixed threshold.

use crate::engine::bf16::{self, Packs};
use crate::engine::isa;
use crate::engine::linalg::{matmul, MatRef, Threads};
use crate::engine::MatmulPrecision;
use crate::error::Result;
use crate::model::{train_flops_per_char, Layout, ModelConfig};
use crate::optim::step::{median, time_steps};
use crate::rng::Rng;
use crate::sample::{Pick, Sampler};
use clap::Args;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The recurrent cell.
    #[arg(long, value_enum, default_value_t)]
    pub cell: crate::model::Cell,
    /// Hidden size of each recurrent layer.
    #[arg(long, default_value_t = 256, allow_negative_numbers = true)]
    pub hidden: usize,
    /// Number of stacked recurrent layers.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    pub layers: usize,
    /// Vocabulary size (65 is tiny Shakespeare's).
    #[arg(long, default_value_t = 65, allow_negative_numbers = true)]
    pub vocab: usize,
    /// Width of a learned input embedding; 0 is one-hot input.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub embed: usize,
    /// Streams per step (B).
    #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
    pub batch: usize,
    /// Steps per stream per step (T).
    #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
    pub seq: usize,
    /// Drop probability of the training step's dropout (new masks every step, as a run
    /// draws them); 0 is none.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub dropout: f64,
    /// Timed training steps (the median is reported).
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub warmup: usize,
    /// Characters per timed batch-1 sampling round (5 rounds, median).
    #[arg(long, default_value_t = 2000, allow_negative_numbers = true)]
    pub sample_chars: usize,
    /// Streams sampled together (1: batch-1 sampling; more: what a busy server steps).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub streams: usize,
    /// The precision of the weights sampling multiplies with, and of the training step's
    /// products (bf16 trains with bf16 operands; f32 and int8 train in f32); the threads.
    #[command(flatten)]
    pub compute: crate::sample::weights::Compute,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Median GFLOP/s of an n×n×n matmul on `threads` threads in `precision` (bf16: the
/// packed-operand product alone, packing not counted).
fn matmul_peak(n: usize, threads: Threads, precision: MatmulPrecision) -> f64 {
    let mut rng = Rng::new(9);
    let a: Vec<f32> = (0..n * n).map(|_| rng.uniform() as f32).collect();
    let b = a.clone();
    let mut c = vec![0.0f32; n * n];
    let mut packs = Packs::default();
    packs.a.pack(MatRef::new(&a, n, n));
    packs.b.pack(MatRef::new(&b, n, n));
    let mut times = Vec::new();
    for i in 0..12 {
        let t0 = Instant::now();
        match precision {
            MatmulPrecision::F32 => matmul(
                &mut c,
                MatRef::new(&a, n, n),
                MatRef::new(&b, n, n),
                false,
                threads,
            ),
            MatmulPrecision::Bf16 => bf16::gemm(&mut c, packs.a.view(), &packs.b, false, threads),
        }
        if i >= 2 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    2.0 * (n * n * n) as f64 / median(&mut times) / 1e9
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let threads = a.compute.threads.count()?;
    check(a)?;
    let cfg = ModelConfig {
        cell: a.cell,
        vocab: a.vocab,
        hidden: a.hidden,
        layers: a.layers,
        embed: a.embed,
    };
    let layout = Layout::new(cfg);
    let (b, t) = (a.batch, a.seq);
    let thr = Threads(threads);
    let train_precision = match a.compute.precision {
        crate::sample::Precision::Bf16 => MatmulPrecision::Bf16,
        _ => MatmulPrecision::F32,
    };
    check_memory(a, &layout, (thr, train_precision))?;
    let (step_s, params) = time_steps(
        &layout,
        (b, t),
        (thr, train_precision),
        (a.warmup, a.dropout),
        (a.steps, 0.0),
    );
    let train_cps = (b * t) as f64 / step_s;
    let (sample_cps, sample_threads) = sampling_rate(a, &layout, &params, threads);
    let m = Measured {
        threads,
        step_s,
        train_cps,
        gflops: train_cps * train_flops_per_char(&cfg) / 1e9,
        peak: matmul_peak(512, thr, train_precision),
        train_precision,
        sample_cps,
        sample_threads,
    };
    if a.json {
        print_json(a, &m);
    } else {
        print_text(a, &m);
    }
    Ok(())
}

/// What one `charrnn bench` measured.
struct Measured {
    threads: usize,
    /// Median seconds per training step.
    step_s: f64,
    /// Training characters per second (B·T / step_s).
    train_cps: f64,
    /// Training GFLOP/s, and the 512³ matmul's in the training step's precision.
    gflops: f64,
    peak: f64,
    train_precision: MatmulPrecision,
    /// Sampling characters per second over all streams, and the sampler's crew size.
    sample_cps: f64,
    sample_threads: usize,
}

/// Bench's flags that clap cannot check alone.
fn check(a: &BenchArgs) -> Result<()> {
    for (name, v) in [
        ("--hidden", a.hidden),
        ("--layers", a.layers),
        ("--batch", a.batch),
        ("--seq", a.seq),
        ("--vocab", a.vocab),
        ("--steps", a.steps),
        ("--streams", a.streams),
    ] {
        if v == 0 {
            crate::bail!("{name} must be at least 1");
        }
    }
    if !(0.0..1.0).contains(&a.dropout) {
        crate::bail!(
            "--dropout must be at least 0 and below 1, got {}",
            a.dropout
        );
    }
    crate::train::check_model_limits(Some(a.hidden), a.layers, Some(a.embed))?;
    if a.vocab > crate::checkpoint::MAX_VOCAB {
        crate::bail!(
            "--vocab must be at most {} (the largest a checkpoint holds), got {}",
            crate::checkpoint::MAX_VOCAB,
            a.vocab
        );
    }
    Ok(())
}

/// Refuses sizes that would not fit in the memory available, before they are allocated: the
/// training step's weights, gradients, moments and workspace (as `optim::step::time_steps`
/// holds them), the sampler's streams and the 512³ matmul.
fn check_memory(
    a: &BenchArgs,
    layout: &Layout,
    (threads, precision): (Threads, MatmulPrecision),
) -> Result<()> {
    use crate::memory::{buffer, Need};
    use crate::sample::Sampler;
    let mut need = Need::default();
    need.add(
        "the weights, gradients and Adam moments",
        buffer(&[4, layout.total], 4),
    )
    .add(
        format!("the workspace of batch {} × seq {}", a.batch, a.seq),
        crate::engine::Workspace::<f32>::bytes(
            layout,
            (a.batch, a.seq),
            (true, a.dropout > 0.0),
            (precision, threads),
        )
        .saturating_add(buffer(&[2, a.batch, a.seq], 4))
        .saturating_add(buffer(&[2, a.layers, a.batch, a.hidden], 4)),
    )
    .add(
        format!("{} sampled streams", a.streams),
        Sampler::bytes(layout, a.streams),
    )
    .add("the matmul", buffer(&[5, 512, 512], 4));
    need.check(
        &format!(
            "bench of {} {}×{} with vocabulary {}",
            a.cell.label(),
            a.layers,
            a.hidden,
            a.vocab
        ),
        crate::memory::available(),
        "choose a smaller --hidden, --layers, --vocab, --embed, --batch, --seq or --streams",
    )
}

/// Sampling: --streams streams (1: batch-1) stepped together, feed + pick per character, in
/// --precision on the crew of --threads; characters per second over all streams (the median
/// of 5 timings after 200 warm-up steps) and the crew's size.
fn sampling_rate(a: &BenchArgs, layout: &Layout, params: &[f32], threads: usize) -> (f64, usize) {
    let n = a.streams;
    let mut s = Sampler::with(layout, params, n, a.compute.precision, threads);
    let mut ids = vec![0u32; n];
    let mut srng = Rng::new(2);
    let mut step = |s: &mut Sampler, ids: &mut [u32]| {
        s.feed(ids);
        for (k, id) in ids.iter_mut().enumerate() {
            *id = s.pick(k, &Pick::temperature(1.0), &mut srng);
        }
    };
    for _ in 0..200 {
        step(&mut s, &mut ids);
    }
    let mut rates = Vec::new();
    let steps = a.sample_chars.div_ceil(n);
    for _ in 0..5 {
        let t0 = Instant::now();
        for _ in 0..steps {
            step(&mut s, &mut ids);
        }
        rates.push((steps * n) as f64 / t0.elapsed().as_secs_f64());
    }
    (median(&mut rates), s.threads())
}

fn print_json(a: &BenchArgs, m: &Measured) {
    let (b, t, n, threads) = (a.batch, a.seq, a.streams, m.threads);
    let k = isa::kernels();
    println!(
        "{{\"cell\":\"{}\",\"hidden\":{},\"layers\":{},\"vocab\":{},\"batch\":{b},\"seq\":{t},\"threads\":{threads},\"dropout\":{},\"steps\":{},\"median_step_ms\":{:.3},\"train_chars_per_s\":{:.1},\"gflops\":{:.2},\"matmul_peak_gflops\":{:.2},\"share_of_peak\":{:.3},\"sample_chars_per_s\":{:.1},\"precision\":\"{}\",\"train_precision\":\"{}\",\"amx\":{},\"streams\":{n},\"kernels\":\"{}\",\"products\":\"{}\",\"f32_products\":\"{}\",\"bf16_products\":\"{}\"}}",
        a.cell.name(), a.hidden, a.layers, a.vocab, a.dropout, a.steps, m.step_s * 1e3, m.train_cps, m.gflops, m.peak, m.gflops / m.peak, m.sample_cps, a.compute.precision.name(), m.train_precision.name(), k.bf16 == isa::Bf16Products::Amx, k.path.name(), k.products(m.train_precision == MatmulPrecision::Bf16), k.f32_label(), k.bf16.label()
    );
}

fn print_text(a: &BenchArgs, m: &Measured) {
    let (b, t, threads) = (a.batch, a.seq, m.threads);
    println!(
        "{} {}×{} V={} B={b} T={t} threads={threads} dropout={}: median step {:.2} ms over {} steps",
        a.cell.label(),
        a.layers,
        a.hidden,
        a.vocab,
        a.dropout,
        m.step_s * 1e3,
        a.steps
    );
    let k = isa::kernels();
    println!(
        "kernels   {}: {}, {}, vector loops {}",
        k.path.name(),
        k.products(false),
        k.products(true),
        k.path.loops_label()
    );
    let (cps, gflops, peak) = (m.train_cps, m.gflops, m.peak);
    println!(
        "train     {cps:>10.0} chars/s  {gflops:7.1} GFLOP/s  ({:.0}% of a {peak:.1} GFLOP/s 512³ matmul; {})",
        100.0 * gflops / peak,
        k.products(m.train_precision == MatmulPrecision::Bf16),
    );
    println!(
        "sample    {:>10.0} chars/s  ({} stream(s), {}, {} thread(s))",
        m.sample_cps,
        a.streams,
        a.compute.precision.name(),
        m.sample_threads
    );
}
