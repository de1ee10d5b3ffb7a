//! The library's way in: a trained model loaded from a checkpoint (`Model`), its text as an
//! iterator of characters (`Generation`), and its loss on any text (`Score`).
//!
//! Owns the public API over the sampler and the engine. Does not own the arithmetic
//! (`sampler`, `engine`) or the file format (`checkpoint`).

use super::sampler::Sampler;
use super::stream::{Finish, Settings, Stream};
use super::weights::Precision;
use crate::checkpoint::{self, Checkpoint};
use crate::data::{self, Vocab};
use crate::engine::{evaluate, Threads};
use crate::error::{Error, Result};
use crate::model::{Layout, ModelConfig};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

/// A trained model ready to generate and score text: its architecture, vocabulary and
/// weights (f32), read from a checkpoint written by `charrnn train`.
pub struct Model {
    layout: Layout,
    vocab: Vocab,
    params: Vec<f32>,
    /// The model was trained on text transliterated to ASCII (`--ascii`).
    ascii: bool,
    /// What `generate` and `score` multiply with.
    precision: Precision,
    /// Threads `generate` and `score` run on.
    threads: usize,
}

impl Model {
    /// Loads the weights of the checkpoint at `path` (not the optimiser state).
    ///
    /// # Errors
    /// The file cannot be read, is not a charrnn checkpoint, is truncated, is from a newer
    /// charrnn, or its metadata disagrees with its tensors.
    ///
    /// # Example
    /// ```
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1-lstm-2x16.safetensors");
    /// let model = charrnn::Model::load(path)?;
    /// assert_eq!(model.config().hidden, 16);
    /// assert!(model.vocab().id('q').is_some());
    /// # Ok::<(), charrnn::error::Error>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Ok(Model::from_checkpoint(checkpoint::load_model(
            path.as_ref(),
        )?))
    }

    /// The model of a checkpoint already read.
    pub fn from_checkpoint(ck: Checkpoint) -> Model {
        Model {
            layout: Layout::new(ck.model),
            ascii: ck.train.as_ref().is_some_and(|t| t.config.ascii),
            vocab: ck.vocab,
            params: ck.params,
            precision: Precision::F32,
            threads: 1,
        }
    }

    /// The same model generating and scoring with weights converted to `precision` (f32, the
    /// default, gives the texts of earlier seeds; bf16 and int8 are faster and score within
    /// half a percent and 1.5 % of f32 on tiny Shakespeare).
    pub fn with_precision(mut self, precision: Precision) -> Model {
        self.precision = precision;
        self
    }

    /// The same model generating and scoring on `threads` threads (at least 1; the text does
    /// not depend on it).
    pub fn with_threads(mut self, threads: usize) -> Model {
        self.threads = threads.max(1);
        self
    }

    /// The precision `generate` and `score` use.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// A sampler of `streams` streams over this model's weights, precision and threads.
    pub fn sampler(&self, streams: usize) -> Sampler {
        Sampler::with(
            &self.layout,
            &self.params,
            streams,
            self.precision,
            self.threads,
        )
    }

    /// Cell, layers, hidden size, vocabulary size and embedding width.
    pub fn config(&self) -> ModelConfig {
        self.layout.config
    }

    /// The characters the model knows.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The parameter layout (PyTorch's names and shapes).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// (P): every parameter, laid out by `layout()`.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Ids of a prompt: an empty prompt starts from a newline (or id 0 when the vocabulary
    /// has none), as `charrnn sample` without `--prime` does.
    ///
    /// # Errors
    /// Characters the vocabulary lacks (and no unknown symbol to map them to), named.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Ok(vec![self.vocab.id('\n').unwrap_or(0)]);
        }
        Ok(self.vocab.encode(prompt, "the prompt")?.0)
    }

    /// Text continuing `prompt`, one character at a time (the prompt itself is not
    /// repeated), with `settings`. The same prompt and settings give the same characters on
    /// every machine.
    ///
    /// # Errors
    /// As `encode_prompt`; an empty stop string (see `stop::refused`).
    ///
    /// # Example
    /// ```
    /// use charrnn::{Model, Settings};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1-lstm-2x16.safetensors");
    /// let model = Model::load(path)?;
    /// let settings = Settings { seed: 7, temperature: 0.8, ..Settings::default() };
    /// let text: String = model.generate("the ", &settings)?.take(40).collect();
    /// assert_eq!(text.chars().count(), 40);
    /// // The same seed gives the same text.
    /// assert_eq!(text, model.generate("the ", &settings)?.take(40).collect::<String>());
    /// # Ok::<(), charrnn::error::Error>(())
    /// ```
    pub fn generate(&self, prompt: &str, settings: &Settings) -> Result<Generation<'_>> {
        let (sampler, stream) = self.start(prompt, settings)?;
        Ok(Generation {
            sampler,
            stream,
            vocab: &self.vocab,
            ready: VecDeque::new(),
        })
    }

    /// What `generate` steps, for a caller that keeps it apart from the model (the Python
    /// package's `Stream`): a one-stream sampler and the stream of `prompt` with `settings`,
    /// stepped by `Stream::next_text` with this model's vocabulary.
    ///
    /// # Errors
    /// As `encode_prompt`; an empty stop string (see `stop::refused`).
    pub fn start(&self, prompt: &str, settings: &Settings) -> Result<(Sampler, Stream)> {
        if let Some(why) = super::stop::refused(&settings.stop) {
            crate::bail!("Settings::stop strings {why}");
        }
        let ids = self.encode_prompt(prompt)?;
        Ok((self.sampler(1), Stream::new(ids, settings)))
    }

    /// The loss of predicting every character of `text` from the ones before it, exactly as
    /// validation loss is measured (one stream from a zero state), on `threads` threads; with
    /// a precision other than f32, by stepping the text through the converted weights.
    /// Characters outside the vocabulary are scored as the unknown symbol when the model has
    /// one (`--max-vocab`, `--min-count`), else left out; either way they are counted. A model
    /// trained with `--ascii` scores the transliterated text.
    ///
    /// # Errors
    /// Fewer than 2 characters to score.
    ///
    /// # Example
    /// ```
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1-lstm-2x16.safetensors");
    /// let model = charrnn::Model::load(path)?;
    /// let score = model.score("the quick brown fox jumps over the lazy dog.\n", 1)?;
    /// assert!(score.nats_per_char > 0.0 && score.nats_per_char < (28f64).ln() + 1.0);
    /// assert_eq!(score.chars, 45);
    /// # Ok::<(), charrnn::error::Error>(())
    /// ```
    pub fn score(&self, text: &str, threads: usize) -> Result<Score> {
        let ascii;
        let text = if self.ascii {
            ascii = data::to_ascii(text);
            &ascii
        } else {
            text
        };
        let mut ids = Vec::with_capacity(text.len());
        let mut out_of_vocab: BTreeMap<char, usize> = BTreeMap::new();
        for c in text.chars() {
            match (self.vocab.id(c), self.vocab.unk) {
                (Some(i), _) => ids.push(i),
                (None, unk) => {
                    *out_of_vocab.entry(c).or_insert(0) += 1;
                    if let Some(u) = unk {
                        ids.push(u);
                    }
                }
            }
        }
        if ids.len() < 2 {
            let outside: usize = out_of_vocab.values().sum();
            let why = if outside > 0 && self.vocab.unk.is_none() {
                let some: String = out_of_vocab
                    .keys()
                    .take(5)
                    .map(|c| format!(" {c:?}"))
                    .collect();
                format!(
                    " ({outside} of its {} characters are outside the model's vocabulary, e.g.{some})",
                    text.chars().count()
                )
            } else {
                String::new()
            };
            return Err(Error::input(format!(
                "{} usable character(s){why}; it needs at least 2",
                ids.len()
            )));
        }
        let nats = match self.precision {
            Precision::F32 => evaluate(&self.layout, &self.params, &ids, Threads(threads.max(1))),
            _ => {
                let mut s = Sampler::with(&self.layout, &self.params, 1, self.precision, threads);
                let mut total = 0.0;
                for w in ids.windows(2) {
                    s.feed(&w[..1]);
                    total -= s.log_prob(0, w[1]);
                }
                total / (ids.len() - 1) as f64
            }
        };
        Ok(Score {
            chars: ids.len(),
            nats_per_char: nats,
            out_of_vocab,
            unknown_scored: self.vocab.unk.is_some(),
        })
    }
}

/// A model's loss on a text.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// Characters in the scored stream (the first is only read, every other one predicted).
    pub chars: usize,
    /// Mean cross-entropy in nats per predicted character.
    pub nats_per_char: f64,
    /// Characters outside the vocabulary and how often each occurs.
    pub out_of_vocab: BTreeMap<char, usize>,
    /// Whether those were scored as the unknown symbol (else left out of the stream).
    pub unknown_scored: bool,
}

impl Score {
    /// The loss in bits per character.
    pub fn bits_per_char(&self) -> f64 {
        self.nats_per_char / std::f64::consts::LN_2
    }

    /// e^(nats per character).
    pub fn perplexity(&self) -> f64 {
        self.nats_per_char.exp()
    }
}

/// Characters generated by a `Model`, one per `next()`, until the settings' length limit or a
/// stop string (without a limit or stop strings it does not end: `take` what you need).
pub struct Generation<'m> {
    sampler: Sampler,
    stream: Stream,
    vocab: &'m Vocab,
    /// Characters released by the stream and not yet returned.
    ready: VecDeque<char>,
}

impl Generation<'_> {
    /// Why generation ended, once it has: "length" or "stop".
    pub fn finish_reason(&self) -> Option<Finish> {
        self.stream.finished()
    }

    /// The total log-probability of the generated characters (with `Settings::log_prob`).
    pub fn log_prob(&self) -> Option<f64> {
        self.stream.log_prob()
    }

    /// Characters generated so far.
    pub fn generated(&self) -> usize {
        self.stream.generated()
    }
}

impl Iterator for Generation<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        loop {
            if let Some(c) = self.ready.pop_front() {
                return Some(c);
            }
            let text = self.stream.next_text(&mut self.sampler, self.vocab)?;
            self.ready.extend(text.chars());
        }
    }
}
