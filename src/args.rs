//! What the values of the flags that several commands share mean, as the engine takes them:
//! `--threads` becomes a thread count, and `--precision`'s names on the command line become
//! an `engine::MatmulPrecision`. The engine itself receives numbers and enums, never flags.
//!
//! Declares the flag every compute command shares once: `--threads` ([`Threads`], flattened
//! into `train`, `sample`, `eval`, `serve` and `bench`). The weights' `--precision` of the
//! commands that sample is declared once beside the sampler (`sample::Compute`).
//!
//! Owns the interpretation of those values. Does not own the other flags (each command's
//! arguments beside its code, see `cli`) or what the engine does with them.

use crate::engine::MatmulPrecision;
use crate::error::Result;
use clap::builder::PossibleValue;

/// `--threads N`: the worker threads of a command, as one clap group flattened into every
/// command that computes.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct Threads {
    /// Worker threads [default: all cores; more than the cores are not used].
    #[arg(
        long = "threads",
        value_name = "THREADS",
        allow_negative_numbers = true
    )]
    pub requested: Option<usize>,
}

impl Threads {
    /// The thread count: the flag's value, or all cores when not given. A value over the
    /// cores this process may use (`available_parallelism`: affinity and cgroup quota) is
    /// lowered to them, with a warning on stderr: the engine's threads meet at a spinning
    /// barrier many times a step, and threads beyond the cores only wait on each other
    /// (measured on 2 cores: 30 steps of a 1×128 LSTM took 3.5 s on 2 threads, 58 s on 8).
    /// Lowering it changes no result: a run's weights are the same bytes on 1, 2 or 8 threads.
    ///
    /// # Errors
    /// `--threads 0`.
    pub fn count(self) -> Result<usize> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self.requested {
            Some(0) => crate::bail!("--threads must be at least 1"),
            Some(n) if n > cores => {
                eprintln!(
                    "charrnn: warning: --threads {n} is more than the {cores} core(s) available here, and threads beyond the cores only wait on each other; using {cores}"
                );
                Ok(cores)
            }
            Some(n) => Ok(n),
            None => Ok(cores),
        }
    }
}

/// `--precision f32|bf16` of `charrnn train`, with the help `--help` shows for each value.
impl clap::ValueEnum for MatmulPrecision {
    fn value_variants<'a>() -> &'a [Self] {
        &[MatmulPrecision::F32, MatmulPrecision::Bf16]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            MatmulPrecision::F32 => "f32 operands (the reference)",
            MatmulPrecision::Bf16 => {
                "Operands rounded to bf16 (8 significant bits) as they are packed, products \
                 exact: AMX tiles or AVX512-BF16 where the CPU has them, else the f32 GEMM \
                 on the rounded operands (correct, slower)"
            }
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}
