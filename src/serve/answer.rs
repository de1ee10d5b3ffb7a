//! A job's events into its answer: one `text_completion` object once every choice has
//! finished, or server-sent events, `data: {chunk}` … `data: [DONE]`, as the text arrives. Text
//! that arrives while the client is busy is sent together, one chunk per choice; an error in the
//! middle of a stream is a `data: {"error": …}` event and `[DONE]`.
//!
//! Owns what an answer gathers (each choice's text and finish, the characters counted) and its
//! framing. Does not define the objects' fields (`api`) or produce the events (`scheduler`).

use super::api::{json_body, now, ApiError, Choice, Completion, Usage, FINGERPRINT};
use super::metrics::Metrics;
use super::queue::{Event, JobError};
use super::validation::Valid;
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::Receiver;

/// What every object of an answer repeats, and what the answer needs to know of its request.
pub struct Meta {
    /// OpenAI's `id`, `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
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
    /// A stream ends with a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

impl Meta {
    /// What the answer to a validated request repeats (its streams have gone to the queue).
    pub fn new(v: Valid<'_>, arrived: Instant) -> Meta {
        Meta {
            id: format!("cmpl-{:x}{:06x}", now(), v.id),
            created: now(),
            model: v.request.model,
            seed: v.seed,
            arrived,
            prompt_chars: v.prompt_chars,
            echoes: v.echoes,
            echo: v.request.echo,
            include_usage: v.request.include_usage,
        }
    }

    /// A `text_completion` object with these choices.
    fn object(&self, choices: Vec<Choice>, usage: Option<Usage>) -> Completion<'_> {
        Completion {
            id: &self.id,
            object: "text_completion",
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
}

/// A choice of `text` that has not finished, or has finished with `finish`.
fn choice(index: u32, text: String, finish: Option<&'static str>) -> Choice {
    Choice {
        text,
        index,
        logprobs: None,
        finish_reason: finish,
    }
}

/// A whole answer, once every choice has finished; the job's error if it failed.
pub async fn whole(meta: Meta, mut rx: Receiver<Event>, metrics: &Metrics) -> Response {
    let n = meta.echoes.len();
    let mut texts = if meta.echo {
        meta.echoes.clone()
    } else {
        vec![String::new(); n]
    };
    let mut finish = vec![None; n];
    let (mut generated, mut left, mut first) = (0, n, true);
    while left > 0 {
        match rx.recv().await {
            Some(Event::Text { index, text, .. }) => {
                meta.first_text(&mut first, metrics);
                texts[index as usize].push_str(&text);
            }
            Some(Event::Done {
                index,
                finish: f,
                generated: g,
            }) => {
                finish[index as usize] = Some(f.as_str());
                generated += g;
                left -= 1;
            }
            Some(Event::Prompt { .. }) => {} // no request asks for them yet
            Some(Event::Failed(e)) => return ApiError::from(e).into_response(),
            None => return ApiError::from(JobError::ShuttingDown).into_response(),
        }
    }
    let choices = (texts.into_iter().zip(finish).enumerate())
        .map(|(i, (text, f))| choice(i as u32, text, f))
        .collect();
    json_body(&meta.object(choices, Some(meta.usage(generated))))
}

/// A streamed answer: `data: {chunk}` events, then `data: [DONE]`.
pub fn stream(meta: Meta, rx: Receiver<Event>, metrics: Arc<Metrics>) -> Response {
    let mut feed = Feed {
        left: meta.echoes.len(),
        meta,
        metrics,
        rx,
        out: VecDeque::new(),
        generated: 0,
        first: true,
        ended: false,
    };
    if feed.meta.echo {
        feed.echo();
    }
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
    generated: usize,
    /// No text has arrived yet.
    first: bool,
    ended: bool,
}

impl Feed {
    fn chunk(&self, choices: Vec<Choice>, usage: Option<Usage>) -> Sse {
        let c = self.meta.object(choices, usage);
        Sse::default().data(serde_json::to_string(&c).expect("chunks serialise"))
    }

    /// The first chunk of an `echo` request: each choice's prompt.
    fn echo(&mut self) {
        let choices: Vec<Choice> = (self.meta.echoes.iter().enumerate())
            .filter(|(_, t)| !t.is_empty())
            .map(|(i, t)| choice(i as u32, t.clone(), None))
            .collect();
        if !choices.is_empty() {
            let c = self.chunk(choices, None);
            self.out.push_back(c);
        }
    }

    fn end(&mut self) {
        if self.meta.include_usage {
            let c = self.chunk(Vec::new(), Some(self.meta.usage(self.generated)));
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

    /// Takes the next event and whatever else is ready, into chunks: one with the new text of
    /// each choice that has some, then one per choice that finished.
    fn absorb(&mut self, first: Event) {
        let mut texts: HashMap<u32, String> = HashMap::new();
        let mut done: Vec<(u32, &'static str)> = Vec::new();
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            match ev {
                Event::Text { index, text, .. } => {
                    self.meta.first_text(&mut self.first, &self.metrics);
                    texts.entry(index).or_default().push_str(&text);
                }
                Event::Done {
                    index,
                    finish,
                    generated,
                } => {
                    self.generated += generated;
                    done.push((index, finish.as_str()));
                }
                Event::Prompt { .. } => {} // no request asks for them yet
                Event::Failed(e) => return self.fail(e),
            }
            next = self.rx.try_recv().ok();
        }
        let mut texts: Vec<(u32, String)> = texts.into_iter().collect();
        texts.sort_unstable_by_key(|(index, _)| *index);
        if !texts.is_empty() {
            let choices = texts.into_iter().map(|(i, t)| choice(i, t, None));
            let c = self.chunk(choices.collect(), None);
            self.out.push_back(c);
        }
        for (index, f) in done {
            let c = self.chunk(vec![choice(index, String::new(), Some(f))], None);
            self.out.push_back(c);
            self.left -= 1;
        }
        if self.left == 0 {
            self.end();
        }
    }
}
