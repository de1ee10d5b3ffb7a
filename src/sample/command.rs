//! `charrnn sample`: load a checkpoint, prime, and stream characters to stdout; with
//! `--num-samples` several streams from one seed; the log-probability and novelty reports.
//!
//! Owns the command's flags and output. Does not own the stepping (`sampler`) or the picking
//! (`pick`).

use super::{pick::Pick, sampler::Sampler};
use crate::error::{Error, Result};
use crate::model::Layout;
use crate::rng::Rng;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct SampleArgs {
    /// A checkpoint written by `charrnn train` (e.g. runs/NAME/best.safetensors).
    pub checkpoint: PathBuf,
    /// Number of characters to generate (the prime is not counted).
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub length: usize,
    /// Softmax temperature: lower is more conservative; at or below 1e-6 it always takes the
    /// most likely character.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Text to run through the model first; it is printed, then continued.
    #[arg(long, allow_hyphen_values = true)]
    pub prime: Option<String>,
    /// Random seed; the same seed gives the same text [default: a new one each run, printed
    /// to stderr].
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Draw only from the K most likely characters.
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    pub top_k: Option<usize>,
    /// Draw only from the most likely characters whose probabilities add up to P (nucleus
    /// sampling).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub top_p: Option<f64>,
    /// Generate N different samples from the one seed, stepped together as a batch (stream 1 is
    /// written as it is generated, the others follow it).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub num_samples: usize,
    /// After sampling, print (on stderr) the sample's total log-probability under the model at
    /// temperature 1, and its bits per character.
    #[arg(long)]
    pub show_logprob: bool,
    /// After sampling, report (on stderr) the share of sampled n-grams that do not occur in
    /// this text, the training corpus: a check for memorisation.
    #[arg(long, value_name = "CORPUS")]
    pub check_novelty: Option<PathBuf>,
    /// The n of --check-novelty.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        allow_negative_numbers = true
    )]
    pub ngram: usize,
}

/// `charrnn sample`: prime, then stream `length` characters to stdout.
pub fn run(a: &SampleArgs) -> Result<()> {
    if !(a.temperature >= 0.0 && a.temperature.is_finite()) {
        crate::bail!("--temperature must be 0 or more, got {}", a.temperature);
    }
    if a.top_k == Some(0) {
        crate::bail!("--top-k must be at least 1");
    }
    if a.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        crate::bail!("--top-p must be in (0, 1], got {}", a.top_p.unwrap());
    }
    if a.num_samples == 0 {
        crate::bail!("--num-samples must be at least 1");
    }
    if a.ngram == 0 {
        crate::bail!("--ngram must be at least 1");
    }
    // Read the corpus first: a bad path should fail before any output.
    let novelty_corpus = match &a.check_novelty {
        Some(p) => Some(crate::data::read_text(p, true)?),
        None => None,
    };
    let ck = crate::checkpoint::load_model(&a.checkpoint)?;
    let layout = Layout::new(ck.model);
    let vocab = &ck.vocab;
    let prime_ids = match &a.prime {
        Some(p) if !p.is_empty() => vocab.encode(p, "--prime")?.0,
        _ => vec![vocab.id('\n').unwrap_or(0)],
    };
    let seed = a.seed.unwrap_or_else(|| {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        eprintln!("charrnn: --seed {s} reproduces this sample");
        s
    });
    let mut rng = Rng::new(seed);
    let n = a.num_samples;
    let mut s = Sampler::new(&layout, &ck.params, n);
    for &id in &prime_ids {
        s.feed(&vec![id; n]);
    }
    let stdout = std::io::stdout();
    let interactive = std::io::IsTerminal::is_terminal(&stdout);
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e| Error::io("cannot write to stdout", e);
    if let Some(p) = a.prime.as_deref() {
        out.write_all(p.as_bytes()).map_err(io)?;
    }
    let mut buf = [0u8; 4];
    let how = Pick {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
    };
    let mut logprob = vec![0.0f64; n];
    // Stream 0 is written as it is generated; with --num-samples, the others follow it.
    let mut others: Vec<String> = vec![String::new(); n];
    let mut first = String::new();
    let mut ids = vec![0u32; n];
    for i in 0..a.length {
        for (k, id) in ids.iter_mut().enumerate() {
            *id = s.pick(k, &how, &mut rng);
            if a.show_logprob {
                logprob[k] += s.log_prob(k, *id);
            }
        }
        let c = vocab.char(ids[0]);
        if novelty_corpus.is_some() {
            first.push(c);
        }
        for k in 1..n {
            others[k].push(vocab.char(ids[k]));
        }
        out.write_all(c.encode_utf8(&mut buf).as_bytes())
            .map_err(io)?;
        // Stream: every character on a terminal; else the first, line ends, every 64.
        if interactive || i == 0 || c == '\n' || i % 64 == 63 {
            out.flush().map_err(io)?;
        }
        if i + 1 < a.length {
            s.feed(&ids);
        }
    }
    out.write_all(b"\n").map_err(io)?;
    for (k, text) in others.iter().enumerate().skip(1) {
        write!(
            out,
            "\n--- sample {} of {n} ---\n{}{text}\n",
            k + 1,
            a.prime.as_deref().unwrap_or("")
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)?;
    if a.show_logprob && a.length > 0 {
        for (k, lp) in logprob.iter().enumerate() {
            let which = if n > 1 {
                format!(" {}", k + 1)
            } else {
                String::new()
            };
            eprintln!(
                "charrnn: log-probability of sample{which}: {lp:.2} nats ({:.4} bits/char over {} characters, at temperature 1)",
                -lp / std::f64::consts::LN_2 / a.length as f64,
                a.length
            );
        }
    }
    others[0] = first;
    if let (Some(corpus), Some(path)) = (&novelty_corpus, &a.check_novelty) {
        match novelty(&others, corpus, a.ngram) {
            Some((novel, total)) => eprintln!(
                "charrnn: novelty: {:.1}% of the {total} sampled {}-grams do not occur in {}",
                100.0 * novel as f64 / total as f64,
                a.ngram,
                path.display()
            ),
            None => eprintln!(
                "charrnn: novelty: the sample is shorter than one {}-gram",
                a.ngram
            ),
        }
    }
    Ok(())
}

/// (novel, total): how many of the `n`-character windows of the samples never occur in
/// `corpus` (the memorisation check torch-rnn kept as a side script). None when every sample
/// is shorter than `n`.
pub fn novelty(samples: &[String], corpus: &str, n: usize) -> Option<(usize, usize)> {
    fn grams(text: &str, n: usize) -> impl Iterator<Item = u64> + '_ {
        let chars: Vec<char> = text.chars().collect();
        (0..chars.len().saturating_sub(n - 1)).map(move |i| {
            // FNV-1a over the window's scalar values: collisions are negligible at 64 bits.
            chars[i..i + n]
                .iter()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
                    (h ^ c as u64).wrapping_mul(0x0100_0000_01b3)
                })
        })
    }
    let seen: std::collections::HashSet<u64> = grams(corpus, n).collect();
    let (mut novel, mut total) = (0, 0);
    for g in samples.iter().flat_map(|s| grams(s, n)) {
        total += 1;
        novel += usize::from(!seen.contains(&g));
    }
    (total > 0).then_some((novel, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn novelty_counts_windows_absent_from_the_corpus() {
        assert_eq!(novelty(&["abcd".into()], "xxabcxx", 3), Some((1, 2))); // "abc" occurs, "bcd" does not
        assert_eq!(novelty(&["ab".into()], "abc", 3), None);
        assert_eq!(
            novelty(&["春眠不觉".into(), "晓".into()], "春眠不觉晓", 2),
            Some((0, 3))
        );
    }
}
