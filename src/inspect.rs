//! `charrnn eval` and `charrnn info`: what a checkpoint knows and how good it is.
//!
//! Owns those two commands. The loss itself is `train::evaluate`, the one definition.

use crate::checkpoint;
use crate::cli::{EvalArgs, InfoArgs};
use crate::data;
use crate::error::Result;
use crate::linalg::Threads;
use crate::model::Layout;
use std::collections::BTreeMap;

/// Loss of the checkpoint on each file, as validation loss is defined. Characters outside the
/// vocabulary map to its unknown symbol when it has one; otherwise they are left out of the
/// stream, and either way they are counted and reported.
pub fn eval(a: &EvalArgs) -> Result<()> {
    let threads = crate::train::setup_threads(a.threads)?;
    let ck = checkpoint::load_model(&a.checkpoint)?;
    let layout = Layout::new(ck.model);
    let ascii = ck.train.as_ref().is_some_and(|t| t.config.ascii);
    for f in &a.files {
        let text = data::read_text(f, a.lossy)?;
        let text = if ascii { data::to_ascii(&text) } else { text };
        let mut ids = Vec::with_capacity(text.len());
        let mut oov: BTreeMap<char, usize> = BTreeMap::new();
        for c in text.chars() {
            match (ck.vocab.id(c), ck.vocab.unk) {
                (Some(i), _) => ids.push(i),
                (None, unk) => {
                    *oov.entry(c).or_insert(0) += 1;
                    if let Some(u) = unk {
                        ids.push(u);
                    }
                }
            }
        }
        if ids.len() < 2 {
            crate::bail!(
                "{} has {} usable character(s); it needs at least 2",
                f.display(),
                ids.len()
            );
        }
        let loss = crate::train::evaluate(&layout, &ck.params, &ids, Threads(threads));
        let n_oov: usize = oov.values().sum();
        let oov_note = if n_oov == 0 {
            String::new()
        } else {
            let shown: Vec<String> = oov
                .iter()
                .take(10)
                .map(|(c, n)| format!("{c:?}×{n}"))
                .collect();
            let fate = if ck.vocab.unk.is_some() {
                "scored as the unknown symbol"
            } else {
                "left out of the score"
            };
            format!(
                "; {n_oov} character(s) outside the vocabulary ({} distinct: {}{}), {fate}",
                oov.len(),
                shown.join(" "),
                if oov.len() > 10 { " …" } else { "" }
            )
        };
        println!(
            "{}: {} characters, {:.4} nats/char, {:.4} bits/char, perplexity {:.3}{oov_note}",
            f.display(),
            ids.len(),
            loss,
            loss / std::f64::consts::LN_2,
            loss.exp()
        );
    }
    Ok(())
}

fn printable(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        ' ' => "␠".into(),
        c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
        c => c.to_string(),
    }
}

pub fn info(a: &InfoArgs) -> Result<()> {
    let ck = checkpoint::load_model(&a.checkpoint)?;
    let layout = Layout::new(ck.model);
    let m = ck.model;
    println!(
        "checkpoint: {} ({} bytes, format {} version {})",
        a.checkpoint.display(),
        ck.file_bytes,
        checkpoint::FORMAT,
        checkpoint::FORMAT_VERSION
    );
    println!(
        "model: {}, {} layer(s) × {} hidden, vocabulary {}, {} parameters",
        m.cell.label(),
        m.layers,
        m.hidden,
        m.vocab,
        layout.total
    );
    let vocab: String = ck
        .vocab
        .chars
        .iter()
        .map(|&c| printable(c))
        .collect::<Vec<_>>()
        .join(" ");
    println!("vocabulary: {vocab}");
    if let Some(u) = ck.vocab.unk {
        println!("unknown symbol: id {u} (U+FFFD): rarer characters of the corpus map to it");
    }
    match &ck.train {
        Some(tr) => {
            let (c, s) = (&tr.config, &tr.state);
            let bpc = |v: f64| {
                format!(
                    "{v:.4} nats/char ({:.4} bits/char)",
                    v / std::f64::consts::LN_2
                )
            };
            println!(
                "training: step {} (epoch {:.2}, {} steps per epoch), {:.1} minutes of training",
                s.step,
                s.step as f64 / s.steps_per_epoch.max(1) as f64,
                s.steps_per_epoch,
                s.train_seconds / 60.0
            );
            println!(
                "validation loss: best {}, last {}",
                s.best_val.map_or("-".into(), bpc),
                s.last_val.map_or("-".into(), bpc)
            );
            println!(
                "settings: batch {}, seq {}, lr {}, clip {}, amsgrad {}, seed {}, val-frac {}, ascii {}, max-vocab {}, min-count {}",
                c.batch,
                c.seq,
                c.lr,
                c.clip,
                c.amsgrad,
                c.seed,
                c.val_frac,
                c.ascii,
                c.max_vocab.map_or("none".into(), |v| v.to_string()),
                c.min_count
            );
            println!(
                "corpus: {}, {} characters, fingerprint {}",
                s.corpus.file, s.corpus.chars, s.corpus.fingerprint
            );
        }
        None => println!("training: no training state (weights only)"),
    }
    Ok(())
}
