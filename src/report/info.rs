//! `charrnn info`: what a checkpoint holds (model, vocabulary, training state, corpus).
//!
//! Owns the command's output. Does not read the file itself (see `checkpoint`).

use crate::checkpoint;
use crate::error::Result;
use crate::model::Layout;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct InfoArgs {
    /// A checkpoint written by `charrnn train`.
    pub checkpoint: PathBuf,
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

/// "1.4621 nats/char (2.1094 bits/char)".
fn nats(v: f64) -> String {
    format!(
        "{v:.4} nats/char ({:.4} bits/char)",
        v / std::f64::consts::LN_2
    )
}

/// The line about the base model a fine-tuning run started from.
fn print_base(b: &checkpoint::InitFrom) {
    println!(
        "fine-tuned from: {} ({}{}{}{}; sha256 {}): {} of the text's characters kept the base's rows, {} new, {} of the base's not in the text",
        b.file,
        b.model,
        b.step.map_or(String::new(), |s| format!(" at step {s}")),
        b.best_val
            .map_or(String::new(), |v| format!(", best validation loss {}", nats(v))),
        b.corpus.as_ref().map_or(String::new(), |c| format!(" on {c}")),
        b.sha256,
        b.shared,
        b.new,
        b.base_only
    );
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
    if ck.weights_only {
        println!(
            "stored: the weights alone, in {} (exported: no optimiser moments or carried state, so it cannot be resumed; a training run can start from it with init-from)",
            ck.stored.name()
        );
    }
    if let Some(u) = ck.vocab.unk {
        println!("unknown symbol: id {u} (U+FFFD): rarer characters of the corpus map to it");
    }
    match &ck.train {
        Some(tr) => {
            let (c, s) = (&tr.config, &tr.state);
            println!(
                "training: step {} (epoch {:.2}, {} steps per epoch), {:.1} minutes of training",
                s.step,
                s.step as f64 / s.steps_per_epoch.max(1) as f64,
                s.steps_per_epoch,
                s.train_seconds / 60.0
            );
            println!(
                "validation loss: best {}, last {}",
                s.best_val.map_or("-".into(), nats),
                s.last_val.map_or("-".into(), nats)
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
                "regularisation and schedule: dropout {}, weight decay {}, lr schedule {}{}, warmup {} steps",
                c.dropout,
                c.weight_decay,
                format!("{:?}", c.lr_schedule).to_lowercase(),
                if c.lr_schedule == crate::optim::Schedule::Step {
                    format!(" (×{} per epoch)", c.lr_decay)
                } else {
                    String::new()
                },
                c.warmup
            );
            if let Some(b) = &c.init_from {
                print_base(b);
            }
            if let Some(p) = &s.plan {
                // An export cannot be resumed: its budget is history, not a way to continue.
                let how = if ck.weights_only {
                    "the run's; an export is not resumed"
                } else {
                    "charrnn train --resume without a budget flag continues to it"
                };
                println!("budget: {} ({how})", p.describe());
            }
            println!(
                "corpus: {}, {} characters, fingerprint {}",
                s.corpus.file, s.corpus.chars, s.corpus.fingerprint
            );
        }
        None => println!("training: no training state (weights only)"),
    }
    Ok(())
}
