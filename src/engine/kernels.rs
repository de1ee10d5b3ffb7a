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
//! Owns these kernels and their dispatch. Does not own the weights' layout (see
//! `sample::weights`) or the threads.

#![allow(clippy::needless_range_loop)] // the tails index weights and inputs by one column

use super::simd::{level, Level};

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
    fn len(&self) -> usize {
        match self {
            Rows::F32(w) => w.len(),
            Rows::Bf16(w) => w.len(),
            Rows::I8(w, _) => w.len(),
        }
    }
}

/// `ys (N × n) += xs (N × k) · Wᵀ`, each stream's dot products in the fixed order above, on
/// the best kernels this CPU has.
pub fn matvecs(ys: &mut [f32], w: Rows, xs: &[f32], k: usize) {
    matvecs_at(level(), ys, w, xs, k)
}

/// `matvecs` on the kernels of `at` (which this CPU must have): for tests and benchmarks.
pub fn matvecs_at(at: Level, ys: &mut [f32], w: Rows, xs: &[f32], k: usize) {
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
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `at` is at most the level detected on this CPU (asserted below), and the
        // shapes were checked above.
        assert!(at <= level(), "kernels for {at:?} on a CPU without them");
        match at {
            Level::Avx512 => return unsafe { x86::matvecs_avx512(ys, w, xs, k, n) },
            Level::Avx2 => return unsafe { x86::matvecs_avx2(ys, w, xs, k, n) },
            Level::Base => {}
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at; // the portable kernels are the only ones
    portable(ys, w, xs, k, n)
}

/// The fixed reduction of 16 lanes: folded to 8, then a tree (as `linalg::fold`).
#[inline(always)]
fn fold(acc: &[f32; 16]) -> f32 {
    let mut h = [0.0f32; 8];
    for j in 0..8 {
        h[j] = acc[j] + acc[j + 8];
    }
    ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7]))
}

/// Weight `i` of row `r` as f32, and whether this precision multiplies with an FMA.
#[inline(always)]
fn weight(w: &Rows, r: usize, k: usize, i: usize) -> f32 {
    match w {
        Rows::F32(v) => v[r * k + i],
        Rows::Bf16(v) => bf16_to_f32(v[r * k + i]),
        Rows::I8(v, _) => v[r * k + i] as f32,
    }
}

/// One dot product in the fixed order: f32 multiplies then adds; bf16 and int8 fuse.
#[inline(always)]
fn dot_row(w: &Rows, r: usize, k: usize, x: &[f32]) -> f32 {
    let fused = !matches!(w, Rows::F32(_));
    let step = |acc: f32, a: f32, b: f32| {
        if fused {
            a.mul_add(b, acc)
        } else {
            acc + a * b
        }
    };
    let mut acc = [0.0f32; 16];
    let whole = k / 16 * 16;
    for c in (0..whole).step_by(16) {
        for j in 0..16 {
            acc[j] = step(acc[j], weight(w, r, k, c + j), x[c + j]);
        }
    }
    let mut tail = 0.0f32;
    for i in whole..k {
        tail = step(tail, weight(w, r, k, i), x[i]);
    }
    let d = fold(&acc) + tail;
    match w {
        Rows::I8(_, s) => d * s[r],
        _ => d,
    }
}

fn portable(ys: &mut [f32], w: Rows, xs: &[f32], k: usize, n: usize) {
    for r in 0..n {
        for (s, x) in xs.chunks_exact(k).enumerate() {
            ys[s * n + r] += dot_row(&w, r, k, x);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{dot_row, Rows};
    use std::arch::x86_64::*;

    /// Loads 16 weights of row `r` at column `c` as f32.
    #[inline(always)]
    unsafe fn load16(w: &Rows, r: usize, k: usize, c: usize) -> __m512 {
        match w {
            Rows::F32(v) => _mm512_loadu_ps(v.as_ptr().add(r * k + c)),
            Rows::Bf16(v) => {
                let h = _mm256_loadu_si256(v.as_ptr().add(r * k + c) as *const __m256i);
                _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
            }
            Rows::I8(v, _) => {
                let b = _mm_loadu_si128(v.as_ptr().add(r * k + c) as *const __m128i);
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b))
            }
        }
    }

    /// Adds lanes of pairs of 16-lane vectors exactly as the tree does, 16 rows at a time:
    /// returns their totals in row order.
    #[inline(always)]
    unsafe fn fold16(acc: &[__m512; 16]) -> __m512 {
        // Distance 8: [a0..8 | b0..8] + [a8..16 | b8..16] for rows (2i, 2i+1).
        let mut s = [_mm512_setzero_ps(); 8];
        for i in 0..8 {
            let (a, b) = (acc[2 * i], acc[2 * i + 1]);
            let lo = _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b);
            let hi = _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b);
            s[i] = _mm512_add_ps(lo, hi);
        }
        // Distance 4: 128-bit lanes [r0 lo, r1 lo, r2 lo, r3 lo] + [… hi]: rows 4m..4m+4.
        let mut t = [_mm512_setzero_ps(); 4];
        for m in 0..4 {
            let (a, b) = (s[2 * m], s[2 * m + 1]);
            let lo = _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b);
            let hi = _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b);
            t[m] = _mm512_add_ps(lo, hi);
        }
        // Distance 1: in each 128-bit lane, (q0 + q1, q2 + q3) of two rows.
        let mut u = [_mm512_setzero_ps(); 2];
        for p in 0..2 {
            let (a, b) = (t[2 * p], t[2 * p + 1]);
            let ev = _mm512_shuffle_ps::<0b10_00_10_00>(a, b);
            let od = _mm512_shuffle_ps::<0b11_01_11_01>(a, b);
            u[p] = _mm512_add_ps(ev, od);
        }
        // Distance 2: (q0 + q1) + (q2 + q3).
        let ev = _mm512_shuffle_ps::<0b10_00_10_00>(u[0], u[1]);
        let od = _mm512_shuffle_ps::<0b11_01_11_01>(u[0], u[1]);
        let v = _mm512_add_ps(ev, od);
        // Lane 4L + m holds row L + 4m.
        let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        _mm512_permutexvar_ps(idx, v)
    }

    /// Tails of the dot products of rows × streams past the last whole 16 columns, in the
    /// kernels' order (`fused`: FMA, else multiply then add).
    #[inline(always)]
    unsafe fn tail(w: &Rows, r: usize, x: &[f32], k: usize, whole: usize, fused: bool) -> f32 {
        let mut t = 0.0f32;
        for i in whole..k {
            let a = super::weight(w, r, k, i);
            t = if fused {
                a.mul_add(x[i], t)
            } else {
                t + a * x[i]
            };
        }
        t
    }

    /// 4 rows × 4 streams at once: each weight vector is loaded (and widened) once for four
    /// streams, the 16 accumulators fold together. Each accumulator sees exactly the products
    /// it would alone, in the same order, so the bits are those of the one-stream kernel.
    #[inline(always)]
    unsafe fn tile4x4(
        ys: &mut [f32],
        w: &Rows,
        xs: &[f32],
        (r0, s0): (usize, usize),
        k: usize,
        n: usize,
    ) {
        let fused = !matches!(w, Rows::F32(_));
        let whole = k / 16 * 16;
        let mut acc = [_mm512_setzero_ps(); 16]; // accumulator 4·r + s: row r0 + r, stream s0 + s
        for c in (0..whole).step_by(16) {
            let wv = [0, 1, 2, 3].map(|r| load16(w, r0 + r, k, c));
            let xv = [0, 1, 2, 3].map(|s| _mm512_loadu_ps(xs.as_ptr().add((s0 + s) * k + c)));
            for r in 0..4 {
                for s in 0..4 {
                    let a = &mut acc[4 * r + s];
                    *a = if fused {
                        _mm512_fmadd_ps(wv[r], xv[s], *a)
                    } else {
                        _mm512_add_ps(*a, _mm512_mul_ps(wv[r], xv[s]))
                    };
                }
            }
        }
        let mut tails = [0.0f32; 16];
        for (q, t) in tails.iter_mut().enumerate() {
            let (r, s) = (q / 4, q % 4);
            *t = tail(w, r0 + r, &xs[(s0 + s) * k..][..k], k, whole, fused);
        }
        let mut d = _mm512_add_ps(fold16(&acc), _mm512_loadu_ps(tails.as_ptr()));
        if let Rows::I8(_, sc) = w {
            let row_scale: [f32; 16] = std::array::from_fn(|q| sc[r0 + q / 4]);
            d = _mm512_mul_ps(d, _mm512_loadu_ps(row_scale.as_ptr()));
        }
        let mut out = [0.0f32; 16];
        _mm512_storeu_ps(out.as_mut_ptr(), d);
        for (q, v) in out.iter().enumerate() {
            ys[(s0 + q % 4) * n + r0 + q / 4] += v;
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,avx2")]
    pub unsafe fn matvecs_avx512(ys: &mut [f32], w: Rows, xs: &[f32], k: usize, n: usize) {
        let streams = xs.len() / k;
        // Four or more streams (a busy server): 4 × 4 tiles, then the other streams alone.
        let tiled = streams / 4 * 4;
        for s0 in (0..tiled).step_by(4) {
            for r0 in (0..n / 4 * 4).step_by(4) {
                tile4x4(ys, &w, xs, (r0, s0), k, n);
            }
            for r in n / 4 * 4..n {
                for s in s0..s0 + 4 {
                    ys[s * n + r] += dot_row(&w, r, k, &xs[s * k..][..k]);
                }
            }
        }
        let fused = !matches!(w, Rows::F32(_));
        let whole = k / 16 * 16;
        let blocks = n / 16;
        for blk in 0..blocks {
            let r0 = blk * 16;
            for (s, x) in xs.chunks_exact(k).enumerate().skip(tiled) {
                let mut acc = [_mm512_setzero_ps(); 16];
                for c in (0..whole).step_by(16) {
                    let xv = _mm512_loadu_ps(x.as_ptr().add(c));
                    for (q, a) in acc.iter_mut().enumerate() {
                        let wv = load16(&w, r0 + q, k, c);
                        *a = if fused {
                            _mm512_fmadd_ps(wv, xv, *a)
                        } else {
                            _mm512_add_ps(*a, _mm512_mul_ps(wv, xv))
                        };
                    }
                }
                let mut d = fold16(&acc);
                if whole < k {
                    let mut tails = [0.0f32; 16];
                    for (q, t) in tails.iter_mut().enumerate() {
                        for i in whole..k {
                            let a = super::weight(&w, r0 + q, k, i);
                            *t = if fused {
                                a.mul_add(x[i], *t)
                            } else {
                                *t + a * x[i]
                            };
                        }
                    }
                    d = _mm512_add_ps(d, _mm512_loadu_ps(tails.as_ptr()));
                } else {
                    d = _mm512_add_ps(d, _mm512_setzero_ps()); // fold + tail, the tail being 0
                }
                if let Rows::I8(_, sc) = w {
                    d = _mm512_mul_ps(d, _mm512_loadu_ps(sc.as_ptr().add(r0)));
                }
                let y = ys.as_mut_ptr().add(s * n + r0);
                _mm512_storeu_ps(y, _mm512_add_ps(_mm512_loadu_ps(y), d));
            }
        }
        for r in blocks * 16..n {
            for (s, x) in xs.chunks_exact(k).enumerate().skip(tiled) {
                ys[s * n + r] += dot_row(&w, r, k, x);
            }
        }
    }

    /// Loads 8 weights of row `r` at column `c` as f32.
    #[inline(always)]
    unsafe fn load8(w: &Rows, r: usize, k: usize, c: usize) -> __m256 {
        match w {
            Rows::F32(v) => _mm256_loadu_ps(v.as_ptr().add(r * k + c)),
            Rows::Bf16(v) => {
                let h = _mm_loadu_si128(v.as_ptr().add(r * k + c) as *const __m128i);
                _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
            }
            Rows::I8(v, _) => {
                let b = _mm_loadl_epi64(v.as_ptr().add(r * k + c) as *const __m128i);
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b))
            }
        }
    }

    /// The tree for 4 rows whose 16 lanes are (lo, hi) pairs: their totals in row order.
    #[inline(always)]
    unsafe fn fold4(acc: &[[__m256; 2]; 4]) -> __m128 {
        // Distance 8: lo + hi.
        let h = acc.map(|[lo, hi]| _mm256_add_ps(lo, hi));
        // Distance 4: [r_a lo4 | r_b lo4] + [r_a hi4 | r_b hi4].
        let t0 = _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(h[0], h[1]),
            _mm256_permute2f128_ps::<0x31>(h[0], h[1]),
        );
        let t1 = _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(h[2], h[3]),
            _mm256_permute2f128_ps::<0x31>(h[2], h[3]),
        );
        // Distance 1: 128-bit lane L of t0 is row L, of t1 row 2 + L.
        let u = _mm256_add_ps(
            _mm256_shuffle_ps::<0b10_00_10_00>(t0, t1),
            _mm256_shuffle_ps::<0b11_01_11_01>(t0, t1),
        );
        // u lane L: [row L: r0, r1, row 2+L: r0, r1]. Distance 2.
        let v = _mm256_add_ps(
            _mm256_shuffle_ps::<0b10_00_10_00>(u, u),
            _mm256_shuffle_ps::<0b11_01_11_01>(u, u),
        );
        // v lane L: [row L, row 2+L, row L, row 2+L].
        let lo = _mm256_castps256_ps128(v); // [row0, row2, ..]
        let hi = _mm256_extractf128_ps::<1>(v); // [row1, row3, ..]
        _mm_unpacklo_ps(lo, hi) // [row0, row1, row2, row3]
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn matvecs_avx2(ys: &mut [f32], w: Rows, xs: &[f32], k: usize, n: usize) {
        let fused = !matches!(w, Rows::F32(_));
        let whole = k / 16 * 16;
        let blocks = n / 4;
        for blk in 0..blocks {
            let r0 = blk * 4;
            for (s, x) in xs.chunks_exact(k).enumerate() {
                let mut acc = [[_mm256_setzero_ps(); 2]; 4];
                for c in (0..whole).step_by(16) {
                    let xl = _mm256_loadu_ps(x.as_ptr().add(c));
                    let xh = _mm256_loadu_ps(x.as_ptr().add(c + 8));
                    for (q, a) in acc.iter_mut().enumerate() {
                        let (wl, wh) = (load8(&w, r0 + q, k, c), load8(&w, r0 + q, k, c + 8));
                        if fused {
                            a[0] = _mm256_fmadd_ps(wl, xl, a[0]);
                            a[1] = _mm256_fmadd_ps(wh, xh, a[1]);
                        } else {
                            a[0] = _mm256_add_ps(a[0], _mm256_mul_ps(wl, xl));
                            a[1] = _mm256_add_ps(a[1], _mm256_mul_ps(wh, xh));
                        }
                    }
                }
                let mut d = fold4(&acc);
                let mut tails = [0.0f32; 4];
                for (q, t) in tails.iter_mut().enumerate() {
                    for i in whole..k {
                        let a = super::weight(&w, r0 + q, k, i);
                        *t = if fused {
                            a.mul_add(x[i], *t)
                        } else {
                            *t + a * x[i]
                        };
                    }
                }
                d = _mm_add_ps(d, _mm_loadu_ps(tails.as_ptr()));
                if let Rows::I8(_, sc) = w {
                    d = _mm_mul_ps(d, _mm_loadu_ps(sc.as_ptr().add(r0)));
                }
                let y = ys.as_mut_ptr().add(s * n + r0);
                _mm_storeu_ps(y, _mm_add_ps(_mm_loadu_ps(y), d));
            }
        }
        for r in blocks * 4..n {
            for (s, x) in xs.chunks_exact(k).enumerate() {
                ys[s * n + r] += dot_row(&w, r, k, x);
            }
        }
    }
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

    fn levels() -> Vec<Level> {
        [Level::Base, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|&l| l <= level())
            .collect()
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
                matvecs_at(Level::Base, &mut base, w, &xs, k);
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
