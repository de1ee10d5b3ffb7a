//! Memory a command may take, and the check every command makes before it allocates what its
//! flags (or a checkpoint) size: the bytes it will need, by part, against the bytes the machine
//! has available, so that `--hidden 100000` is one line and exit 2, never `memory allocation
//! of 480136400260 bytes failed` and an abort (or, on Linux, a process the kernel kills once it
//! touches its pages).
//!
//! Owns reading the machine's available memory (the `sysinfo` crate: Linux, macOS, Windows, …)
//! and the message. Does not own what a command needs (each command adds up its own parts:
//! `engine::Workspace::bytes`, `sample::Sampler::bytes`, …).

use crate::error::{Error, Result};

/// The bytes this process may still allocate: the memory the operating system says is
/// available (free plus what it can reclaim, such as the page cache), or, in a container with a
/// lower memory limit, that limit less what the container uses; None where neither is known.
pub fn available() -> Option<u64> {
    let mut s = sysinfo::System::new();
    s.refresh_memory();
    let machine = s.available_memory();
    // A cgroup's own count includes its page cache, which the kernel reclaims before it kills
    // anyone: its limit less the resident memory is what it leaves us.
    let container = s
        .cgroup_limits()
        .map(|c| c.total_memory.saturating_sub(c.rss))
        .filter(|&b| b > 0);
    match (machine, container) {
        (0, None) => None,
        (0, Some(c)) => Some(c),
        (m, c) => Some(c.map_or(m, |c| c.min(m))),
    }
}

/// What a command will allocate: named parts, in bytes (sums saturate, so absurd sizes stay
/// absurd instead of wrapping).
#[derive(Clone, Debug, Default)]
pub struct Need {
    parts: Vec<(String, u64)>,
}

impl Need {
    /// Adds `bytes` for `what` (e.g. "the weights, gradients and Adam moments").
    pub fn add(&mut self, what: impl Into<String>, bytes: u64) -> &mut Need {
        self.parts.push((what.into(), bytes));
        self
    }

    /// All the parts, in bytes.
    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |sum, (_, b)| sum.saturating_add(*b))
    }

    /// The parts, largest first, as "4.2 GB for the weights, 1.1 GB for …" (the three largest).
    fn largest(&self) -> String {
        let mut parts: Vec<&(String, u64)> = self.parts.iter().filter(|p| p.1 > 0).collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.1));
        let shown: Vec<String> = parts
            .iter()
            .take(3)
            .map(|(what, b)| format!("{} for {what}", bytes(*b)))
            .collect();
        shown.join(", ")
    }

    /// Refuses when the parts add up to more than `available` bytes: one line, "`what` needs
    /// N bytes of memory (the largest parts), and this machine has M available; `advice`".
    /// With `available` unknown (None) nothing is refused.
    ///
    /// # Errors
    /// The need is larger than what is available.
    pub fn check(&self, what: &str, available: Option<u64>, advice: &str) -> Result<()> {
        let Some(have) = available else {
            return Ok(());
        };
        let need = self.total();
        if need <= have {
            return Ok(());
        }
        Err(Error::input(format!(
            "{what} needs {} of memory ({}), and this machine has {} available; {advice}",
            bytes(need),
            self.largest(),
            bytes(have)
        )))
    }
}

/// `n` bytes for people: "512 bytes", "3.2 MB", "480.1 GB", "2.8 EB" (powers of 1000).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut x = n as f64 / 1000.0;
    let mut unit = 0;
    while x >= 1000.0 && unit + 1 < UNITS.len() {
        x /= 1000.0;
        unit += 1;
    }
    format!("{x:.1} {}", UNITS[unit])
}

/// `a · b · …` in bytes of `elem` each, saturating: the size of a buffer whose shape comes from
/// flags.
pub fn buffer(dims: &[usize], elem: usize) -> u64 {
    dims.iter()
        .fold(elem as u64, |n, &d| n.saturating_mul(d as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_need_past_what_is_available_is_one_line_with_both_counts() {
        let mut need = Need::default();
        need.add("the weights", 480_136_400_260)
            .add("the workspace", 2_000_000)
            .add("nothing", 0);
        let e = need
            .check(
                "--hidden 100000",
                Some(21_000_000_000),
                "use a smaller --hidden",
            )
            .unwrap_err();
        assert_eq!(
            e.msg,
            "--hidden 100000 needs 480.1 GB of memory (480.1 GB for the weights, 2.0 MB for the workspace), and this machine has 21.0 GB available; use a smaller --hidden"
        );
        assert!(need.check("x", Some(480_138_400_260), "").is_ok());
        assert!(need.check("x", None, "").is_ok());
        // Absurd sizes saturate instead of wrapping to something small.
        let mut huge = Need::default();
        huge.add("a", buffer(&[usize::MAX, 4], 4))
            .add("b", u64::MAX);
        assert_eq!(huge.total(), u64::MAX);
        assert!(huge.check("x", Some(1 << 40), "").is_err());
        assert_eq!(bytes(999), "999 bytes");
        assert_eq!(bytes(1500), "1.5 kB");
    }

    #[test]
    fn the_machine_has_some_memory() {
        // Linux, macOS and Windows report it; a machine with less than a megabyte runs nothing.
        if let Some(b) = available() {
            assert!(b > 1 << 20, "{b}");
        }
    }
}
