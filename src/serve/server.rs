//! HTTP: the routes, each handler turning a request into a job for a model's scheduler and the
//! scheduler's events into an OpenAI response (whole, or server-sent events). Handlers only
//! check, queue and stream; the scheduler owns the batch.
//!
//! Owns the routes and the answers' framing. Does not generate (`scheduler`) or define the wire
//! format (`api`) or the rules for a request's fields (`validation`).

use super::api::{json_body, model_list, now, ApiError, Choice, Completion, Usage, FINGERPRINT};
use super::metrics::Metrics;
use super::models::Served;
use super::queue::{Event, Job, JobError};
use super::validation::{CompletionRequest, Validation};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// The page at `/`: one file, no build step, nothing from elsewhere.
const PAGE: &str = include_str!("page.html");

/// What every handler shares.
pub struct App {
    pub models: Vec<Served>,
    pub validation: Validation,
    pub timeout: Duration,
    pub metrics: Arc<Metrics>,
    pub shutting_down: Arc<AtomicBool>,
    /// Bytes of a request body at most.
    pub max_body: usize,
}

/// The server's routes.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.max_body;
    Router::new()
        .route("/", get(page))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn not_found() -> Response {
    ApiError::no_route().into_response()
}

async fn health(State(app): State<Arc<App>>) -> Response {
    if app.shutting_down.load(Ordering::Acquire) {
        return ApiError::shutting_down().into_response();
    }
    json_body(&json!({"status": "ok"}))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        app.metrics.text(),
    )
        .into_response()
}

async fn models(State(app): State<Arc<App>>) -> Response {
    json_body(&model_list(&app.models))
}

/// `POST /v1/completions`.
async fn completions(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let response = match start(&app, body) {
        Ok((req, rx, meta)) if req.stream => stream(app.clone(), req, rx, meta),
        Ok((req, rx, meta)) => whole(&app, req, rx, meta).await,
        Err(e) => e.into_response(),
    };
    app.metrics.answered(response.status().as_u16());
    response
}

/// What a response repeats in every object.
struct Meta {
    id: String,
    created: u64,
    seed: u64,
    arrived: Instant,
    /// Characters of each prompt, and for each choice its prompt's text (for `echo`).
    prompt_chars: usize,
    echoes: Vec<String>,
}

/// Reads the body, validates it into a job and queues the job.
fn start(
    app: &App,
    body: Result<Bytes, BytesRejection>,
) -> Result<(CompletionRequest, UnboundedReceiver<Event>, Meta), ApiError> {
    let arrived = Instant::now();
    if app.shutting_down.load(Ordering::Acquire) {
        return Err(ApiError::shutting_down());
    }
    let body = body.map_err(|e| ApiError::unreadable(&e, app.max_body))?;
    let valid = app.validation.validate(&body, &app.models)?;
    let (tx, rx) = unbounded_channel();
    let job = Job {
        id: valid.id,
        streams: valid.streams,
        tx,
        deadline: arrived + app.timeout,
    };
    valid.served.queue.append(job)?;
    let meta = Meta {
        id: format!("cmpl-{:x}{:06x}", now(), valid.id),
        created: now(),
        seed: valid.seed,
        arrived,
        prompt_chars: valid.prompt_chars,
        echoes: valid.echoes,
    };
    Ok((valid.request, rx, meta))
}

/// A whole response, once every choice has finished.
async fn whole(
    app: &App,
    req: CompletionRequest,
    mut rx: UnboundedReceiver<Event>,
    meta: Meta,
) -> Response {
    let choices = meta.echoes.len();
    let mut texts: Vec<String> = if req.echo {
        meta.echoes.clone()
    } else {
        vec![String::new(); choices]
    };
    let mut finish = vec![None; choices];
    let (mut generated, mut left, mut first) = (0, choices, true);
    while left > 0 {
        match rx.recv().await {
            Some(Event::Text { index, text }) => {
                if std::mem::take(&mut first) {
                    app.metrics
                        .first_character_seconds
                        .observe(meta.arrived.elapsed().as_secs_f64());
                }
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
            Some(Event::Failed(e)) => return ApiError::from(e).into_response(),
            None => return ApiError::from(JobError::ShuttingDown).into_response(),
        }
    }
    let c = Completion {
        id: &meta.id,
        object: "text_completion",
        created: meta.created,
        model: &req.model,
        system_fingerprint: FINGERPRINT,
        choices: texts
            .into_iter()
            .zip(finish)
            .enumerate()
            .map(|(i, (text, f))| Choice {
                text,
                index: i as u32,
                logprobs: None,
                finish_reason: f,
            })
            .collect(),
        usage: Some(usage(meta.prompt_chars, generated)),
        seed: meta.seed,
    };
    json_body(&c)
}

fn usage(prompt: usize, completion: usize) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
    }
}

/// A streamed response's state: the events still to receive, the chunks made of them and not
/// yet sent, and what the closing usage chunk counts.
struct Feed {
    app: Arc<App>,
    req: CompletionRequest,
    meta: Meta,
    rx: UnboundedReceiver<Event>,
    out: VecDeque<Sse>,
    left: usize,
    generated: usize,
    first: bool,
    ended: bool,
}
impl Feed {
    fn chunk(&self, choices: Vec<Choice>, usage: Option<Usage>) -> Sse {
        let c = Completion {
            id: &self.meta.id,
            object: "text_completion",
            created: self.meta.created,
            model: &self.req.model,
            system_fingerprint: FINGERPRINT,
            choices,
            usage,
            seed: self.meta.seed,
        };
        Sse::default().data(serde_json::to_string(&c).expect("chunks serialise"))
    }
    fn end(&mut self) {
        if self.req.include_usage {
            let u = usage(self.meta.prompt_chars, self.generated);
            let c = self.chunk(Vec::new(), Some(u));
            self.out.push_back(c);
        }
        self.out.push_back(Sse::default().data("[DONE]"));
        self.ended = true;
    }
    /// Takes the next event and whatever else is ready, into chunks.
    fn absorb(&mut self, first: Event) {
        let mut texts: HashMap<u32, String> = HashMap::new();
        let mut done: Vec<(u32, &'static str)> = Vec::new();
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            match ev {
                Event::Text { index, text } => {
                    if std::mem::take(&mut self.first) {
                        self.app
                            .metrics
                            .first_character_seconds
                            .observe(self.meta.arrived.elapsed().as_secs_f64());
                    }
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
                Event::Failed(e) => {
                    let body = ApiError::from(e).body();
                    self.out.push_back(Sse::default().data(body.to_string()));
                    self.out.push_back(Sse::default().data("[DONE]"));
                    self.ended = true;
                    return;
                }
            }
            next = self.rx.try_recv().ok();
        }
        let mut idx: Vec<u32> = texts.keys().copied().collect();
        idx.sort_unstable();
        let choices: Vec<Choice> = idx
            .into_iter()
            .map(|index| Choice {
                text: texts.remove(&index).unwrap_or_default(),
                index,
                logprobs: None,
                finish_reason: None,
            })
            .collect();
        if !choices.is_empty() {
            let c = self.chunk(choices, None);
            self.out.push_back(c);
        }
        for (index, f) in done {
            let c = self.chunk(
                vec![Choice {
                    text: String::new(),
                    index,
                    logprobs: None,
                    finish_reason: Some(f),
                }],
                None,
            );
            self.out.push_back(c);
            self.left -= 1;
        }
        if self.left == 0 {
            self.end();
        }
    }
}

/// A streamed response: `data: {chunk}` events, then `data: [DONE]`. Text that arrives while
/// the client is busy is sent together, one chunk per choice.
fn stream(
    app: Arc<App>,
    req: CompletionRequest,
    rx: UnboundedReceiver<Event>,
    meta: Meta,
) -> Response {
    let mut feed = Feed {
        left: meta.echoes.len(),
        app,
        req,
        meta,
        rx,
        out: VecDeque::new(),
        generated: 0,
        first: true,
        ended: false,
    };
    if feed.req.echo {
        let choices = feed
            .meta
            .echoes
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(i, t)| Choice {
                text: t.clone(),
                index: i as u32,
                logprobs: None,
                finish_reason: None,
            })
            .collect::<Vec<_>>();
        if !choices.is_empty() {
            let c = feed.chunk(choices, None);
            feed.out.push_back(c);
        }
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
