//! `charrnn sample`: load a checkpoint, prime, and stream characters to stdout; with
//! `--num-samples` several streams stepped as one batch, each with its own generator; stop
//! strings; the log-probability and novelty reports.
//!
//! Owns the command's flags and output. Does not own the stepping (`batch`, `stream`) or the
//! picking (`pick`).

use super::batch::Batch;
use super::stream::{Settings, Step, Stream};
use super::trained::Model;
use crate::error::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct SampleArgs {
    /// A checkpoint written by `charrnn train` (e.g. runs/NAME/best.safetensors).
    pub checkpoint: PathBuf,
    /// Number of characters to generate (the prime is not counted); a stop string can end a
    /// sample sooner.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub length: usize,
    /// Softmax temperature: lower is more conservative; at or below 1e-6 it always takes the
    /// most likely character.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Text to run through the model first; it is printed, then continued.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "prime_file")]
    pub prime: Option<String>,
    /// Read the prime from this file (long primes, newlines, no shell quoting; read like a
    /// training text).
    #[arg(long, value_name = "FILE")]
    pub prime_file: Option<PathBuf>,
    /// The encoding of --prime-file and --check-novelty texts without a byte-order mark, e.g.
    /// windows-1252 [default: UTF-8].
    #[arg(long, value_name = "NAME")]
    pub encoding: Option<String>,
    /// Replace invalid bytes of --prime-file with U+FFFD instead of stopping with an error (the
    /// --check-novelty corpus is always read so).
    #[arg(long)]
    pub lossy: bool,
    /// Drop prime characters the model does not know (named on stderr) instead of stopping.
    #[arg(long)]
    pub skip_unknown: bool,
    /// End a sample when its text ends with STR (repeatable); STR itself is not printed.
    /// `--prime $'\n' --stop $'\n'` gives one line per sample.
    #[arg(long, value_name = "STR", allow_hyphen_values = true)]
    pub stop: Vec<String>,
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
    /// The weights' precision and the worker threads (the text does not depend on them).
    #[command(flatten)]
    pub compute: crate::sample::weights::Compute,
    /// Generate N samples stepped together as a batch; sample K is what --seed SEED+K-1 gives
    /// alone (sample 1 is written as it is generated, the others follow it).
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

impl SampleArgs {
    /// Checks the flags that need no file.
    ///
    /// # Errors
    /// A temperature below 0, `--top-k 0`, a `--top-p` outside (0, 1], no samples, `--ngram
    /// 0` or an empty stop string, named.
    pub fn check(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            crate::bail!("--temperature must be 0 or more, got {}", self.temperature);
        }
        if self.top_k == Some(0) {
            crate::bail!("--top-k must be at least 1");
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            crate::bail!("--top-p must be in (0, 1], got {p}");
        }
        if self.num_samples == 0 {
            crate::bail!("--num-samples must be at least 1");
        }
        if self.ngram == 0 {
            crate::bail!("--ngram must be at least 1");
        }
        if let Some(why) = super::stop::refused(&self.stop) {
            crate::bail!("--stop {why}");
        }
        Ok(())
    }

    /// The settings of sample `k` (from 0) of a run seeded with `seed`: sample K is what seed
    /// `seed + k` gives alone.
    pub fn settings(&self, seed: u64, k: usize) -> Settings {
        Settings {
            seed: seed.wrapping_add(k as u64),
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            stop: self.stop.clone(),
            max_chars: Some(self.length),
            log_prob: self.show_logprob,
            ..Settings::default()
        }
    }
}

/// A seed from the clock (nanoseconds since 1970), for a run without `--seed`.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The prime as given (`--prime`, `--prime-file`, or none), and the ids the model starts from:
/// unknown characters are an error, or with `--skip-unknown` dropped with a note.
fn prime(a: &SampleArgs, model: &Model) -> Result<(String, Vec<u32>)> {
    let given = match (&a.prime, &a.prime_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => crate::data::read_text(
            f,
            &crate::data::Decoding::new(a.lossy, a.encoding.as_deref())?,
        )?,
        (None, None) => String::new(),
    };
    let what = if a.prime_file.is_some() {
        "--prime-file"
    } else {
        "--prime"
    };
    let vocab = model.vocab();
    let unknown: Vec<char> = given.chars().filter(|&c| vocab.id(c).is_none()).collect();
    if unknown.is_empty() || vocab.unk.is_some() {
        let ids = model
            .encode_prompt(&given)
            .map_err(|e| Error::input(e.msg.replacen("the prompt", what, 1)))?;
        return Ok((given, ids));
    }
    if !a.skip_unknown {
        let e = vocab.encode(&given, what).unwrap_err();
        return Err(Error::input(format!(
            "{}; or pass --skip-unknown to drop them",
            e.msg
        )));
    }
    let mut distinct = unknown.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let shown: Vec<String> = distinct.iter().take(10).map(|c| format!("{c:?}")).collect();
    eprintln!(
        "charrnn: {what}: dropped {} character(s) the model does not know: {}{}",
        unknown.len(),
        shown.join(" "),
        if distinct.len() > 10 { " …" } else { "" }
    );
    let kept: String = given.chars().filter(|&c| vocab.id(c).is_some()).collect();
    Ok((kept.clone(), model.encode_prompt(&kept)?))
}

/// Refuses what would not fit in the memory available, before it is allocated: the streams
/// (`Sampler::bytes`), each stream's copy of the prime, and the text of every sample kept until
/// the end (all but the first, which is written as it comes, unless --check-novelty reads it
/// afterwards), at most `--length` characters of the vocabulary's widest in UTF-8 each.
fn check_memory(a: &SampleArgs, model: &Model, prime: usize) -> Result<()> {
    use crate::memory::{buffer, Need};
    let n = a.num_samples;
    let kept = n - 1 + usize::from(a.check_novelty.is_some());
    let widest = model.vocab().chars.iter().map(|c| c.len_utf8()).max();
    let mut need = Need::default();
    need.add(
        format!("{n} streams"),
        super::Sampler::bytes(model.layout(), n),
    )
    .add("their primes", buffer(&[n, prime], 4))
    .add(
        "the samples kept until the end",
        buffer(&[kept, a.length, widest.unwrap_or(1)], 1),
    );
    need.check(
        &format!("--num-samples {n} of --length {}", a.length),
        crate::memory::available(),
        "ask for fewer --num-samples or a shorter --length",
    )
}

/// `charrnn sample`: prime, then stream up to `length` characters per sample to stdout.
pub fn run(a: &SampleArgs) -> Result<()> {
    a.check()?;
    // Read the corpus first: a bad path should fail before any output.
    let novelty_corpus = match &a.check_novelty {
        Some(p) => Some(crate::data::read_text(
            p,
            &crate::data::Decoding::new(true, a.encoding.as_deref())?,
        )?),
        None => None,
    };
    let threads = a.compute.threads.count()?;
    let model = Model::load(&a.checkpoint)?
        .with_precision(a.compute.precision)
        .with_threads(threads);
    let (shown_prime, prime_ids) = prime(a, &model)?;
    check_memory(a, &model, prime_ids.len())?;
    let greedy = a.temperature <= 1e-6;
    let seed = a.seed.unwrap_or_else(|| {
        let s = clock_seed();
        if !greedy {
            eprintln!("charrnn: --seed {s} reproduces this sample");
        }
        s
    });
    let n = a.num_samples;
    let mut batch = Batch::new(model.sampler(0), model.vocab());
    for k in 0..n {
        batch.add(k, Stream::new(prime_ids.clone(), &a.settings(seed, k)));
    }
    let texts = write_samples(&mut batch, n, &shown_prime, a.check_novelty.is_some())?;
    report(a, &texts, novelty_corpus.as_deref());
    Ok(())
}

/// What each sample generated: its text and, with --show-logprob, (log-probability,
/// characters generated).
struct Sampled {
    text: String,
    log_prob: Option<(f64, usize)>,
}

/// Steps the batch to the end; sample 1 goes to stdout as it is generated, the others after
/// it, each under a header when there are several. Sample 1's text is kept only when
/// `keep_first` (the novelty check reads it), so a single sample streams in constant memory
/// however long it is.
fn write_samples(
    batch: &mut Batch<usize>,
    n: usize,
    prime: &str,
    keep_first: bool,
) -> Result<Vec<Sampled>> {
    let stdout = std::io::stdout();
    let interactive = std::io::IsTerminal::is_terminal(&stdout);
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e| Error::io("cannot write to stdout", e);
    let header = |k: usize| format!("--- sample {} of {n} ---\n", k + 1);
    if n > 1 {
        out.write_all(header(0).as_bytes()).map_err(io)?;
    }
    out.write_all(prime.as_bytes()).map_err(io)?;
    out.flush().map_err(io)?;
    let mut samples: Vec<Sampled> = (0..n)
        .map(|_| Sampled {
            text: String::new(),
            log_prob: None,
        })
        .collect();
    let mut steps = Vec::new();
    let mut written = 0usize;
    while !batch.is_empty() {
        steps.clear();
        batch.step(&mut steps);
        for (k, step) in steps.drain(..) {
            let (Step::Text(t) | Step::Done(t, _)) = step else {
                continue;
            };
            if k == 0 && !t.is_empty() {
                out.write_all(t.as_bytes()).map_err(io)?;
                // Stream: every character on a terminal; else the first, line ends, every 64.
                if interactive || written == 0 || t.contains('\n') || written % 64 == 63 {
                    out.flush().map_err(io)?;
                }
                written += 1;
            }
            if k > 0 || keep_first {
                samples[k].text.push_str(&t);
            }
        }
        for (k, stream) in batch.take_finished() {
            samples[k].log_prob = stream.log_prob().map(|lp| (lp, stream.generated()));
        }
    }
    out.write_all(b"\n").map_err(io)?;
    for (k, s) in samples.iter().enumerate().skip(1) {
        write!(out, "\n{}{prime}{}\n", header(k), s.text).map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(samples)
}

/// The log-probability lines and the novelty check, on stderr.
fn report(a: &SampleArgs, samples: &[Sampled], novelty_corpus: Option<&str>) {
    let n = samples.len();
    for (k, s) in samples.iter().enumerate() {
        let Some((lp, chars)) = s.log_prob.filter(|(_, c)| *c > 0) else {
            continue;
        };
        let which = if n > 1 {
            format!(" {}", k + 1)
        } else {
            String::new()
        };
        eprintln!(
            "charrnn: log-probability of sample{which}: {lp:.2} nats ({:.4} bits/char over {chars} characters, at temperature 1)",
            -lp / std::f64::consts::LN_2 / chars as f64,
        );
    }
    if let (Some(corpus), Some(path)) = (novelty_corpus, &a.check_novelty) {
        let texts: Vec<String> = samples.iter().map(|s| s.text.clone()).collect();
        match novelty(&texts, corpus, a.ngram) {
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
