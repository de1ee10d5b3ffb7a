//! The matrix-vector kernels of batch-1 stepping (sampling, serving, exact validation): `ys (N ×
//! n) += xs (N × k) · Wᵀ` for the rows of W in f32, bf16 or int8 (one f32 scale per row), each
//! written three times: AVX-512, AVX2 + FMA, and portable. All three give the same bits for
//! every input, so a seed gives the same text on every machine:
//!
//! - f32 keeps `linalg::matvecs_acc`'s order (16 lanes of multiply-then-add, folded by a fixed
//!   tree, plus the tail), so the texts of existing seeds do not change. The vector versions
//!   keep 16 (AVX-512) or 4 (AVX2) rows' lanes in registers and fold them together with
//!   shuffles that add exactly the lanes the tree adds.
//! - bf16 and int8 (no earlier texts to keep) use the same lanes and tree with fused
//!   multiply-adds; the weight is widened to f32 exactly (bf16 by a shift, int8 by conversion),
//!   the activation stays f32. The portable version's `f32::mul_add` is the same IEEE
//!   operation as the hardware's (slower where the CPU has no FMA).
//!
//! Measured reason for hand-written intrinsics: the portable loop spends as long folding the 16
//! lanes of every row as it does multiplying (perf: 65 % of an H=128 validation in
//! `matvecs_acc`); see `bench/results/` for the kernels' speed.
//!
//! Owns the kernels' contract (the order above) and their dispatch; the kernels themselves are
//! in the rooms of `isa` (`portable`, `avx2`, `avx512`). Does not own the weights' layout (see
//! `sample::weights`) or the threads.

use super::isa::{self, Cpu, Path};

/// Widens a bf16 (the high half of an f32) to f32, exactly.
#[inline(always)]
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// Rounds an f32 to bf16, to nearest even (NaN stays NaN).
#[inline(always)]
pub fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    let round = 0x7FFF + ((b >> 16) & 1);
    (b.wrapping_add(round) >> 16) as u16
}

/// The weights of one matrix (n rows × k) in one precision.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
    /// int8 values and one f32 scale per row: row r is `q[r] · scale[r]`.
    I8(&'a [i8], &'a [f32]),
}

impl Rows<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::F32(w) => w.len(),
            Rows::Bf16(w) => w.len(),
            Rows::I8(w, _) => w.len(),
        }
    }
}

/// `ys (N × n) += xs (N × k) · Wᵀ`, each stream's dot products in the fixed order above, on
/// the kernels chosen for this process (`isa::kernels`).
pub fn matvecs(ys: &mut [f32], w: Rows, xs: &[f32], k: usize) {
    matvecs_at(isa::level(), ys, w, xs, k)
}

/// `matvecs` on the kernels of `at` (which this CPU must run): for tests and benchmarks.
pub fn matvecs_at(at: Path, ys: &mut [f32], w: Rows, xs: &[f32], k: usize) {
    if k == 0 {
        return;
    }
    let (n, streams) = (w.len() / k, xs.len() / k);
    assert!(
        w.len() == n * k && xs.len() == streams * k && ys.len() == streams * n,
        "matvecs shape"
    );
    if let Rows::I8(_, s) = w {
        assert_eq!(s.len(), n, "one scale per row");
    }
    assert!(
        at <= Cpu::here().best,
        "kernels for {at:?} on a CPU without them"
    );
    #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
    // SAFETY: this CPU runs `at` (asserted above), and the shapes were checked above.
    match at {
        Path::Avx512 | Path::Amx => return unsafe { isa::avx512::matvecs(ys, w, xs, k, n) },
        Path::Avx2 => return unsafe { isa::avx2::matvecs(ys, w, xs, k, n) },
        Path::Portable => {}
    }
    isa::portable::matvecs(ys, w, xs, k, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng, scale: f64) -> Vec<f32> {
        (0..n)
            .map(|_| rng.uniform_in(-scale, scale) as f32)
            .collect()
    }

    fn levels() -> Vec<Path> {
        Cpu::here().paths()
    }

    #[test]
    fn f32_kernels_give_linalgs_bits_at_every_vector_width() {
        let mut rng = Rng::new(5);
        for (n, k, streams) in [
            (64, 256, 1),
            (37, 100, 3),
            (16, 16, 2),
            (5, 7, 1),
            (128, 48, 4),
            (37, 100, 9), // 4 × 4 tiles, their row remainder and a stream left over
        ] {
            let w = random(n * k, &mut rng, 0.3);
            let xs = random(streams * k, &mut rng, 1.0);
            let y0 = random(streams * n, &mut rng, 1.0);
            let mut want = y0.clone();
            crate::engine::linalg::matvecs_acc(&mut want, &w, &xs, k);
            for at in levels() {
                let mut got = y0.clone();
                matvecs_at(at, &mut got, Rows::F32(&w), &xs, k);
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{at:?} n={n} k={k}"
                );
            }
        }
    }

    #[test]
    fn bf16_and_int8_kernels_agree_at_every_vector_width_and_with_f64() {
        let mut rng = Rng::new(6);
        for (n, k, streams) in [
            (64, 256, 1),
            (37, 100, 3),
            (48, 512, 2),
            (3, 5, 1),
            (37, 100, 9),
        ] {
            let wf = random(n * k, &mut rng, 0.3);
            let bf: Vec<u16> = wf.iter().map(|&x| f32_to_bf16(x)).collect();
            let scales: Vec<f32> = (0..n)
                .map(|r| wf[r * k..][..k].iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0)
                .collect();
            let q: Vec<i8> = (0..n * k)
                .map(|i| (wf[i] / scales[i / k]).round().clamp(-127.0, 127.0) as i8)
                .collect();
            let xs = random(streams * k, &mut rng, 1.0);
            for w in [Rows::Bf16(&bf), Rows::I8(&q, &scales)] {
                let mut base = vec![0.25f32; streams * n];
                matvecs_at(Path::Portable, &mut base, w, &xs, k);
                for at in levels() {
                    let mut got = vec![0.25f32; streams * n];
                    matvecs_at(at, &mut got, w, &xs, k);
                    assert!(
                        got.iter()
                            .zip(&base)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{at:?} n={n} k={k}"
                    );
                }
                // Against the exact product of the converted weights.
                for s in 0..streams {
                    for r in 0..n {
                        let exact: f64 = (0..k)
                            .map(|i| {
                                let wi = match w {
                                    Rows::Bf16(b) => bf16_to_f32(b[r * k + i]) as f64,
                                    Rows::I8(q, sc) => q[r * k + i] as f64 * sc[r] as f64,
                                    Rows::F32(_) => unreachable!(),
                                };
                                wi * xs[s * k + i] as f64
                            })
                            .sum::<f64>()
                            + 0.25;
                        let got = base[s * n + r] as f64;
                        assert!(
                            (got - exact).abs() < 1e-4 * (1.0 + exact.abs()),
                            "{got} vs {exact}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(f32_to_bf16(1.0), 0x3F80);
        assert_eq!(bf16_to_f32(f32_to_bf16(1.0 + 1.0 / 256.0)), 1.0); // a tie: to even
        assert_eq!(
            bf16_to_f32(f32_to_bf16(1.0 + 3.0 / 256.0)),
            1.0 + 4.0 / 256.0
        );
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
        assert_eq!(bf16_to_f32(f32_to_bf16(-2.5)), -2.5);
    }
}
