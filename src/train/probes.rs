//! The probe stored on this machine, so that runs of the same shape choose the same size.
//!
//! A probe of a few seconds is noisy across processes on a shared machine (measured: the bf16
//! H=384 step of War and Peace timed 24k to 31k chars/s in six runs of one sitting, each probe
//! ±2–8 % within itself), and a 10 % error moves the size by about one step of 16: three seeds
//! chose 256, 288 and 288. So the first probe of a shape is stored in the cache folder
//! (`probes.json`); a later run probes again and, when every size it timed is within
//! `TOLERANCE` of the stored speed, sizes with the stored probe, so it chooses the same size.
//! A machine that has really changed (another CPU, a 2× slower session, other threads) falls
//! outside it, and its probe replaces the stored one. The same idea as FFTW's "wisdom":
//! measurements of this machine kept for the next run.
//!
//! Owns the file, its key and the tolerance rule. Does not own the probe or the sizing rule
//! (see `sizing`). The file is written whole (`atomic::write`); an unreadable or damaged file
//! is treated as empty and replaced; a cache folder that cannot be written only costs the
//! reuse (the note says so).

use crate::engine::{MatmulPrecision, Threads};
use crate::model::ModelConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A fresh probe whose every point is within this fraction of the stored one's reuses it.
pub const TOLERANCE: f64 = 0.25;

/// One timed size: (hidden, training chars/s, spread of the timed steps as a fraction).
pub type Point = (usize, f64, f64);

/// The file's contents: probes by shape.
#[derive(Serialize, Deserialize, Default)]
struct Store {
    probes: BTreeMap<String, Stored>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Stored {
    /// Seconds since the Unix epoch when it was measured.
    measured_unix: u64,
    points: Vec<Point>,
}

/// What decides a step's speed apart from the hidden size: the cell, layers, vocabulary,
/// embedding, batch × seq, whether the steps draw dropout masks, threads and precision, and
/// the kernels (`engine::isa`): bf16's kernel always, the path when `CHARRNN_KERNELS` chose
/// one below the best. A probe stored by a build that did not say (its steps drew none, its
/// bf16 kernel unnamed) has another key, so it is not reused.
pub fn key(
    m: ModelConfig,
    (batch, seq, masks): (usize, usize, bool),
    (threads, precision): (Threads, MatmulPrecision),
) -> String {
    format!(
        "{} layers={} vocab={} embed={} batch={batch} seq={seq} {} threads={} {}",
        m.cell.name(),
        m.layers,
        m.vocab,
        m.embed,
        if masks { "masks" } else { "no-masks" },
        threads.0,
        precision.name()
    ) + &kernels_key(precision)
}

/// The kernels' part of `key`: "" for f32 on the best path (the key before kernels were
/// named), " AMX" or " AVX512-BF16" for bf16, and " kernels=avx2" on a forced path.
fn kernels_key(precision: MatmulPrecision) -> String {
    let k = crate::engine::isa::kernels();
    let mut s = String::new();
    if precision == MatmulPrecision::Bf16 {
        s += &format!(" {}", k.bf16.label());
    }
    if k.path != crate::engine::isa::Cpu::here().best {
        s += &format!(" kernels={}", k.path.name());
    }
    s
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// "3 h", "2 days": how long ago.
fn ago(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 2 * 86400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

/// Whether `fresh` times the same sizes as `stored`, each within `TOLERANCE` of its speed.
fn agrees(fresh: &[Point], stored: &[Point]) -> bool {
    fresh.len() == stored.len()
        && fresh
            .iter()
            .zip(stored)
            .all(|(f, s)| f.0 == s.0 && s.1 > 0.0 && (f.1 / s.1 - 1.0).abs() <= TOLERANCE)
}

/// The stored probe for `key` at `path`, if any (read only: an unreadable file is none).
pub fn lookup(path: &Path, key: &str) -> Option<Vec<Point>> {
    let store: Store = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    store.probes.get(key).map(|s| s.points.clone())
}

/// The points to size with for `key`, given this run's `fresh` probe and the store at `path`:
/// the stored probe when `fresh` agrees with it (see `TOLERANCE`) or is not `steady` (the
/// machine's speed moved while it ran, see `sizing::Speed::probe`), else `fresh`, which is then
/// stored (an unsteady one never is). Also returns a note for the sizing line saying which it
/// was.
pub fn settle(path: &Path, key: &str, fresh: Vec<Point>, steady: bool) -> (Vec<Point>, String) {
    let mut store: Store = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(s) = store.probes.get(key) {
        let why = if !steady {
            Some("today's was unsteady".to_string())
        } else if agrees(&fresh, &s.points) {
            Some(format!("today's is within {:.0} %", 100.0 * TOLERANCE))
        } else {
            None
        };
        if let Some(why) = why {
            let note = format!(
                "this machine's stored probe of {} ago ({why}; {})",
                ago(now_unix().saturating_sub(s.measured_unix)),
                path.display()
            );
            return (s.points.clone(), note);
        }
    }
    if !steady {
        return (fresh, "today's probe (unsteady, so not stored)".to_string());
    }
    let replaced = store.probes.contains_key(key);
    store.probes.insert(
        key.to_string(),
        Stored {
            measured_unix: now_unix(),
            points: fresh.clone(),
        },
    );
    let written = path
        .parent()
        .map_or(Ok(()), |d| {
            std::fs::create_dir_all(d)
                .map_err(|e| crate::error::Error::io(format!("cannot create {}", d.display()), e))
        })
        .and_then(|()| {
            crate::atomic::write(path, |w| {
                serde_json::to_writer_pretty(&mut *w, &store)?;
                w.write_all(b"\n")
            })
        });
    let note = match (written, replaced) {
        (Err(e), _) => format!("today's probe (not stored: {e})"),
        (Ok(()), false) => format!("today's probe, stored for later runs in {}", path.display()),
        (Ok(()), true) => format!(
            "today's probe, more than {:.0} % from the stored one, which it replaces in {}",
            100.0 * TOLERANCE,
            path.display()
        ),
    };
    (fresh, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(a: f64, b: f64) -> Vec<Point> {
        vec![(128, a, 0.05), (384, b, 0.02)]
    }

    #[test]
    fn a_probe_within_the_tolerance_reuses_the_stored_one_and_a_changed_machine_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/probes.json");
        let (p, note) = settle(&path, "k", pts(100e3, 25e3), true);
        assert_eq!(p, pts(100e3, 25e3));
        assert!(note.contains("stored for later runs"), "{note}");
        // 12 % and 20 % off: the stored probe, so the size does not move.
        let (p, note) = settle(&path, "k", pts(112e3, 20e3), true);
        assert_eq!(p, pts(100e3, 25e3), "{note}");
        assert!(note.contains("stored probe of"), "{note}");
        // Another shape has its own entry.
        let (p, _) = settle(&path, "other", pts(50e3, 10e3), true);
        assert_eq!(p, pts(50e3, 10e3));
        // Half the speed: a different machine; today's probe replaces the stored one.
        let (p, note) = settle(&path, "k", pts(50e3, 12e3), true);
        assert_eq!(p, pts(50e3, 12e3));
        assert!(note.contains("replaces"), "{note}");
        let (p, _) = settle(&path, "k", pts(55e3, 13e3), true);
        assert_eq!(p, pts(50e3, 12e3));
        let (p, _) = settle(&path, "other", pts(52e3, 11e3), true);
        assert_eq!(p, pts(50e3, 10e3), "the other shape's entry survived");
    }

    #[test]
    fn a_damaged_file_is_replaced_and_an_unwritable_folder_only_costs_the_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probes.json");
        std::fs::write(&path, b"{ not json").unwrap();
        let (p, note) = settle(&path, "k", pts(100e3, 25e3), true);
        assert_eq!(p, pts(100e3, 25e3));
        assert!(note.contains("stored for later runs"), "{note}");
        let (p, _) = settle(&path, "k", pts(101e3, 25e3), true);
        assert_eq!(p, pts(100e3, 25e3));
        // A file where the folder should be: nothing can be stored; the fresh probe is used.
        let blocked = dir.path().join("probes.json/x/probes.json");
        let (p, note) = settle(&blocked, "k", pts(90e3, 20e3), true);
        assert_eq!(p, pts(90e3, 20e3));
        assert!(note.contains("not stored"), "{note}");
    }

    #[test]
    fn an_unsteady_probe_is_never_stored_and_never_trusted_over_a_stored_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probes.json");
        // Nothing stored: the unsteady probe is used but not kept.
        let (p, note) = settle(&path, "k", pts(73e3, 17e3), false);
        assert_eq!(p, pts(73e3, 17e3));
        assert!(note.contains("not stored"), "{note}");
        assert!(!path.exists(), "an unsteady probe was written");
        let (p, _) = settle(&path, "k", pts(130e3, 29e3), true);
        assert_eq!(p, pts(130e3, 29e3));
        // Far outside the tolerance but unsteady: the stored probe stays and is used.
        let (p, note) = settle(&path, "k", pts(73e3, 17e3), false);
        assert_eq!(p, pts(130e3, 29e3), "{note}");
        assert!(note.contains("unsteady"), "{note}");
        let (p, _) = settle(&path, "k", pts(125e3, 28e3), true);
        assert_eq!(p, pts(130e3, 29e3), "the stored probe survived");
    }
}
