//! A job's events into its answer, in the shape of the API it came through: one
//! `text_completion` or `chat.completion` object once every choice has finished, or
//! server-sent events, `data: {chunk}` … `data: [DONE]`, as the text arrives. Text that
//! arrives while the client is busy is sent together, one chunk for every choice that has
//! some; a chat stream starts with each choice's role and ends each with an empty delta and
//! its finish reason, as OpenAI's does; an error in the middle of a stream is a
//! `data: {"error": …}` event and `[DONE]`. Log-probabilities, when asked for, go with the
//! characters they belong to; an echoed prompt's come when the prompt has gone in.
//!
//! Owns what an answer gathers (each choice's text, log-probabilities and finish, the
//! characters counted) and its framing. Does not define the objects' fields (`api`) or produce
//! the events (`scheduler`).

use super::api::{
    json_body, now, ApiError, ChatChoice, ChatLogprobs, Choice, ChunkChoice, Completion, Delta,
    Message, TextLogprobs, Usage, FINGERPRINT,
};
use super::metrics::Metrics;
use super::queue::{Event, JobError};
use super::validation::{Api, Valid};
use crate::sample::Logprob;
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::Receiver;

/// What every object of an answer repeats, and what the answer needs to know of its request.
pub struct Meta {
    /// OpenAI's `id`, `cmpl-…` or `chatcmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
    /// The API the request came through.
    pub api: Api,
    /// The seed of choice 0 (extension).
    pub seed: u64,
    /// When the request arrived, for the time to its first character.
    pub arrived: Instant,
    /// Characters of the prompts (`usage.prompt_tokens`).
    pub prompt_chars: usize,
    /// For each choice, its prompt's text.
    pub echoes: Vec<String>,
    /// Each choice starts with its prompt (`echo`).
    pub echo: bool,
    /// Alternatives per character when log-probabilities are asked for.
    pub logprobs: Option<usize>,
    /// A stream ends with a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

impl Meta {
    /// What the answer to a validated request repeats (its streams have gone to the queue).
    pub fn new(v: Valid<'_>, arrived: Instant) -> Meta {
        let prefix = match v.request.api {
            Api::Completions => "cmpl",
            Api::Chat => "chatcmpl",
        };
        Meta {
            id: format!("{prefix}-{:x}{:06x}", now(), v.id),
            created: now(),
            model: v.request.model,
            api: v.request.api,
            seed: v.seed,
            arrived,
            prompt_chars: v.prompt_chars,
            echoes: v.echoes,
            echo: v.request.echo,
            logprobs: v.request.logprobs,
            include_usage: v.request.include_usage,
        }
    }

    /// An object named `object` with these choices.
    fn object<C>(
        &self,
        object: &'static str,
        choices: Vec<C>,
        usage: Option<Usage>,
    ) -> Completion<'_, C> {
        Completion {
            id: &self.id,
            object,
            created: self.created,
            model: &self.model,
            system_fingerprint: FINGERPRINT,
            choices,
            usage,
            seed: self.seed,
        }
    }

    /// `usage` once the choices have generated `generated` characters.
    fn usage(&self, generated: usize) -> Usage {
        Usage {
            prompt_tokens: self.prompt_chars,
            completion_tokens: generated,
            total_tokens: self.prompt_chars + generated,
        }
    }

    /// Records the time to the first character, the first time it is called with `first`.
    fn first_text(&self, first: &mut bool, metrics: &Metrics) {
        if std::mem::take(first) {
            metrics
                .first_character_seconds
                .observe(self.arrived.elapsed().as_secs_f64());
        }
    }

    /// A completion choice's `logprobs`, when asked for: an unscored `first` character, then
    /// `scores`, from `offset` characters into the choice's text.
    fn text_logprobs(
        &self,
        first: Option<char>,
        scores: &[Logprob],
        offset: usize,
    ) -> Option<TextLogprobs> {
        (self.logprobs).map(|k| TextLogprobs::new(first, scores, offset, k))
    }

    /// A chat choice's `logprobs`, when asked for.
    fn chat_logprobs(&self, scores: &[Logprob]) -> Option<ChatLogprobs> {
        (self.logprobs).map(|k| ChatLogprobs::new(scores, k))
    }

    /// The first character of choice `index`'s echoed prompt, which nothing scores.
    fn echo_first(&self, index: usize) -> Option<char> {
        self.echoes[index].chars().next()
    }
}

/// One choice as a whole answer gathers it.
#[derive(Default)]
struct Gathered {
    text: String,
    /// The log-probabilities of `text`'s characters (after the first, with an echoed prompt).
    scores: Vec<Logprob>,
    finish: Option<&'static str>,
}

/// A whole answer, once every choice has finished; the job's error if it failed.
pub async fn whole(meta: Meta, mut rx: Receiver<Event>, metrics: &Metrics) -> Response {
    let n = meta.echoes.len();
    let mut got: Vec<Gathered> = (0..n).map(|_| Gathered::default()).collect();
    if meta.echo {
        for (g, e) in got.iter_mut().zip(&meta.echoes) {
            g.text.clone_from(e);
        }
    }
    let (mut generated, mut left, mut first) = (0, n, true);
    while left > 0 {
        match rx.recv().await {
            Some(Event::Prompt { index, logprobs }) => got[index as usize].scores = logprobs,
            Some(Event::Text {
                index,
                text,
                logprobs,
            }) => {
                meta.first_text(&mut first, metrics);
                let g = &mut got[index as usize];
                g.text.push_str(&text);
                g.scores.extend(logprobs);
            }
            Some(Event::Done {
                index,
                finish,
                generated: g,
            }) => {
                got[index as usize].finish = Some(finish.as_str());
                generated += g;
                left -= 1;
            }
            Some(Event::Failed(e)) => return ApiError::from(e).into_response(),
            None => return ApiError::from(JobError::ShuttingDown).into_response(),
        }
    }
    let usage = Some(meta.usage(generated));
    let choices = got.into_iter().enumerate();
    match meta.api {
        Api::Completions => {
            let choices = choices.map(|(i, g)| Choice {
                logprobs: meta.text_logprobs(
                    meta.echo.then(|| meta.echo_first(i)).flatten(),
                    &g.scores,
                    0,
                ),
                text: g.text,
                index: i as u32,
                finish_reason: g.finish,
            });
            json_body(&meta.object("text_completion", choices.collect(), usage))
        }
        Api::Chat => {
            let choices = choices.map(|(i, g)| ChatChoice {
                index: i as u32,
                logprobs: meta.chat_logprobs(&g.scores),
                message: Message {
                    role: "assistant",
                    content: g.text,
                },
                finish_reason: g.finish,
            });
            json_body(&meta.object("chat.completion", choices.collect(), usage))
        }
    }
}

/// A streamed answer: `data: {chunk}` events, then `data: [DONE]`.
pub fn stream(meta: Meta, rx: Receiver<Event>, metrics: Arc<Metrics>) -> Response {
    let n = meta.echoes.len();
    let mut feed = Feed {
        left: n,
        sent: vec![0; n],
        meta,
        metrics,
        rx,
        out: VecDeque::new(),
        generated: 0,
        first: true,
        ended: false,
    };
    feed.begin();
    let events = futures_util::stream::unfold(feed, |mut f| async move {
        loop {
            if let Some(ev) = f.out.pop_front() {
                return Some((Ok::<_, Infallible>(ev), f));
            }
            if f.ended {
                return None;
            }
            match f.rx.recv().await {
                Some(ev) => f.absorb(ev),
                None => f.absorb(Event::Failed(JobError::ShuttingDown)),
            }
        }
    });
    axum::response::Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A streamed answer's state: the events still to receive, the chunks made of them and not
/// yet sent, and what the closing usage chunk counts.
struct Feed {
    meta: Meta,
    metrics: Arc<Metrics>,
    rx: Receiver<Event>,
    out: VecDeque<Sse>,
    /// Choices not yet finished.
    left: usize,
    /// Characters of each choice's text sent so far (the next one's `text_offset`).
    sent: Vec<usize>,
    generated: usize,
    /// No text has arrived yet.
    first: bool,
    ended: bool,
}

/// New text of one choice, with its characters' log-probabilities (and, for an echoed
/// prompt, its unscored first character).
struct Piece {
    index: u32,
    text: String,
    first: Option<char>,
    scores: Vec<Logprob>,
}

impl Feed {
    fn chunk<C: Serialize>(&self, choices: Vec<C>, usage: Option<Usage>) -> Sse {
        let object = match self.meta.api {
            Api::Completions => "text_completion",
            Api::Chat => "chat.completion.chunk",
        };
        let c = self.meta.object(object, choices, usage);
        Sse::default().data(serde_json::to_string(&c).expect("chunks serialise"))
    }

    /// The chunks before any event: a chat's roles, one chunk per choice; a completion's
    /// echoed prompts, unless their log-probabilities are to come with them.
    fn begin(&mut self) {
        let n = self.meta.echoes.len();
        match self.meta.api {
            Api::Chat => {
                for index in 0..n as u32 {
                    let delta = Delta {
                        role: Some("assistant"),
                        content: Some(String::new()),
                    };
                    let c = self.chunk(vec![chunk_choice(index, delta, None, None)], None);
                    self.out.push_back(c);
                }
            }
            Api::Completions if self.meta.echo && self.meta.logprobs.is_none() => {
                let pieces = (0..n).map(|i| self.echo(i as u32, Vec::new())).collect();
                self.texts(pieces);
            }
            Api::Completions => {}
        }
    }

    /// Choice `index`'s echoed prompt, with its log-probabilities `scores`.
    fn echo(&self, index: u32, scores: Vec<Logprob>) -> Piece {
        let text = self.meta.echoes[index as usize].clone();
        let first = self.meta.echo_first(index as usize);
        Piece {
            index,
            text,
            first,
            scores,
        }
    }

    /// One chunk with the new text of every piece that has some (or log-probabilities).
    fn texts(&mut self, pieces: Vec<Piece>) {
        let pieces: Vec<Piece> = (pieces.into_iter())
            .filter(|p| !p.text.is_empty() || !p.scores.is_empty())
            .collect();
        if pieces.is_empty() {
            return;
        }
        let c = match self.meta.api {
            Api::Completions => {
                let choices = pieces.into_iter().map(|p| {
                    let offset = self.sent[p.index as usize];
                    self.sent[p.index as usize] += p.text.chars().count();
                    Choice {
                        logprobs: self.meta.text_logprobs(p.first, &p.scores, offset),
                        text: p.text,
                        index: p.index,
                        finish_reason: None,
                    }
                });
                let choices: Vec<Choice> = choices.collect();
                self.chunk(choices, None)
            }
            Api::Chat => {
                let choices = pieces.into_iter().map(|p| {
                    let delta = Delta {
                        role: None,
                        content: Some(p.text),
                    };
                    chunk_choice(p.index, delta, self.meta.chat_logprobs(&p.scores), None)
                });
                self.chunk(choices.collect(), None)
            }
        };
        self.out.push_back(c);
    }

    /// The chunk that says choice `index` finished, and why.
    fn finished(&mut self, index: u32, why: &'static str) {
        let c = match self.meta.api {
            Api::Completions => self.chunk(
                vec![Choice {
                    text: String::new(),
                    index,
                    logprobs: None,
                    finish_reason: Some(why),
                }],
                None,
            ),
            Api::Chat => self.chunk(
                vec![chunk_choice(index, Delta::default(), None, Some(why))],
                None,
            ),
        };
        self.out.push_back(c);
        self.left -= 1;
    }

    fn end(&mut self) {
        if self.meta.include_usage {
            let c = self.chunk(Vec::<Choice>::new(), Some(self.meta.usage(self.generated)));
            self.out.push_back(c);
        }
        self.out.push_back(Sse::default().data("[DONE]"));
        self.ended = true;
    }

    fn fail(&mut self, e: JobError) {
        let body = ApiError::from(e).body();
        self.out.push_back(Sse::default().data(body.to_string()));
        self.out.push_back(Sse::default().data("[DONE]"));
        self.ended = true;
    }

    /// Takes the next event and whatever else is ready, into chunks: an echoed prompt's at
    /// once, then one with the new text of each choice that has some, then one per choice
    /// that finished.
    fn absorb(&mut self, first: Event) {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut done: Vec<(u32, &'static str)> = Vec::new();
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            match ev {
                Event::Prompt { index, logprobs } => {
                    let echo = self.echo(index, logprobs);
                    self.texts(vec![echo]);
                }
                Event::Text {
                    index,
                    text,
                    logprobs,
                } => {
                    self.meta.first_text(&mut self.first, &self.metrics);
                    match pieces.iter_mut().find(|p| p.index == index) {
                        Some(p) => {
                            p.text.push_str(&text);
                            p.scores.extend(logprobs);
                        }
                        None => pieces.push(Piece {
                            index,
                            text,
                            first: None,
                            scores: logprobs,
                        }),
                    }
                }
                Event::Done {
                    index,
                    finish,
                    generated,
                } => {
                    self.generated += generated;
                    done.push((index, finish.as_str()));
                }
                Event::Failed(e) => return self.fail(e),
            }
            next = self.rx.try_recv().ok();
        }
        pieces.sort_unstable_by_key(|p| p.index);
        self.texts(pieces);
        for (index, why) in done {
            self.finished(index, why);
        }
        if self.left == 0 {
            self.end();
        }
    }
}

/// One choice of a chat chunk.
fn chunk_choice(
    index: u32,
    delta: Delta,
    logprobs: Option<ChatLogprobs>,
    finish: Option<&'static str>,
) -> ChunkChoice {
    ChunkChoice {
        index,
        delta,
        logprobs,
        finish_reason: finish,
    }
}
