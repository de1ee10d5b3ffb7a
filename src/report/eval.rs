//! `charrnn eval`: a checkpoint's loss on any text, exactly as validation loss is measured.
//!
//! Owns the command and its out-of-vocabulary report. The loss itself is `engine::evaluate`,
//! the one definition.

use crate::checkpoint;
use crate::data;
use crate::engine::Threads;
use crate::error::Result;
use crate::model::Layout;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint written by `charrnn train`.
    pub checkpoint: PathBuf,
    /// Texts to measure, each on its own.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Replace invalid UTF-8 with U+FFFD instead of stopping with an error.
    #[arg(long)]
    pub lossy: bool,
    /// Worker threads [default: all cores].
    #[arg(long, allow_negative_numbers = true)]
    pub threads: Option<usize>,
}

/// Loss of the checkpoint on each file, as validation loss is defined. Characters outside the
/// vocabulary map to its unknown symbol when it has one; otherwise they are left out of the
/// stream, and either way they are counted and reported.
pub fn eval(a: &EvalArgs) -> Result<()> {
    let threads = crate::engine::threads_from_flag(a.threads)?;
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
        let loss = crate::engine::evaluate(&layout, &ck.params, &ids, Threads(threads));
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
