//! What a training run shows while it runs: a redrawn progress bar on a terminal (the
//! `indicatif` crate), plain greppable lines every 10 s otherwise, or whatever an `Observer`
//! does with them (the Python package's tqdm bar); the status line's parts.
//!
//! Owns the display. Does not decide what happened (see `run`).

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds as h:mm:ss.
pub fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Resident memory of this process in MB (Linux's /proc; 0, unknown, elsewhere: the status
/// line then leaves it out).
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

/// m:ss under an hour, else h:mm:ss.
pub fn short_hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s < 3600 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        hms(secs)
    }
}

/// 26.5k, 950, 1.2M.
fn si(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e4 => format!("{:.0}k", x / 1e3),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// One moment of a run, for the status line.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// Optimiser steps taken in the whole run (resumed steps count).
    pub step: u64,
    /// The step the run stops at, when its budget is in steps or epochs.
    pub target: Option<u64>,
    /// Passes over the training text (fractional).
    pub epoch: f64,
    /// Moving average of the training loss (nats/char).
    pub loss: f64,
    /// The last validation loss (nats/char).
    pub val: Option<f64>,
    /// Training speed in characters per second (a moving window of about 20 s).
    pub chars_per_s: f64,
    /// Training seconds of the whole run, and its time budget.
    pub train_seconds: f64,
    pub budget_seconds: Option<f64>,
    /// Seconds of training left (infinite when unknown).
    pub eta: f64,
    /// Resident memory of the process in MB.
    pub rss_mb: f64,
}

impl Status {
    /// The status line, at most about 80 columns: `with_step` names the step and epoch (plain
    /// lines), else the bar shows the fraction and the line starts with the step count.
    pub fn render(&self, with_step: bool) -> String {
        let target = self.target.map_or(String::new(), |t| format!("/{t}"));
        let head = if with_step {
            format!("step {}{target} ep {:.2}", self.step, self.epoch)
        } else {
            format!("{}{target}", self.step)
        };
        let val = self.val.map_or("-".into(), |v| format!("{v:.3}"));
        let time = match self.budget_seconds {
            Some(b) => format!("{}/{}", short_hms(self.train_seconds), short_hms(b)),
            None => short_hms(self.train_seconds),
        };
        let eta = if self.eta.is_finite() {
            format!(" eta {}", short_hms(self.eta))
        } else {
            String::new()
        };
        let rss = if self.rss_mb > 0.0 {
            format!(" {:.0}MB", self.rss_mb)
        } else {
            String::new()
        };
        format!(
            "{head} loss {:.3} val {val} {} ch/s {time}{eta}{rss}",
            self.loss,
            si(self.chars_per_s),
        )
    }
}

/// What a training run reports as it goes, for a caller that shows it itself (the Python
/// package drives a tqdm bar with it) instead of the terminal bar or stderr lines.
pub trait Observer: Send {
    /// A line of the run's log: what was read and chosen, each validation, a sample, the
    /// closing line (without a trailing newline).
    fn line(&mut self, text: &str);
    /// After every step: the run's status and the fraction of its budget spent (0 to 1).
    /// Returning false stops the run as Ctrl-C does: it saves, then `train` returns
    /// `Kind::Interrupted`.
    fn step(&mut self, status: &Status, fraction: f64) -> bool;
}

/// Progress: a redrawn bar on a terminal, plain greppable lines otherwise, or an observer.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
    /// In a `RefCell` because lines are written through `&self`.
    observer: Option<RefCell<Box<dyn Observer>>>,
    /// The observer asked the run to stop.
    stop: bool,
}

impl Progress {
    /// Everything through `observer`; nothing on stderr.
    pub fn observed(observer: Box<dyn Observer>) -> Progress {
        Progress {
            bar: None,
            last_line: Instant::now(),
            observer: Some(RefCell::new(observer)),
            stop: false,
        }
    }

    /// Whether the observer asked the run to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop
    }

    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(1000);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:12.cyan/blue} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Progress {
            bar,
            last_line: Instant::now(),
            observer: None,
            stop: false,
        }
    }

    /// A line above the bar (or on stderr, or to the observer).
    pub fn line(&self, msg: &str) {
        if let Some(o) = &self.observer {
            return o.borrow_mut().line(msg);
        }
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// `fraction` of the run done; `status` its summary.
    pub fn update(&mut self, fraction: f64, status: &Status) {
        if let Some(o) = &mut self.observer {
            self.stop |= !o.get_mut().step(status, fraction.clamp(0.0, 1.0));
            return;
        }
        match &self.bar {
            Some(b) => {
                b.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
                b.set_message(status.render(false));
            }
            None => {
                if self.last_line.elapsed() >= Duration::from_secs(10) {
                    self.last_line = Instant::now();
                    eprintln!("{}", status.render(true));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_fits_80_columns_and_counts_training_time() {
        let s = Status {
            step: 31_070,
            target: Some(40_100),
            epoch: 77.52,
            loss: 1.30381,
            val: Some(1.48266),
            chars_per_s: 26_451.0,
            train_seconds: 261.0,
            budget_seconds: Some(300.0),
            eta: 39.0,
            rss_mb: 134.2,
        };
        let plain = s.render(true);
        assert_eq!(
            plain,
            "step 31070/40100 ep 77.52 loss 1.304 val 1.483 26k ch/s 4:21/5:00 eta 0:39 134MB"
        );
        assert!(plain.chars().count() <= 82, "{plain}");
        // On a terminal, a 12-column bar and a space precede the message.
        assert!(
            13 + s.render(false).chars().count() <= 80,
            "{}",
            s.render(false)
        );
    }
}
