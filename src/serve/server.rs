//! HTTP: the routes and their handlers. A completion's handler only reads the body (refused
//! before reading when its declared length is over `--max-body`, and if it has not all come
//! within `--read-timeout`), has it validated into a job (`validation`), appends the job to its
//! model's queue (`queue`) and hands the job's events to the answer (`answer`); the scheduler
//! owns the batch. Unknown routes and methods get OpenAI's error object; `--cors` lets pages
//! from other origins call the API (tower-http's `CorsLayer`).
//!
//! Owns the routes and what every handler shares. Does not generate (`scheduler`), define the
//! wire format or the errors' statuses (`api`), gather events into answers (`answer`), know
//! the rules for a request's fields (`validation`) or hold the connections (`listen`).

use super::answer::{self, Meta};
use super::api::{json_body, model_list, ApiError};
use super::metrics::Metrics;
use super::models::Served;
use super::queue::{self, Event, Job};
use super::validation::{Api, Validation};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Receiver;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// The page at `/`: one file, no build step, nothing from elsewhere.
const PAGE: &str = include_str!("page.html");

/// What every handler shares.
pub struct App {
    pub models: Vec<Served>,
    pub validation: Validation,
    /// How long a request may take (`--timeout`).
    pub timeout: Duration,
    pub metrics: Arc<Metrics>,
    pub shutting_down: Arc<AtomicBool>,
    /// Bytes of a request body at most.
    pub max_body: usize,
    /// How long a request's body may take to arrive, once its headers have.
    pub read_timeout: Duration,
    /// Characters of a request's text that go out together (`--stream-interval`).
    pub stream_interval: usize,
}

/// The server's routes, with `cors` (from [`cors`]) when pages of other origins may call them.
pub fn router(app: Arc<App>, cors: Option<CorsLayer>) -> Router {
    let max_body = app.max_body;
    let router = Router::new()
        .route("/", get(page))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app);
    match cors {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// The CORS layer for `--cors` origins (none: no layer, so browsers keep other origins out):
/// GET and POST with any request headers, from the origins given, or any origin for `*`.
///
/// # Errors
/// An origin that is not `*` or `scheme://host[:port]`.
pub fn cors(origins: &[String]) -> crate::error::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(Any);
    if origins.iter().any(|o| o == "*") {
        return Ok(Some(layer.allow_origin(Any)));
    }
    let mut list = Vec::new();
    for o in origins {
        let well_formed = o.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !rest.contains('/')
        });
        match HeaderValue::from_str(o) {
            Ok(v) if well_formed => list.push(v),
            _ => crate::bail!(
                "--cors {o}: an origin is scheme://host[:port] with no path, e.g. http://localhost:3000, or * for any"
            ),
        }
    }
    Ok(Some(layer.allow_origin(AllowOrigin::list(list))))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn not_found() -> Response {
    ApiError::no_route().into_response()
}

async fn method_not_allowed(method: Method) -> Response {
    ApiError::method_not_allowed(method.as_str()).into_response()
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
async fn completions(State(app): State<Arc<App>>, req: Request) -> Response {
    handle(&app, req, Api::Completions).await
}

/// `POST /v1/chat/completions`.
async fn chat(State(app): State<Arc<App>>, req: Request) -> Response {
    handle(&app, req, Api::Chat).await
}

/// A request of `api`: read the body, parse and validate, queue, then answer whole or
/// streamed.
async fn handle(app: &Arc<App>, req: Request, api: Api) -> Response {
    let body = read_body(app, req).await;
    let response = match start(app, body, api) {
        Ok(q) if q.stream => answer::stream(q.meta, q.events, Arc::clone(&app.metrics)),
        Ok(q) => answer::whole(q.meta, q.events, &app.metrics).await,
        Err(e) => e.into_response(),
    };
    app.metrics.answered(response.status().as_u16());
    response
}

/// A queued request: what its answer repeats, its job's events, and whether it streams.
struct Queued {
    meta: Meta,
    events: Receiver<Event>,
    stream: bool,
}

/// A request's body: refused before reading when its declared length is over `--max-body`,
/// and when it has not all arrived within `--read-timeout`.
async fn read_body(app: &App, req: Request) -> Result<Bytes, ApiError> {
    let declared = (req.headers().get(header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body as u64) {
        return Err(ApiError::too_large(app.max_body));
    }
    match tokio::time::timeout(app.read_timeout, Bytes::from_request(req, &())).await {
        Ok(body) => body.map_err(|e| ApiError::unreadable(&e, app.max_body)),
        Err(_) => Err(ApiError::body_timeout(app.read_timeout)),
    }
}

/// Validates the body into a job and queues the job.
fn start(app: &App, body: Result<Bytes, ApiError>, api: Api) -> Result<Queued, ApiError> {
    let arrived = Instant::now();
    if app.shutting_down.load(Ordering::Acquire) {
        return Err(ApiError::shutting_down());
    }
    let body = body?;
    let mut valid = app.validation.validate(&body, &app.models, api)?;
    let (tx, rx) = queue::events(valid.streams.len(), app.stream_interval);
    let job = Job {
        id: valid.id,
        streams: std::mem::take(&mut valid.streams),
        tx,
        deadline: arrived + app.timeout,
    };
    valid.served.queue.append(job)?;
    let stream = valid.request.stream;
    let meta = Meta::new(valid, arrived);
    Ok(Queued {
        meta,
        events: rx,
        stream,
    })
}
