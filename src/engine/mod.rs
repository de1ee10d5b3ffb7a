//! The batched recurrent engine: forward, loss and backward of an L-layer LSTM, GRU or tanh RNN
//! (PyTorch's equations) with one-hot or embedded input and a linear head, over B streams and
//! T steps, written by hand on PyTorch's parameter layout (`model::Layout`: W_ih (G·H, I),
//! W_hh (G·H, H), b_ih and b_hh (G·H), gates in PyTorch's order). G is the cell's number of
//! gate blocks (LSTM 4, GRU 3, RNN 1). docs/engine.md gives what the tests prove and the
//! speed measured.
//!
//! Everything that is not recurrent runs as one GEMM over all T·B rows (layer l>0's input
//! projection, the head, every weight gradient, the gradient into the layer below). Only
//! h_{t-1}·W_hhᵀ and dgates_t·W_hh run per step. The gate maths is fused into one pass.
//! All buffers live in `Workspace`, allocated once for (B, T); the step allocates nothing.
//!
//! Owns the maths of one forward and backward and its kernels. Does not own the parameters (a
//! flat slice laid out by `model::Layout`), the optimiser (`optim`), or the data (`data`).
//!
//! - `workspace`: the buffers and the order of the passes (input, layers, head)
//! - `recurrent`: the time loop of one layer, split over a team of threads
//! - `cells`: the gate maths of each cell, forward beside backward
//! - `loss`: softmax cross-entropy, its gradient, exact validation loss
//! - `linalg`, `team`, `float`: GEMM and matvec, threads, scalars
//! - `bf16`: the bf16 products of `MatmulPrecision::Bf16` (packing, threads, dispatch)
//! - `kernels`: the sampler's matrix-vector kernels (f32, bf16, int8 weights)
//! - `isa`: which kernels run on this CPU, each instruction set's code in its own room
//!   (`portable`, `avx2`, `avx512`, `amx`)

pub mod bf16;
pub mod cells;
pub mod float;
pub mod isa;
pub mod kernels;
pub mod linalg;
pub mod loss;
pub mod recurrent;
pub mod team;
pub mod workspace;

pub use linalg::Threads;

/// The operands of a training step's matrix products. Either way the products accumulate in
/// f32, and the master weights, gradients, Adam moments, cell state and gate maths stay f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulPrecision {
    /// f32 operands (the reference).
    #[default]
    F32,
    /// Operands rounded to bf16 (8 significant bits) as they are packed, products exact:
    /// AMX tiles where the CPU has them, else the f32 GEMM on the rounded operands (correct,
    /// slower); `isa::Kernels::bf16` says which.
    Bf16,
}

impl MatmulPrecision {
    /// "f32" or "bf16".
    pub fn name(self) -> &'static str {
        match self {
            MatmulPrecision::F32 => "f32",
            MatmulPrecision::Bf16 => "bf16",
        }
    }
}
pub use loss::{evaluate, Evaluator};
pub use workspace::{State, Workspace};

/// The model's initial parameters in the engine's float type: PyTorch's default init (see
/// `model::init_params_with`), drawn from `rng`.
pub fn init_params<F: float::Float>(
    layout: &crate::model::Layout,
    rng: &mut crate::rng::Rng,
) -> Vec<F> {
    crate::model::init_params_with(layout, rng, F::from_f64)
}

#[cfg(test)]
mod tests;
