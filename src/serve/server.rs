//! HTTP: the routes and their handlers. A completion's handler only reads the body, has it
//! validated into a job (`validation`), appends the job to its model's queue (`queue`) and
//! hands the job's events to the answer (`answer`); the scheduler owns the batch.
//!
//! Owns the routes and what every handler shares. Does not generate (`scheduler`), define the
//! wire format or the errors' statuses (`api`), gather events into answers (`answer`) or know
//! the rules for a request's fields (`validation`).

use super::answer::{self, Meta};
use super::api::{json_body, model_list, ApiError};
use super::metrics::Metrics;
use super::models::Served;
use super::queue::{self, Event, Job};
use super::validation::Validation;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Receiver;

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

/// `POST /v1/completions`: parse and validate, queue, then answer whole or streamed.
async fn completions(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let response = match start(&app, body) {
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

/// Reads the body, validates it into a job and queues the job.
fn start(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Queued, ApiError> {
    let arrived = Instant::now();
    if app.shutting_down.load(Ordering::Acquire) {
        return Err(ApiError::shutting_down());
    }
    let body = body.map_err(|e| ApiError::unreadable(&e, app.max_body))?;
    let mut valid = app.validation.validate(&body, &app.models)?;
    let (tx, rx) = queue::events(valid.streams.len());
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
