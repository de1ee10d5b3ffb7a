//! One stream of generation: its prompt fed one character per step, then each next character
//! picked from its own generator with its own settings, stop strings and length limit. The
//! same stream gives the same text alone or in any batch (`Sampler` keeps streams apart), so a
//! server's request and `charrnn sample` agree for the same seed. A stream can keep the
//! log-probability of each character, generated or of its prompt, released with its text.
//!
//! Owns a stream's progress and its log-probabilities. Does not own the batch (see `sampler`)
//! or the output.

use super::pick::Pick;
use super::sampler::Sampler;
use super::stop::{Matched, StopMatcher};
use crate::data::Vocab;
use crate::rng::Rng;
use std::collections::VecDeque;

/// How one stream generates.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Seed of the stream's generator: the same seed, prompt and settings give the same text.
    pub seed: u64,
    /// Softmax temperature; at or below 1e-6 the most likely character is taken.
    pub temperature: f32,
    /// Draw only from the k most likely characters.
    pub top_k: Option<usize>,
    /// Draw only from the most likely characters holding probability p (nucleus sampling).
    pub top_p: Option<f64>,
    /// Generation ends when the generated text ends with one of these; it is left out.
    pub stop: Vec<String>,
    /// At most this many characters are generated (None: no limit).
    pub max_chars: Option<usize>,
    /// Keep the total log-probability of the generated characters (at temperature 1).
    pub log_prob: bool,
    /// Keep each generated character's log-probability and those of the n most likely
    /// characters at its place (see [`Logprob`]), released with its text.
    pub logprobs: Option<usize>,
    /// Keep the prompt's log-probabilities too (every character but the first), released
    /// once the prompt has gone in; with a limit of 0 characters the stream still reads its
    /// prompt.
    pub prompt_logprobs: bool,
}

impl Default for Settings {
    /// Seed 0, temperature 1, no top-k/top-p, no stop strings, no limit.
    fn default() -> Settings {
        Settings {
            seed: 0,
            temperature: 1.0,
            top_k: None,
            top_p: None,
            stop: Vec::new(),
            max_chars: None,
            log_prob: false,
            logprobs: None,
            prompt_logprobs: false,
        }
    }
}

impl Settings {
    /// The picking rule of these settings.
    pub fn pick(&self) -> Pick {
        Pick {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
        }
    }
}

/// Why a stream ended (OpenAI's `finish_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// `max_chars` characters were generated.
    Length,
    /// The text reached a stop string.
    Stop,
}

impl Finish {
    /// OpenAI's name: "length" or "stop".
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Length => "length",
            Finish::Stop => "stop",
        }
    }
}

/// A character's log-probability (nats) at its place, and the most likely characters'
/// there: the model's own distribution, the log-softmax of the logits at temperature 1, before
/// a temperature, top-k or top-p shapes the draw (what OpenAI's and vLLM's `logprobs` report).
#[derive(Clone, Debug, PartialEq)]
pub struct Logprob {
    pub char: char,
    pub logprob: f32,
    /// The most likely characters and their log-probabilities, most likely first (ties to
    /// the lower id), as many as the settings ask for.
    pub top: Vec<(char, f32)>,
}

/// The log-probabilities a stream has released since they were last taken.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    /// The prompt's, every character after the first, once the prompt has gone in.
    pub prompt: Option<Vec<Logprob>>,
    /// Those of the characters of the text released, in order (held-back characters wait
    /// with their text; those of a stop string are dropped with it).
    pub text: Vec<Logprob>,
}

/// What one step did for a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A prompt character went in; nothing came out yet.
    Prefill,
    /// A character was generated; `text` (possibly empty while a stop string might be
    /// starting) is final.
    Text(String),
    /// The stream ended; `text` is its last output.
    Done(String, Finish),
}

/// One stream's state.
#[derive(Clone, Debug)]
pub struct Stream {
    prompt: Vec<u32>,
    /// Prompt characters fed so far.
    fed: usize,
    /// The id the next step feeds.
    next: u32,
    rng: Rng,
    pick: Pick,
    stop: StopMatcher,
    max: Option<usize>,
    generated: usize,
    log_prob: Option<f64>,
    /// Alternatives kept per character, when log-probabilities are kept.
    logprobs: Option<usize>,
    /// The prompt's log-probabilities so far, while it goes in (with `prompt_logprobs`).
    prompt_scores: Option<Vec<Logprob>>,
    /// Generated characters' log-probabilities whose text is held back.
    pending: VecDeque<Logprob>,
    /// Released and not yet taken.
    scores: Scores,
    finish: Option<Finish>,
}

impl Stream {
    /// A stream that feeds `prompt` (ids; at least one) and then generates by `settings`.
    pub fn new(prompt: Vec<u32>, settings: &Settings) -> Stream {
        assert!(
            !prompt.is_empty(),
            "a stream needs a prompt of at least one character"
        );
        Stream {
            next: prompt[0],
            prompt,
            fed: 0,
            rng: Rng::new(settings.seed),
            pick: settings.pick(),
            stop: StopMatcher::new(&settings.stop),
            max: settings.max_chars,
            generated: 0,
            log_prob: settings.log_prob.then_some(0.0),
            logprobs: settings.logprobs,
            prompt_scores: settings.prompt_logprobs.then(Vec::new),
            pending: VecDeque::new(),
            scores: Scores::default(),
            finish: (settings.max_chars == Some(0) && !settings.prompt_logprobs)
                .then_some(Finish::Length),
        }
    }

    /// The id to feed at the next step.
    pub fn input(&self) -> u32 {
        self.next
    }

    /// Why the stream ended, once it has.
    pub fn finished(&self) -> Option<Finish> {
        self.finish
    }

    /// Characters generated so far (including any that formed a stop string).
    pub fn generated(&self) -> usize {
        self.generated
    }

    /// Prompt characters.
    pub fn prompt_len(&self) -> usize {
        self.prompt.len()
    }

    /// Total log-probability (nats, temperature 1) of the generated characters, when kept.
    pub fn log_prob(&self) -> Option<f64> {
        self.log_prob
    }

    /// Steps this stream alone, in slot 0 of a one-stream `sampler`, until it releases text
    /// (a character, or more when a possible stop string turned out not to be one) or ends;
    /// None once it has ended.
    pub fn next_text(&mut self, sampler: &mut Sampler, vocab: &Vocab) -> Option<String> {
        while self.finish.is_none() {
            sampler.feed(&[self.next]);
            match self.advance(sampler, 0, vocab) {
                Step::Prefill => {}
                Step::Text(t) | Step::Done(t, _) if !t.is_empty() => return Some(t),
                Step::Text(_) | Step::Done(..) => {}
            }
        }
        None
    }

    /// The log-probabilities released since the last call, if any (see [`Scores`]).
    pub fn take_scores(&mut self) -> Option<Scores> {
        let s = &self.scores;
        (s.prompt.is_some() || !s.text.is_empty()).then(|| std::mem::take(&mut self.scores))
    }

    /// After a feed of `input()` into `sampler`'s stream `slot`: takes the next prompt
    /// character, or picks the next character from the logits.
    pub fn advance(&mut self, sampler: &mut Sampler, slot: usize, vocab: &Vocab) -> Step {
        debug_assert!(self.finish.is_none(), "a finished stream is not stepped");
        self.fed = (self.fed + 1).min(self.prompt.len());
        if self.fed < self.prompt.len() {
            self.next = self.prompt[self.fed];
            if let Some(p) = &mut self.prompt_scores {
                let top = self.logprobs.unwrap_or(0);
                p.push(logprob(sampler, slot, self.next, top, vocab));
            }
            return Step::Prefill;
        }
        if let Some(p) = self.prompt_scores.take() {
            self.scores.prompt = Some(p);
        }
        if self.max == Some(0) {
            // Only the prompt's log-probabilities were wanted.
            self.finish = Some(Finish::Length);
            return Step::Done(String::new(), Finish::Length);
        }
        let id = sampler.pick(slot, &self.pick, &mut self.rng);
        if let Some(lp) = &mut self.log_prob {
            *lp += sampler.log_prob(slot, id);
        }
        if let Some(top) = self.logprobs {
            self.pending
                .push_back(logprob(sampler, slot, id, top, vocab));
        }
        self.next = id;
        self.generated += 1;
        match self.stop.push(vocab.char(id)) {
            Matched::Stop(text) => {
                self.finish = Some(Finish::Stop);
                self.release(&text);
                self.pending.clear();
                Step::Done(text, Finish::Stop)
            }
            Matched::Release(mut text) => {
                let done = self.max.is_some_and(|m| self.generated >= m);
                if done {
                    text.push_str(&self.stop.flush());
                    self.finish = Some(Finish::Length);
                }
                self.release(&text);
                if done {
                    Step::Done(text, Finish::Length)
                } else {
                    Step::Text(text)
                }
            }
        }
    }

    /// Releases the log-probabilities of `text`'s characters, the oldest held.
    fn release(&mut self, text: &str) {
        if self.logprobs.is_some() {
            let n = text.chars().count();
            self.scores.text.extend(self.pending.drain(..n));
        }
    }
}

/// `id`'s log-probability under `sampler`'s stream `slot`, with the `top` most likely.
fn logprob(sampler: &Sampler, slot: usize, id: u32, top: usize, vocab: &Vocab) -> Logprob {
    let (logprob, best) = sampler.log_probs(slot, id, top);
    Logprob {
        char: vocab.char(id),
        logprob,
        top: best.into_iter().map(|(i, l)| (vocab.char(i), l)).collect(),
    }
}
