//! The portable room: plain Rust that every target runs (aarch64, any x86-64, others), and the
//! reference the vector rooms must equal: the sampler's matrix-vector kernels in their fixed
//! order (see `kernels`), and bf16 products without bf16 arithmetic, as the f32 GEMM of the
//! rounded operands (`linalg::matmul`, the `gemm` crate, which has NEON and x86 kernels of its
//! own).
//!
//! Owns these kernels. Does not own their contracts or dispatch (`kernels`, `bf16`), nor the
//! choice of path (`isa`).

#![allow(clippy::needless_range_loop)] // the tails index weights and inputs by one column

use crate::engine::bf16::{ARef, PackedB, Start};
use crate::engine::kernels::{bf16_to_f32, Rows};
use crate::engine::linalg::{matmul, MatRef, Threads};

/// The fixed reduction of 16 lanes: folded to 8, then a tree (as `linalg::fold`).
#[inline(always)]
pub(crate) fn fold(acc: &[f32; 16]) -> f32 {
    let mut h = [0.0f32; 8];
    for j in 0..8 {
        h[j] = acc[j] + acc[j + 8];
    }
    ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7]))
}

/// Weight `i` of row `r` as f32.
#[inline(always)]
pub(crate) fn weight(w: &Rows, r: usize, k: usize, i: usize) -> f32 {
    match w {
        Rows::F32(v) => v[r * k + i],
        Rows::Bf16(v) => bf16_to_f32(v[r * k + i]),
        Rows::I8(v, _) => v[r * k + i] as f32,
    }
}

/// One dot product in the fixed order: f32 multiplies then adds; bf16 and int8 fuse.
#[inline(always)]
pub(crate) fn dot_row(w: &Rows, r: usize, k: usize, x: &[f32]) -> f32 {
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

/// `ys (N × n) += xs (N × k) · Wᵀ` for W (n × k) (shapes checked by the caller), each dot
/// product in the fixed order of `kernels`.
pub fn matvecs(ys: &mut [f32], w: Rows, xs: &[f32], k: usize, n: usize) {
    for r in 0..n {
        for (s, x) in xs.chunks_exact(k).enumerate() {
            ys[s * n + r] += dot_row(&w, r, k, x);
        }
    }
}

/// `bf16::gemm_on` without bf16 arithmetic: the rounded operands unpacked to f32 and the f32
/// GEMM (exact products, f32 sums: the same maths to f32 round-off).
pub fn bf16_products(c: &mut [f32], a: ARef, b: &PackedB, start: Start, threads: Threads) {
    let (au, bu) = (a.unpack(), b.unpack());
    let (m, k, n) = (a.rows(), a.depth(), b.cols());
    let (av, bv) = (MatRef::new(&au, m, k), MatRef::new(&bu, k, n));
    if let Start::Bias(bias) = start {
        for row in c[..m * n].chunks_exact_mut(n) {
            row.copy_from_slice(bias);
        }
    }
    matmul(c, av, bv, !matches!(start, Start::Zero), threads);
}
