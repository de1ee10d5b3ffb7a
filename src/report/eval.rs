//! `charrnn eval`: a checkpoint's loss on any text, exactly as validation loss is measured.
//!
//! Owns the command and its out-of-vocabulary report. The loss itself is `Model::score` over
//! `engine::evaluate`, the one definition.

use crate::data;
use crate::error::{Error, Result};
use crate::sample::{Model, Score};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint written by `charrnn train`.
    pub checkpoint: PathBuf,
    /// Texts to measure, each on its own.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Replace invalid bytes with U+FFFD instead of stopping with an error.
    #[arg(long)]
    pub lossy: bool,
    /// The encoding of texts without a byte-order mark, e.g. windows-1252 [default: UTF-8].
    #[arg(long, value_name = "NAME")]
    pub encoding: Option<String>,
    /// Score with the weights converted to a precision, as `sample --precision` uses them;
    /// the worker threads.
    #[command(flatten)]
    pub compute: crate::sample::weights::Compute,
}

/// Loss of the checkpoint on each file, as validation loss is defined (`Model::score`).
/// Characters outside the vocabulary map to its unknown symbol when it has one; otherwise they
/// are left out of the stream, and either way they are counted and reported.
pub fn eval(a: &EvalArgs) -> Result<()> {
    let threads = a.compute.threads.count()?;
    let decoding = data::Decoding::new(a.lossy, a.encoding.as_deref())?;
    let model = Model::load(&a.checkpoint)?
        .with_precision(a.compute.precision)
        .with_threads(threads);
    for f in &a.files {
        let text = data::read_text(f, &decoding)?;
        let score = model
            .score(&text, threads)
            .map_err(|e| Error::input(format!("{} has {e}", f.display())))?;
        println!(
            "{}: {} characters, {:.4} nats/char, {:.4} bits/char, perplexity {:.3}{}",
            f.display(),
            score.chars,
            score.nats_per_char,
            score.bits_per_char(),
            score.perplexity(),
            out_of_vocab_note(&score)
        );
    }
    Ok(())
}

/// "; N of M characters (P%) outside the vocabulary, …: scored K (Q%); D distinct, most
/// frequent first: …", or nothing. The share scored says how much of the text the loss is
/// about: on a text mostly outside the vocabulary it is a loss on a few characters.
fn out_of_vocab_note(score: &Score) -> String {
    let oov = &score.out_of_vocab;
    let n: usize = oov.values().sum();
    if n == 0 {
        return String::new();
    }
    // The characters of the text: the scored stream holds the unknown ones as the unknown
    // symbol, or leaves them out.
    let total = if score.unknown_scored {
        score.chars
    } else {
        score.chars + n
    };
    let percent = |k: usize| 100.0 * k as f64 / total as f64;
    let mut by_count: Vec<(&char, &usize)> = oov.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = by_count
        .iter()
        .take(10)
        .map(|(c, n)| format!("{c:?}×{n}"))
        .collect();
    let known = total - n;
    let fate = if score.unknown_scored {
        format!(
            "scored as the unknown symbol: the loss is on {known} known characters ({:.1}%) and {n} unknown ones",
            percent(known)
        )
    } else {
        format!(
            "left out: the loss is on the other {known} ({:.1}%)",
            percent(known)
        )
    };
    format!(
        "; {n} of {total} characters ({:.1}%) are outside the vocabulary and {fate}; {} distinct, most frequent first: {}{}",
        percent(n),
        oov.len(),
        shown.join(" "),
        if oov.len() > 10 { " …" } else { "" }
    )
}
