//! The float type the engine is generic over: `f32` for training and sampling, `f64` for the
//! gradient checks (an f32 finite-difference check is dominated by round-off).
//!
//! Owns the scalar maths the engine needs (exp, sigmoid, tanh). For `f32` these are our own
//! branch-free implementations: faster than libm, they auto-vectorise, and they give the same bits
//! on every machine, so a sample with a given seed is identical everywhere. Does not own any
//! vector or matrix code (see `linalg`).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

pub trait Float:
    Copy
    + Send
    + Sync
    + Default
    + Debug
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// The nearest f32 (exact for f32).
    fn to_f32(self) -> f32;
    /// The slice as f32 when `Self` is f32 (the bf16 products' output type), else None.
    fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
    /// The slice as f32 when `Self` is f32, else None.
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn sigmoid(self) -> Self;
    fn tanh(self) -> Self;
    /// `ys (N × n) += xs (N × k) · Wᵀ` in the fixed order of `linalg::matvecs_acc`; f32 runs
    /// the vectorised kernels of `kernels`, which give the same bits.
    fn matvecs(ys: &mut [Self], w: &[Self], xs: &[Self], k: usize) {
        super::linalg::matvecs_acc(ys, w, xs, k)
    }
    fn max(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + f64::exp(-self))
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn matvecs(ys: &mut [f32], w: &[f32], xs: &[f32], k: usize) {
        super::kernels::matvecs(ys, super::kernels::Rows::F32(w), xs, k)
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn as_f32_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
    fn as_f32(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + exp_f32(-self))
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        tanh_f32(self)
    }
}

/// exp(x) for f32: range reduction x = n·ln2 + r (Cody–Waite, |r| ≤ ln2/2), a degree-6
/// polynomial for e^r, and 2^n built in the exponent bits. Relative error ≤ 2e-7 (tested);
/// inputs are clamped to [-87, 88], so it never returns inf or a denormal.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // exactly representable, 10 bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    // round to nearest without libm: add and subtract 1.5·2^23.
    const SHIFT: f32 = 12_582_912.0;
    let shifted = x * LOG2E + SHIFT;
    let n = shifted - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    // e^r on |r| ≤ 0.35: Taylor coefficients to r^7 (truncation < 1e-8 relative).
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // n as an integer, read from the shifted sum's low mantissa bits (1.5·2^23 has bits
    // 0x4B40_0000): the same value as `n as i32` for the clamped range, without a float-to-int
    // conversion, whose saturating semantics keep the loop from vectorising.
    let ni = shifted.to_bits().wrapping_sub(0x4B40_0000) as i32;
    let bits = (ni.wrapping_add(127) as u32) << 23;
    p * f32::from_bits(bits)
}

/// tanh(x) for f32 as 1 − 2/(e^{2x}+1); absolute error ≤ 2e-7 (tested). Near zero the odd
/// Taylor series keeps the relative error small too.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let e = exp_f32(2.0 * x);
    let t = 1.0 - 2.0 / (e + 1.0);
    if x.abs() < 0.01 {
        let x2 = x * x;
        x * (1.0 - x2 * (1.0 / 3.0 - x2 * (2.0 / 15.0)))
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_accurate_over_its_range() {
        let mut worst: f64 = 0.0;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(-1000.0), exp_f32(-87.0));
        assert!(exp_f32(1000.0).is_finite());
    }

    #[test]
    fn tanh_and_sigmoid_f32_are_accurate() {
        let (mut wt, mut ws) = (0.0f64, 0.0f64);
        let mut x = -20.0f32;
        while x < 20.0 {
            let t = tanh_f32(x) as f64 - (x as f64).tanh();
            let s = Float::sigmoid(x) as f64 - 1.0 / (1.0 + (-(x as f64)).exp());
            wt = wt.max(t.abs());
            ws = ws.max(s.abs());
            x += 0.00731;
        }
        assert!(wt < 2e-7, "tanh worst abs error {wt}");
        assert!(ws < 2e-7, "sigmoid worst abs error {ws}");
        // relative accuracy near zero, where gates sit at init
        for &x in &[1e-3f32, -3e-5, 0.009, 0.011] {
            let rel = (tanh_f32(x) as f64 - (x as f64).tanh()).abs() / (x as f64).tanh().abs();
            assert!(rel < 1e-6, "tanh({x}) relative error {rel}");
        }
    }
}
