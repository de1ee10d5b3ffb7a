//! The AVX2 room: the sampler's matrix-vector kernels (`kernels::matvecs`) with 8 lanes and
//! FMA, in exactly the portable kernels' order (see `kernels`), so that they give the same bits.
//!
//! Owns these kernels. Does not own their contract or dispatch (`kernels`), nor the choice of
//! path (`isa`).

#![allow(clippy::needless_range_loop)] // the tails index weights and inputs by one column

use super::portable::{dot_row, weight};
use crate::engine::kernels::Rows;
use std::arch::x86_64::*;

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
    // A loop, not `array::map`: a closure does not inherit the caller's target features.
    let mut h = [_mm256_setzero_ps(); 4];
    for (h, [lo, hi]) in h.iter_mut().zip(acc) {
        *h = _mm256_add_ps(*lo, *hi);
    }
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

/// `ys (N × n) += xs (N × k) · Wᵀ` (shapes checked by the caller).
///
/// # Safety
/// The CPU has AVX2 and FMA; `w` is n × k, `xs` N × k, `ys` N × n.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matvecs(ys: &mut [f32], w: Rows, xs: &[f32], k: usize, n: usize) {
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
                    let a = weight(&w, r0 + q, k, i);
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
