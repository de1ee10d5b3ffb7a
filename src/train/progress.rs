//! What a training run shows while it runs: a redrawn progress bar on a terminal (the
//! `indicatif` crate), plain greppable lines every 10 s otherwise; the status line's parts.
//!
//! Owns the display. Does not decide what happened (see `run`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds as h:mm:ss.
pub fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Resident memory of this process in MB (Linux; 0 elsewhere).
pub fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .map_or(0.0, |pages| pages * 4096.0 / 1e6)
}

/// Progress: a redrawn bar on a terminal, plain greppable lines otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(1000);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:30.cyan/blue} {percent:>3}% {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Progress {
            bar,
            last_line: Instant::now(),
        }
    }

    /// A line above the bar (or on stderr).
    pub fn line(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// `fraction` of the run done; `status` is the one-line summary.
    pub fn update(&mut self, fraction: f64, status: &str) {
        match &self.bar {
            Some(b) => {
                b.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
                b.set_message(status.to_string());
            }
            None => {
                if self.last_line.elapsed() >= Duration::from_secs(10) {
                    self.last_line = Instant::now();
                    eprintln!("{status}");
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
