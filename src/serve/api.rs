//! The OpenAI shapes the server speaks: the error object (`{"error": {"message", "type",
//! "param", "code"}}`, all four keys, with the HTTP status that goes with it), the
//! `text_completion` object (whole, or one chunk of a stream: the same shape) with its legacy
//! `logprobs`, the `chat.completion` and `chat.completion.chunk` objects with theirs, `usage`,
//! and the model list. Field names and meanings follow OpenAI's API reference
//! (<https://platform.openai.com/docs/api-reference/completions> and `/chat`; docs/serving.md
//! says where this server differs); `seed` in a response and the model's `charrnn` details
//! are extensions that clients ignore.
//!
//! Owns the wire format and every error's status, type and code: the other rooms name what
//! went wrong (a constructor here, or a typed error this file maps). Does not validate
//! requests (`validation`) or generate (`scheduler`).

use super::models::Served;
use super::queue::JobError;
use crate::sample::Logprob;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};

/// The routes, as the 404 and 405 messages name them.
const ROUTES: &str = "POST /v1/completions, POST /v1/chat/completions and GET /v1/models";

/// An error as OpenAI returns it, with its HTTP status.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: invalid_request_error, rate_limit_error, server_error, …
    pub kind: &'static str,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A machine-readable code: model_not_found, queue_full, …
    pub code: Option<&'static str>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 400: a field that is missing, of the wrong type or out of range.
    pub fn bad(param: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: (!param.is_empty()).then(|| param.to_string()),
            code: None,
            retry_after: None,
        }
    }

    /// 400 with a machine-readable `code` (e.g. unknown_characters).
    pub fn bad_code(param: &str, message: impl Into<String>, code: &'static str) -> ApiError {
        let mut e = ApiError::bad(param, message);
        e.code = Some(code);
        e
    }

    /// 404: the request names a model this server does not have.
    pub fn model_not_found(model: &str, known: &[&str]) -> ApiError {
        ApiError::bad(
            "model",
            format!(
                "the model `{model}` does not exist; this server has: {}",
                known.join(", ")
            ),
        )
        .with(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
        )
    }

    /// 404: no such route.
    pub fn no_route() -> ApiError {
        ApiError::bad("", format!("no such route; the API is {ROUTES}")).with(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
        )
    }

    /// 405: the route exists, not with this method (the `Allow` header says which).
    pub fn method_not_allowed(method: &str) -> ApiError {
        ApiError::bad(
            "",
            format!("this route does not take {method}; the API is {ROUTES}"),
        )
        .with(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
        )
    }

    /// 413: a body over `max_body` bytes (declared or read).
    pub fn too_large(max_body: usize) -> ApiError {
        ApiError::bad(
            "",
            format!("the request body is larger than this server's limit of {max_body} bytes"),
        )
        .with(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
        )
    }

    /// 413 for a body over `max_body` bytes, 400 for one that cannot be read.
    pub fn unreadable(e: &BytesRejection, max_body: usize) -> ApiError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::too_large(max_body);
        }
        ApiError::bad("", format!("cannot read the request body: {e}"))
    }

    /// 408: the body did not all arrive within `limit` (`--read-timeout`).
    pub fn body_timeout(limit: std::time::Duration) -> ApiError {
        ApiError::bad(
            "",
            format!(
                "the request body did not arrive within {} s (--read-timeout)",
                limit.as_secs_f64()
            ),
        )
        .with(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
        )
    }

    /// 429 with Retry-After: the model's queue is full.
    pub fn queue_full() -> ApiError {
        let mut e = ApiError::bad(
            "",
            "the server is overloaded: its queue is full; retry after a second",
        )
        .with(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "queue_full",
        );
        e.retry_after = Some(1);
        e
    }

    /// 503: the server is shutting down.
    pub fn shutting_down() -> ApiError {
        ApiError::bad(
            "",
            "the server is shutting down; try again elsewhere or later",
        )
        .with(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "shutting_down",
        )
    }

    /// 504: the request ran past `--timeout`.
    pub fn timeout() -> ApiError {
        ApiError::bad(
            "",
            "the request ran past the server's time limit (--timeout); ask for fewer characters",
        )
        .with(StatusCode::GATEWAY_TIMEOUT, "server_error", "timeout")
    }

    /// Replaces the status, type and code.
    fn with(mut self, status: StatusCode, kind: &'static str, code: &'static str) -> ApiError {
        self.status = status;
        self.kind = kind;
        self.code = Some(code);
        self
    }

    /// The JSON error object.
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> ApiError {
        match e {
            JobError::QueueFull => ApiError::queue_full(),
            JobError::ShuttingDown => ApiError::shutting_down(),
            JobError::TimedOut => ApiError::timeout(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, json_body(&self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        // A body not read (too large, or too slow) leaves nothing to keep the connection for.
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// A JSON body with its content type.
pub fn json_body(v: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(v).expect("API values serialise");
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// One choice of a completion (or of one chunk of a stream).
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub text: String,
    pub index: u32,
    pub logprobs: Option<TextLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// A completion choice's `logprobs`, OpenAI's legacy shape: one entry per token, and a token
/// is a character here.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TextLogprobs {
    pub tokens: Vec<String>,
    /// Null for the prompt's first character, which nothing before it predicts.
    pub token_logprobs: Vec<Option<f32>>,
    /// The most likely characters and theirs, most likely first, plus the token itself when it
    /// is not among them (as OpenAI and vLLM give); null where `token_logprobs` is.
    pub top_logprobs: Vec<Option<Top>>,
    /// Each token's offset in characters in the choice's text (the text of every chunk of a
    /// stream, joined), as vLLM counts.
    pub text_offset: Vec<usize>,
}

/// `{character: logprob}` in order, most likely first.
#[derive(Clone, Debug, PartialEq)]
pub struct Top(pub Vec<(char, f32)>);

impl Serialize for Top {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(c, l)| (c.to_string(), l)))
    }
}

impl TextLogprobs {
    /// The entries of an unscored first character `first` (the prompt's, with `echo`), then of
    /// `scores`, the first at `offset` characters into the choice's text, with `k`
    /// alternatives each.
    pub fn new(first: Option<char>, scores: &[Logprob], offset: usize, k: usize) -> TextLogprobs {
        let n = scores.len() + usize::from(first.is_some());
        let mut t = TextLogprobs {
            tokens: Vec::with_capacity(n),
            token_logprobs: Vec::with_capacity(n),
            top_logprobs: Vec::with_capacity(n),
            text_offset: (offset..offset + n).collect(),
        };
        if let Some(c) = first {
            t.tokens.push(c.to_string());
            t.token_logprobs.push(None);
            t.top_logprobs.push(None);
        }
        for lp in scores {
            t.tokens.push(lp.char.to_string());
            t.token_logprobs.push(Some(lp.logprob));
            let mut top: Vec<(char, f32)> = lp.top.iter().take(k).copied().collect();
            if !top.iter().any(|(c, _)| *c == lp.char) {
                top.push((lp.char, lp.logprob));
            }
            t.top_logprobs.push(Some(Top(top)));
        }
        t
    }
}

/// A chat choice's `logprobs`: `{"content": [...], "refusal": null}`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChatLogprobs {
    pub content: Vec<ChatLogprob>,
    pub refusal: Option<Vec<ChatLogprob>>,
}

/// One token (character) of a chat reply with its log-probability, its UTF-8 bytes and the
/// most likely characters at its place.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChatLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<ChatTop>,
}

/// One of the most likely characters at a place.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChatTop {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

impl ChatLogprobs {
    /// The entries of `scores`, with `k` alternatives each.
    pub fn new(scores: &[Logprob], k: usize) -> ChatLogprobs {
        let top = |c: char, logprob: f32| ChatTop {
            token: c.to_string(),
            logprob,
            bytes: c.to_string().into_bytes(),
        };
        let content = scores
            .iter()
            .map(|lp| ChatLogprob {
                token: lp.char.to_string(),
                logprob: lp.logprob,
                bytes: lp.char.to_string().into_bytes(),
                top_logprobs: lp.top.iter().take(k).map(|&(c, l)| top(c, l)).collect(),
            })
            .collect();
        ChatLogprobs {
            content,
            refusal: None,
        }
    }
}

/// One choice of a whole chat completion.
#[derive(Clone, Debug, Serialize)]
pub struct ChatChoice {
    pub index: u32,
    pub message: Message,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// The assistant's reply.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

/// One choice of a `chat.completion.chunk`: what its reply gained.
#[derive(Clone, Debug, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// A chunk's addition to a reply: the role in a choice's first chunk, then text; nothing in
/// the chunk that gives the finish reason.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `usage`: characters are this model's tokens.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

/// A response object, whole or one chunk of a stream: `text_completion` (whose chunks have the
/// same shape) with `Choice`s, `chat.completion` with `ChatChoice`s, or
/// `chat.completion.chunk` with `ChunkChoice`s.
#[derive(Clone, Debug, Serialize)]
pub struct Completion<'a, C> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub system_fingerprint: &'static str,
    pub choices: Vec<C>,
    /// Whole responses have it; stream chunks carry null, and (with
    /// `stream_options.include_usage`) a last chunk with no choices carries it.
    pub usage: Option<Usage>,
    /// Extension: the seed of choice 0 (choice k used seed + k), so a text can be reproduced.
    pub seed: u64,
}

/// What a response says about the build that made it (OpenAI's `system_fingerprint`).
pub const FINGERPRINT: &str = concat!(
    "charrnn-",
    env!("CARGO_PKG_VERSION"),
    "-",
    env!("CHARRNN_COMMIT")
);

/// `GET /v1/models`: OpenAI's list of `model` objects, each with the extension `charrnn`
/// (cell, size, vocabulary, precision, checkpoint).
pub fn model_list(models: &[Served]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|s| {
            let c = s.model.config();
            json!({
                "id": s.name,
                "object": "model",
                "created": s.created,
                "owned_by": "charrnn",
                "charrnn": {
                    "cell": c.cell.name(),
                    "layers": c.layers,
                    "hidden": c.hidden,
                    "vocabulary": s.model.vocab().len(),
                    "precision": s.model.precision().name(),
                    "checkpoint": s.path,
                },
            })
        })
        .collect();
    json!({"object": "list", "data": data})
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
