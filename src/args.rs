//! What the values of the flags that several commands share mean, as the engine takes them:
//! `--threads` becomes a thread count. The engine itself receives numbers, never flags.
//!
//! Owns the interpretation of those values. Does not own the flags' declarations (each
//! command's arguments beside its code, see `cli`) or what the engine does with them.

use crate::error::Result;

/// The worker-thread count from a `--threads` flag: all cores when not given.
///
/// # Errors
/// `--threads 0`.
pub fn threads_from_flag(requested: Option<usize>) -> Result<usize> {
    match requested {
        Some(0) => crate::bail!("--threads must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}
