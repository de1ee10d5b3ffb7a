//! The peak of one core's two dot-product instructions, registers only (no memory): f32
//! `vfmadd231ps` (16 lanes × 1 product) against AVX512_BF16 `vdpbf16ps` (16 lanes × 2
//! products), each over 16 independent accumulators so that latency hides. A product is two
//! flops either way. Where `vdpbf16ps` does not reach twice the FMA's products per second, bf16
//! products without AMX cannot beat f32 by their arithmetic: only by the halved bytes of the
//! operands (issue 30's measurement, bench/results/isa-2026-12-02.md).
//!
//!     cargo run --release --example dot_peak     (needs AVX-512 and AVX512_BF16; x86-64 only)
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
use std::arch::x86_64::*;
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
use std::time::Instant;

#[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
fn main() {
    eprintln!("vdpbf16ps is x86-64 only (and not in the portable build)");
}

/// Iterations per timing, each REPEAT × 16 instructions between two spills of the
/// accumulators (which `black_box` forces).
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
const ITERS: usize = 10_000_000;
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
const REPEAT: usize = 8;

#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
fn main() {
    if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")) {
        eprintln!("this CPU has no AVX-512 with AVX512_BF16");
        return;
    }
    for round in 1..=3 {
        // SAFETY: the features were detected above.
        let (fma, fma_sum) = unsafe { fma_peak() };
        let (dp, dp_sum) = unsafe { dpbf16_peak() };
        println!(
            "round {round}: vfmadd231ps {fma:.1} GFLOP/s, vdpbf16ps {dp:.1} GFLOP/s, ratio {:.2} (checksums {fma_sum:.1} {dp_sum:.1})",
            dp / fma
        );
    }
}

/// Times ITERS × REPEAT rounds of `$step` on each of 16 accumulators `$r` (inline, so that the
/// intrinsics take the calling function's target features: a closure would not); returns
/// GFLOP/s at `$flops` per instruction, and a checksum that keeps the work alive.
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
macro_rules! time_chains {
    ($flops:expr, $r:ident => $step:expr) => {{
        let mut acc = [_mm512_setzero_ps(); 16];
        let t = Instant::now();
        for _ in 0..ITERS {
            for _ in 0..REPEAT {
                for $r in acc.iter_mut() {
                    *$r = $step;
                }
            }
            std::hint::black_box(&mut acc);
        }
        let s = t.elapsed().as_secs_f64();
        let sum: f32 = acc.iter().map(|r| _mm512_reduce_add_ps(*r)).sum();
        ((ITERS * REPEAT * 16 * $flops) as f64 / s / 1e9, sum)
    }};
}

/// GFLOP/s of 16 chains of `vfmadd231ps` zmm (32 flops each), and the checksum.
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
#[target_feature(enable = "avx512f")]
unsafe fn fma_peak() -> (f64, f32) {
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    time_chains!(32, r => _mm512_fmadd_ps(*r, a, b))
}

/// GFLOP/s of 16 chains of `vdpbf16ps` zmm (64 flops each: 32 products and their sums).
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dpbf16_peak() -> (f64, f32) {
    let a: __m512bh = std::mem::transmute(_mm512_set1_epi16(0x3f80)); // 1.0 in bf16
    let b: __m512bh = std::mem::transmute(_mm512_set1_epi16(0x3380)); // 2^-24 in bf16
    time_chains!(64, r => _mm512_dpbf16_ps(*r, a, b))
}
