//! The AVX-512 room: the sampler's matrix-vector kernels (`kernels::matvecs`) with 16 lanes,
//! in exactly the portable kernels' order (see `kernels`), so that they give the same bits;
//! and, where the CPU has AVX512_BF16, the bf16 products (`bf16_kernel`) with `vdpbf16ps`.
//!
//! Owns these kernels. Does not own their contracts, the packed layout or the dispatch
//! (`kernels`, `bf16`), nor the choice of path (`isa`).

#![allow(clippy::needless_range_loop)] // the tails index weights and inputs by one column

use super::portable::{dot_row, weight};
use crate::engine::bf16::{a_index, ARef, PackedB, Start, BLOCK};
use crate::engine::kernels::Rows;
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
        let a = weight(w, r, k, i);
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
        // Plain loops, not `array::map`: a closure does not inherit this function's target
        // features, so its intrinsics became calls (sampling at 8 streams ran 4× slower).
        let mut wv = [_mm512_setzero_ps(); 4];
        let mut xv = [_mm512_setzero_ps(); 4];
        for q in 0..4 {
            wv[q] = load16(w, r0 + q, k, c);
            xv[q] = _mm512_loadu_ps(xs.as_ptr().add((s0 + q) * k + c));
        }
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
        let mut row_scale = [0.0f32; 16];
        for (q, x) in row_scale.iter_mut().enumerate() {
            *x = sc[r0 + q / 4];
        }
        d = _mm512_mul_ps(d, _mm512_loadu_ps(row_scale.as_ptr()));
    }
    let mut out = [0.0f32; 16];
    _mm512_storeu_ps(out.as_mut_ptr(), d);
    for (q, v) in out.iter().enumerate() {
        ys[(s0 + q % 4) * n + r0 + q / 4] += v;
    }
}

/// `ys (N × n) += xs (N × k) · Wᵀ` (shapes checked by the caller).
///
/// # Safety
/// The CPU has AVX-512 F, BW, VL and FMA; `w` is n × k, `xs` N × k, `ys` N × n.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,avx2")]
pub unsafe fn matvecs(ys: &mut [f32], w: Rows, xs: &[f32], k: usize, n: usize) {
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
                        let a = weight(&w, r0 + q, k, i);
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

/// Rows of the bf16 kernel's register tile (within one 32-row block of the packed A).
const MR: usize = 8;
/// Depth of one pass over C: a panel of B this deep (32 columns, 16 KB) stays in L1 while the
/// row tiles of a group pass over it.
const KC: usize = 256;
/// Rows of a group: its A rows at depth KC (64 KB) stay in L2 while the panels of B pass.
const MC: usize = 128;

/// C [+]= A · B with `vdpbf16ps` (AVX512_BF16: per f32 lane, the two products of a pair of
/// bf16 values, exact, added to the lane) on the 32-row blocks `blocks` of A, with `c` holding
/// exactly those rows (n columns each): the same contract and packed operands as the AMX
/// kernel (`isa::amx::kernel`). Each 8 × 32 tile of C is 16 registers; for every pair of k
/// it reads one 128-byte row of pairs of B's panel and broadcasts each row's pair of A.
/// Every element of C sums its k in the same order whatever the blocks, so the bits do not
/// depend on the threads. The instruction treats denormal inputs and outputs as zero.
///
/// # Safety
/// The CPU has AVX-512 F, BW, VL and AVX512_BF16, and `a`, `b` are packed with equal k.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub unsafe fn bf16_kernel(
    c: &mut [f32],
    a: ARef,
    b: &PackedB,
    blocks: std::ops::Range<usize>,
    start: Start,
) {
    let (m, n, kp) = (a.rows(), b.cols(), a.padded_depth());
    debug_assert_eq!(kp, b.padded_depth());
    let (first, end) = (blocks.start * BLOCK, (blocks.end * BLOCK).min(m));
    assert!(c.len() >= (end - first) * n, "output too small");
    let panel = kp / 2 * BLOCK; // words of one 32-column panel of B
    for k0 in (0..kp).step_by(KC) {
        let chunks = (KC.min(kp - k0)) / BLOCK;
        let from = if k0 == 0 { start } else { Start::C };
        for g0 in (first..end).step_by(MC) {
            let g1 = (g0 + MC).min(end);
            for j0 in (0..n).step_by(BLOCK) {
                let bp = b.data().as_ptr().add((j0 / BLOCK) * panel + k0 / 2 * BLOCK);
                for r0 in (g0..g1).step_by(MR) {
                    let tile = Tile {
                        c: c.as_mut_ptr().add((r0 - first) * n + j0),
                        ldc: n,
                        rows: MR.min(g1 - r0),
                        cols: BLOCK.min(n - j0),
                    };
                    // Rows r0..r0 + 8 lie in one 32-row block of A (r0 is a multiple of 8).
                    let ap = a.data().as_ptr().add(a_index(kp, r0, k0));
                    tile.multiply(ap, bp, chunks, from, j0);
                }
            }
        }
    }
}

/// An 8 × 32 tile of C: `rows` × `cols` of it are real, row stride `ldc` floats.
struct Tile {
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
}

impl Tile {
    /// The tile from `from` (bias `j0..` for `Start::Bias`), plus `chunks` × 32 of k: A's rows
    /// at `ap` (32 values apart, chunks 1024 apart), B's panel at `bp` (pairs of rows 32 words
    /// apart); stored back.
    ///
    /// # Safety
    /// As `bf16_kernel`; the tile's real rows and columns are inside c, and A and B hold
    /// `chunks` chunks past `ap` and `bp`.
    #[inline(always)]
    unsafe fn multiply(
        &self,
        ap: *const u16,
        bp: *const u32,
        chunks: usize,
        from: Start,
        j0: usize,
    ) {
        let lo = mask(self.cols.min(16));
        let hi = mask(self.cols.saturating_sub(16));
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        match from {
            Start::Zero => {}
            Start::C => {
                for (q, row) in acc.iter_mut().enumerate().take(self.rows) {
                    let p = self.c.add(q * self.ldc);
                    *row = [
                        _mm512_maskz_loadu_ps(lo, p),
                        _mm512_maskz_loadu_ps(hi, p.add(16)),
                    ];
                }
            }
            Start::Bias(bias) => {
                let p = bias.as_ptr().add(j0);
                let row = [
                    _mm512_maskz_loadu_ps(lo, p),
                    _mm512_maskz_loadu_ps(hi, p.add(16)),
                ];
                acc = [row; MR];
            }
        }
        for ch in 0..chunks {
            let (a, b) = (ap.add(ch * BLOCK * BLOCK), bp.add(ch * BLOCK / 2 * BLOCK));
            for p in 0..BLOCK / 2 {
                let b0 = bh(_mm512_loadu_si512(b.add(p * BLOCK) as *const _));
                let b1 = bh(_mm512_loadu_si512(b.add(p * BLOCK + 16) as *const _));
                for (q, row) in acc.iter_mut().enumerate() {
                    let pair = (a.add(q * BLOCK + 2 * p) as *const u32).read_unaligned();
                    let av = bh(_mm512_set1_epi32(pair as i32));
                    row[0] = _mm512_dpbf16_ps(row[0], av, b0);
                    row[1] = _mm512_dpbf16_ps(row[1], av, b1);
                }
            }
        }
        for (q, row) in acc.iter().enumerate().take(self.rows) {
            let p = self.c.add(q * self.ldc);
            _mm512_mask_storeu_ps(p, lo, row[0]);
            _mm512_mask_storeu_ps(p.add(16), hi, row[1]);
        }
    }
}

/// The lowest `n` (≤ 16) lanes.
#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// 32 bf16 values in a register, from their bits.
#[inline(always)]
unsafe fn bh(v: __m512i) -> __m512bh {
    std::mem::transmute(v)
}
