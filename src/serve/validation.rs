//! Request validation: a `POST /v1/completions` or `POST /v1/chat/completions` body into a job
//! ready to queue (its model looked up, its prompts encoded to ids, each choice's stream with
//! its stop strings, seed and log-probabilities), or an error that names the field and says
//! what it must be. A chat's messages become its one prompt through the chat template
//! (`chat`), whose turn markers join its stop strings. Fields OpenAI defines but this server
//! cannot honour (token-array prompts, penalties, logit bias, suffix, best_of, tools) are
//! refused rather than silently ignored; fields it does not know are ignored, as vLLM does, so
//! that clients that send extras keep working.
//!
//! Owns the rules for each field and the request's number. Does not queue (`queue`), render
//! messages (`chat`) or say what status an error gets (`api`'s constructors do).

use super::api::ApiError;
use super::chat::{Message, Template};
use super::models::Served;
use crate::sample::{Model, Settings, Stream};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's limits on what one request may ask for.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Characters one choice may generate (`max_tokens`).
    pub max_tokens: usize,
    /// `max_tokens` when the request does not say (OpenAI's default is 16).
    pub default_max_tokens: usize,
    /// Choices per request (`n` times the prompts).
    pub max_choices: usize,
    /// Characters of one prompt.
    pub max_prompt_chars: usize,
}

/// Which API a request came through, and so the shape of its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/completions`: `text_completion` objects.
    Completions,
    /// `POST /v1/chat/completions`: `chat.completion` objects and their chunks.
    Chat,
}

/// A checked request of either API: its prompts, and how each of its choices generates.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
    pub api: Api,
    pub model: String,
    /// One or more prompts (an absent prompt is one empty prompt).
    pub prompts: Vec<String>,
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_p: Option<f64>,
    /// Extension: draw only from the k most likely characters.
    pub top_k: Option<usize>,
    /// None: the server picks one and reports it.
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub n: usize,
    pub stream: bool,
    pub include_usage: bool,
    pub echo: bool,
    /// Extension: drop prompt characters the model does not know instead of a 400.
    pub skip_unknown: bool,
    /// Log-probabilities asked for, with this many alternatives per character (`logprobs`
    /// 0–5; chat's `top_logprobs` 0–20 with `logprobs: true`); None: none.
    pub logprobs: Option<usize>,
}

/// What validates requests: the server's limits, the chat template, and the number the next
/// request gets.
pub struct Validation {
    limits: Limits,
    template: Template,
    next_id: AtomicU64,
}

/// A request ready to queue: its model, number and streams, and what its answer repeats.
pub struct Valid<'m> {
    /// The request's fields, checked.
    pub request: CompletionRequest,
    /// The model it asks for.
    pub served: &'m Served,
    /// The request's number, from 1 (the scheduler's key for it).
    pub id: u64,
    /// The seed of choice 0 (choice k uses seed + k): the request's, or one picked for it.
    pub seed: u64,
    /// The choices' streams, in choice order: each prompt's `n` choices in turn.
    pub streams: Vec<Stream>,
    /// For each choice, its prompt's text as encoded (without skipped characters), for `echo`.
    pub echoes: Vec<String>,
    /// Characters of the prompts, each counted once (`usage.prompt_tokens`).
    pub prompt_chars: usize,
}

impl Validation {
    /// Validation within `limits`, chats through `template`; the first request is number 1.
    pub fn new(limits: Limits, template: Template) -> Validation {
        Validation {
            limits,
            template,
            next_id: AtomicU64::new(1),
        }
    }

    /// Checks a request body of `api` and turns it into a job for one of `models`.
    ///
    /// # Errors
    /// As [`parse`] and [`parse_chat`]; a model `models` lacks (404 `model_not_found`); prompt
    /// characters the model does not know (400 `unknown_characters`) unless the request skips
    /// them.
    pub fn validate<'m>(
        &self,
        body: &[u8],
        models: &'m [Served],
        api: Api,
    ) -> Result<Valid<'m>, ApiError> {
        let request = match api {
            Api::Completions => parse(body, &self.limits)?,
            Api::Chat => parse_chat(body, &self.limits, &self.template)?,
        };
        let Some(served) = models.iter().find(|m| m.name == request.model) else {
            let known: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
            return Err(ApiError::model_not_found(&request.model, &known));
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let seed = request.seed.unwrap_or_else(|| pick_seed(id));
        let (mut streams, mut echoes, mut prompt_chars) = (Vec::new(), Vec::new(), 0);
        for prompt in &request.prompts {
            let (text, ids) = encode(&served.model, prompt, request.skip_unknown)?;
            prompt_chars += text.chars().count();
            for _ in 0..request.n {
                let seed = seed.wrapping_add(streams.len() as u64);
                streams.push(Stream::new(ids.clone(), &settings(&request, seed)));
                echoes.push(text.clone());
            }
        }
        Ok(Valid {
            request,
            served,
            id,
            seed,
            streams,
            echoes,
            prompt_chars,
        })
    }
}

/// A seed for request `id`, which did not give one: from the clock and the number, below 2^63.
fn pick_seed(id: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    crate::rng::Rng::new(nanos ^ id.rotate_left(32)).next_u64() >> 1
}

/// One choice's generation settings.
fn settings(r: &CompletionRequest, seed: u64) -> Settings {
    Settings {
        seed,
        temperature: r.temperature,
        top_k: r.top_k,
        top_p: r.top_p,
        stop: r.stop.clone(),
        max_chars: Some(r.max_tokens),
        log_prob: false,
        logprobs: r.logprobs,
        prompt_logprobs: r.echo && r.logprobs.is_some(),
    }
}

/// A prompt's text (without the characters it skips) and ids: characters the model does not
/// know are a 400 naming them, unless the request asks to skip them.
fn encode(model: &Model, prompt: &str, skip_unknown: bool) -> Result<(String, Vec<u32>), ApiError> {
    let vocab = model.vocab();
    let mut unknown: Vec<char> = prompt.chars().filter(|&c| vocab.id(c).is_none()).collect();
    if unknown.is_empty() || vocab.unk.is_some() {
        let ids = model
            .encode_prompt(prompt)
            .map_err(|e| ApiError::bad("prompt", e.msg))?;
        return Ok((prompt.to_string(), ids));
    }
    if skip_unknown {
        let kept: String = prompt.chars().filter(|&c| vocab.id(c).is_some()).collect();
        let ids = model
            .encode_prompt(&kept)
            .map_err(|e| ApiError::bad("prompt", e.msg))?;
        return Ok((kept, ids));
    }
    unknown.sort_unstable();
    unknown.dedup();
    let shown: Vec<String> = unknown.iter().take(10).map(|c| format!("{c:?}")).collect();
    Err(ApiError::bad_code(
        "prompt",
        format!(
            "the prompt has characters the model does not know: {}{}; use characters of its training text, or send \"skip_unknown\": true to drop them",
            shown.join(" "),
            if unknown.len() > 10 { " …" } else { "" }
        ),
        "unknown_characters",
    ))
}

/// Parses and checks a completions body.
///
/// # Errors
/// A 400 `invalid_request_error` naming the field.
pub fn parse(body: &[u8], limits: &Limits) -> Result<CompletionRequest, ApiError> {
    let o = object(body)?;
    refuse_unsupported(&o, Api::Completions)?;
    let model = model(&o)?;
    let prompts = prompts(o.get("prompt"), limits)?;
    let (default, most) = (limits.default_max_tokens as u64, limits.max_tokens as u64);
    let max_tokens = int(&o, "max_tokens", default, 0, most)? as usize;
    let mut r = common(&o, model, prompts, max_tokens, limits)?;
    r.echo = boolean(&o, "echo", false)?;
    r.logprobs = match o.get("logprobs") {
        None | Some(Value::Null) => None,
        Some(_) => Some(int(&o, "logprobs", 0, 0, 5)? as usize),
    };
    Ok(r)
}

/// Parses and checks a chat body: its messages rendered by `template` into its prompt, the
/// template's turn markers added to its stop strings. `max_completion_tokens` (or the older
/// `max_tokens`) defaults to the server's limit, as a chat reply ends at its turn marker.
///
/// # Errors
/// A 400 `invalid_request_error` naming the field.
pub fn parse_chat(
    body: &[u8],
    limits: &Limits,
    template: &Template,
) -> Result<CompletionRequest, ApiError> {
    let o = object(body)?;
    refuse_unsupported(&o, Api::Chat)?;
    let model = model(&o)?;
    let messages = messages(o.get("messages"))?;
    let (prompt, turn) = (template.render(&messages)).map_err(|e| ApiError::bad("messages", e))?;
    prompt_length(&prompt, "messages", limits)?;
    let most = limits.max_tokens as u64;
    let max_tokens = match o.get("max_completion_tokens") {
        None | Some(Value::Null) => int(&o, "max_tokens", most, 0, most)?,
        Some(_) => int(&o, "max_completion_tokens", most, 0, most)?,
    };
    let mut r = common(&o, model, vec![prompt], max_tokens as usize, limits)?;
    r.api = Api::Chat;
    r.logprobs = chat_logprobs(&o)?;
    r.stop.extend(turn);
    Ok(r)
}

/// The fields both APIs share, for `prompts` and `max_tokens` characters per choice.
fn common(
    o: &Map<String, Value>,
    model: String,
    prompts: Vec<String>,
    max_tokens: usize,
    limits: &Limits,
) -> Result<CompletionRequest, ApiError> {
    let n = n(o, prompts.len(), limits)?;
    let stream = boolean(o, "stream", false)?;
    let include_usage = include_usage(o, stream)?;
    Ok(CompletionRequest {
        api: Api::Completions,
        model,
        prompts,
        max_tokens,
        temperature: number(o, "temperature", 1.0, 0.0, 2.0)? as f32,
        top_p: top_p(o)?,
        top_k: top_k(o)?,
        seed: seed(o)?,
        stop: stops(o.get("stop"))?,
        n,
        stream,
        include_usage,
        echo: false,
        skip_unknown: boolean(o, "skip_unknown", false)?,
        logprobs: None,
    })
}

/// Chat's `logprobs` (true or false) and `top_logprobs` (0–20, only with `logprobs`).
fn chat_logprobs(o: &Map<String, Value>) -> Result<Option<usize>, ApiError> {
    let on = boolean(o, "logprobs", false)?;
    match o.get("top_logprobs") {
        None | Some(Value::Null) => Ok(on.then_some(0)),
        Some(_) if !on => Err(ApiError::bad(
            "top_logprobs",
            "'top_logprobs' needs \"logprobs\": true",
        )),
        Some(_) => Ok(Some(int(o, "top_logprobs", 0, 0, 20)? as usize)),
    }
}

/// A chat's messages: a non-empty array of `{role, content, name?}`.
fn messages(v: Option<&Value>) -> Result<Vec<Message>, ApiError> {
    match v {
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, m)| message(i, m))
            .collect(),
        _ => Err(ApiError::bad(
            "messages",
            "'messages' must be a non-empty array of {\"role\", \"content\"} objects",
        )),
    }
}

/// Message `i`: its role (system, developer, user or assistant), its text and its name.
fn message(i: usize, m: &Value) -> Result<Message, ApiError> {
    let param = format!("messages[{i}]");
    let bad = |why: &str| Err(ApiError::bad(&param, format!("{param}: {why}")));
    let Value::Object(m) = m else {
        return bad("a message must be an object with 'role' and 'content'");
    };
    let role = match m.get("role").and_then(Value::as_str) {
        Some(r @ ("system" | "developer" | "user" | "assistant")) => r,
        Some("tool" | "function") => return bad("tool and function messages are not supported"),
        _ => return bad("'role' must be system, developer, user or assistant"),
    };
    if m.get("tool_calls")
        .is_some_and(|t| !t.is_null() && t != &Value::Array(Vec::new()))
    {
        return bad("tool calls are not supported");
    }
    let name = match m.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return bad("'name' must be a string"),
    };
    let content =
        match m.get("content") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                match parts.iter().map(text_part).collect::<Option<String>>() {
                    Some(t) => t,
                    None => return bad(
                        "only text content parts ({\"type\": \"text\", \"text\": …}) are supported",
                    ),
                }
            }
            Some(_) => return bad("'content' must be a string or an array of text parts"),
        };
    Ok(Message {
        role: role.to_string(),
        content,
        name,
    })
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("", format!("the body is not valid JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(ApiError::bad("", "the body must be a JSON object"));
    };
    Ok(o)
}

fn model(o: &Map<String, Value>) -> Result<String, ApiError> {
    match o.get("model") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(ApiError::bad(
            "model",
            "'model' must be a model name (a string); GET /v1/models lists them",
        )),
        None => Err(ApiError::bad(
            "model",
            "'model' is required; GET /v1/models lists the models",
        )),
    }
}

/// `n`, choices per prompt: the `prompts` times `n` within the server's limit.
fn n(o: &Map<String, Value>, prompts: usize, limits: &Limits) -> Result<usize, ApiError> {
    let n = int(o, "n", 1, 1, limits.max_choices as u64)? as usize;
    if n * prompts > limits.max_choices {
        return Err(ApiError::bad(
            "n",
            format!(
                "{prompts} prompts × n = {n} is {} choices; this server allows {} per request",
                n * prompts,
                limits.max_choices
            ),
        ));
    }
    Ok(n)
}

/// `stream_options.include_usage`, only with `stream`.
fn include_usage(o: &Map<String, Value>, stream: bool) -> Result<bool, ApiError> {
    match o.get("stream_options") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(so)) if stream => boolean(so, "include_usage", false),
        Some(Value::Object(_)) => Err(ApiError::bad(
            "stream_options",
            "'stream_options' is only allowed with \"stream\": true",
        )),
        Some(_) => Err(ApiError::bad(
            "stream_options",
            "'stream_options' must be an object",
        )),
    }
}

/// `top_p` in (0, 1]; 1 is off.
fn top_p(o: &Map<String, Value>) -> Result<Option<f64>, ApiError> {
    match number(o, "top_p", 1.0, 0.0, 1.0)? {
        p if p <= 0.0 => Err(ApiError::bad(
            "top_p",
            "'top_p' must be above 0 and at most 1",
        )),
        p if p >= 1.0 => Ok(None),
        p => Ok(Some(p)),
    }
}

/// `top_k` (extension) of 1 or more; 0 and -1 are off, as in vLLM.
fn top_k(o: &Map<String, Value>) -> Result<Option<usize>, ApiError> {
    match o.get("top_k") {
        None | Some(Value::Null) => Ok(None),
        Some(v) if v.as_i64().is_some_and(|k| k == -1 || k == 0) => Ok(None),
        Some(_) => Ok(Some(int(o, "top_k", 1, 1, u32::MAX as u64)? as usize)),
    }
}

fn seed(o: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    match o.get("seed") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::bad(
                "seed",
                format!("'seed' must be an integer from 0 to {}, got {v}", u64::MAX),
            )
        }),
    }
}

/// The text of a content part `{"type": "text", "text": …}`; None for any other part.
fn text_part(p: &Value) -> Option<&str> {
    (p["type"] == "text").then(|| p["text"].as_str()).flatten()
}

/// OpenAI fields of `api` this server cannot honour: refused unless absent or neutral.
fn refuse_unsupported(o: &Map<String, Value>, api: Api) -> Result<(), ApiError> {
    let neutral = |key: &str, ok: &dyn Fn(&Value) -> bool| match o.get(key) {
        None | Some(Value::Null) => true,
        Some(v) => ok(v),
    };
    let zero = |v: &Value| v.as_f64() == Some(0.0);
    let empty = |v: &Value| v.as_array().is_some_and(Vec::is_empty);
    let mut checks: Vec<(&str, bool, &str)> = vec![
        (
            "frequency_penalty",
            neutral("frequency_penalty", &zero),
            "penalties are not supported; leave 'frequency_penalty' at 0",
        ),
        (
            "presence_penalty",
            neutral("presence_penalty", &zero),
            "penalties are not supported; leave 'presence_penalty' at 0",
        ),
        (
            "logit_bias",
            neutral("logit_bias", &|v| v.as_object().is_some_and(Map::is_empty)),
            "'logit_bias' is not supported",
        ),
    ];
    match api {
        Api::Completions => checks.extend([
            (
                "suffix",
                neutral("suffix", &|v| v.as_str() == Some("")),
                "'suffix' (insertion) is not supported",
            ),
            (
                "best_of",
                neutral("best_of", &|v| v.as_u64() == Some(1)),
                "'best_of' is not supported; use 'n'",
            ),
        ]),
        Api::Chat => checks.extend([
            ("tools", neutral("tools", &empty), "tools are not supported"),
            (
                "functions",
                neutral("functions", &empty),
                "functions are not supported",
            ),
            (
                "response_format",
                neutral("response_format", &|v| v["type"] == "text"),
                "only the text response format is supported",
            ),
        ]),
    }
    match checks.into_iter().find(|(_, ok, _)| !ok) {
        Some((param, _, why)) => Err(ApiError::bad(param, why)),
        None => Ok(()),
    }
}

fn prompts(v: Option<&Value>, limits: &Limits) -> Result<Vec<String>, ApiError> {
    let list = match v {
        None | Some(Value::Null) => vec![String::new()],
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
            a.iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect()
        }
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(|x| x.is_number() || x.is_array()) => {
            return Err(ApiError::bad(
                "prompt",
                "token arrays are not supported: this model's tokens are characters; send the prompt as text",
            ))
        }
        Some(_) => return Err(ApiError::bad("prompt", "'prompt' must be a string or a non-empty array of strings")),
    };
    for p in &list {
        prompt_length(p, "prompt", limits)?;
    }
    Ok(list)
}

/// A prompt within the server's limit of characters (`param` is what it came from).
fn prompt_length(prompt: &str, param: &str, limits: &Limits) -> Result<(), ApiError> {
    let n = prompt.chars().count();
    if n <= limits.max_prompt_chars {
        return Ok(());
    }
    Err(ApiError::bad(
        param,
        format!(
            "the prompt has {n} characters; this server allows {}",
            limits.max_prompt_chars
        ),
    ))
}

fn stops(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list: Vec<String> = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect(),
        Some(_) => {
            return Err(ApiError::bad(
                "stop",
                "'stop' must be a string or an array of up to 4 strings",
            ))
        }
    };
    if list.len() > 4 {
        return Err(ApiError::bad(
            "stop",
            format!("'stop' has {} strings; at most 4 are allowed", list.len()),
        ));
    }
    if let Some(why) = crate::sample::stop::refused(&list) {
        return Err(ApiError::bad("stop", format!("'stop' strings {why}")));
    }
    Ok(list)
}

/// An integer field in `lo..=hi`, `default` when absent or null.
fn int(o: &Map<String, Value>, key: &str, default: u64, lo: u64, hi: u64) -> Result<u64, ApiError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(x) if (lo..=hi).contains(&x) => Ok(x),
            _ => Err(ApiError::bad(
                key,
                format!("'{key}' must be an integer from {lo} to {hi}, got {v}"),
            )),
        },
    }
}

/// A number field in `lo..=hi`, `default` when absent or null.
fn number(
    o: &Map<String, Value>,
    key: &str,
    default: f64,
    lo: f64,
    hi: f64,
) -> Result<f64, ApiError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_f64() {
            Some(x) if x >= lo && x <= hi => Ok(x),
            _ => Err(ApiError::bad(
                key,
                format!("'{key}' must be a number from {lo} to {hi}, got {v}"),
            )),
        },
    }
}

fn boolean(o: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ApiError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(ApiError::bad(
            key,
            format!("'{key}' must be true or false, got {v}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::models::Loaded;
    use crate::serve::queue::{channel, Waiting};

    const LIMITS: Limits = Limits {
        max_tokens: 4096,
        default_max_tokens: 16,
        max_choices: 8,
        max_prompt_chars: 100,
    };

    fn p(body: &str) -> Result<CompletionRequest, ApiError> {
        parse(body.as_bytes(), &LIMITS)
    }

    /// The small test checkpoint, served as `tiny`.
    fn tiny() -> (Served, Waiting) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/format-v1-lstm-2x16.safetensors"
        );
        let model = std::sync::Arc::new(Model::load(path).unwrap());
        let (queue, far) = channel(1);
        let loaded = Loaded {
            name: "tiny".into(),
            model,
            path: path.into(),
        };
        (loaded.served(queue), far)
    }

    #[test]
    fn a_request_becomes_a_job_for_its_model() {
        let (served, _far) = tiny();
        let models = [served];
        let v = Validation::new(LIMITS, Template::script());
        let body = r#"{"model":"tiny","prompt":["the ","he"],"n":2,"seed":40,"max_tokens":3}"#;
        let a = v
            .validate(body.as_bytes(), &models, Api::Completions)
            .unwrap();
        assert_eq!((a.id, a.seed, a.streams.len()), (1, 40, 4));
        assert_eq!(a.echoes, ["the ", "the ", "he", "he"]);
        assert_eq!((a.prompt_chars, a.served.name.as_str()), (6, "tiny"));
        assert_eq!(a.streams[2].prompt_len(), 2);
        let b = v
            .validate(br#"{"model":"tiny"}"#, &models, Api::Completions)
            .unwrap();
        assert_eq!((b.id, b.echoes.len(), b.streams[0].prompt_len()), (2, 1, 1));
        let err = |body: &[u8]| {
            v.validate(body, &models, Api::Completions)
                .map(|_| ())
                .unwrap_err()
        };
        let e = err(br#"{"model":"big"}"#);
        assert_eq!((e.status.as_u16(), e.code), (404, Some("model_not_found")));
        assert!(
            e.message.ends_with("this server has: tiny"),
            "{}",
            e.message
        );
        let e = err(br#"{"model":"tiny","prompt":"the \u2603"}"#);
        assert_eq!(
            (e.status.as_u16(), e.code),
            (400, Some("unknown_characters"))
        );
        let body = br#"{"model":"tiny","prompt":"the \u2603","skip_unknown":true}"#;
        let c = v.validate(body, &models, Api::Completions).unwrap();
        assert_eq!((c.echoes[0].as_str(), c.prompt_chars), ("the ", 4));
    }

    #[test]
    fn a_full_request_and_the_defaults() {
        let r = p(r#"{"model":"fairy","prompt":"The emperor","max_tokens":300,"temperature":0.8,"seed":7,"stream":true,"stop":["\n"],"top_p":0.9,"top_k":5,"n":2,"user":"x","extra":1}"#).unwrap();
        assert_eq!(
            (
                r.model.as_str(),
                r.prompts.len(),
                r.max_tokens,
                r.seed,
                r.n,
                r.stream
            ),
            ("fairy", 1, 300, Some(7), 2, true)
        );
        assert_eq!((r.top_p, r.top_k, r.stop.len()), (Some(0.9), Some(5), 1));
        let e = p(r#"{"model":"m","prompt":"x","echo":true,"logprobs":5}"#).unwrap();
        assert_eq!(
            (e.echo, e.logprobs, e.api),
            (true, Some(5), Api::Completions)
        );
        let d = p(r#"{"model":"m"}"#).unwrap();
        assert_eq!(
            (d.prompts, d.max_tokens, d.temperature, d.n, d.logprobs),
            (vec![String::new()], 16, 1.0, 1, None)
        );
    }

    fn chat(body: &str) -> Result<CompletionRequest, ApiError> {
        parse_chat(body.as_bytes(), &LIMITS, &Template::script())
    }

    #[test]
    fn a_chat_becomes_one_prompt_that_stops_at_the_turn_marker() {
        let r = chat(
            r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},
                {"role":"user","content":[{"type":"text","text":"Hello"},{"type":"text","text":" there"}],"name":"ANNA"}],
                "stop":"END","n":2,"seed":3,"logprobs":true,"top_logprobs":4,"stream":true}"#,
        )
        .unwrap();
        assert_eq!(r.api, Api::Chat);
        assert_eq!(
            r.prompts,
            ["System: Be brief.\n\nANNA: Hello there\n\nAssistant: "]
        );
        assert_eq!(r.stop, ["END", "\n\n"]);
        assert_eq!(
            (r.n, r.seed, r.logprobs, r.max_tokens),
            (2, Some(3), Some(4), 4096)
        );
        assert!(!r.echo);
        let m = |extra: &str| {
            chat(&format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{extra}}}"#
            ))
        };
        assert_eq!(m(r#","max_tokens":7"#).unwrap().max_tokens, 7);
        assert_eq!(
            m(r#","max_tokens":7,"max_completion_tokens":9"#)
                .unwrap()
                .max_tokens,
            9
        );
        assert_eq!(m(r#","logprobs":true"#).unwrap().logprobs, Some(0));
        assert_eq!(
            m(r#","logprobs":false,"tools":[],"response_format":{"type":"text"}"#)
                .unwrap()
                .logprobs,
            None
        );
        for (extra, param) in [
            (r#","top_logprobs":2"#, "top_logprobs"),
            (r#","logprobs":true,"top_logprobs":21"#, "top_logprobs"),
            (r#","max_completion_tokens":5000"#, "max_completion_tokens"),
            (r#","tools":[{"type":"function"}]"#, "tools"),
            (
                r#","response_format":{"type":"json_object"}"#,
                "response_format",
            ),
            (r#","presence_penalty":1"#, "presence_penalty"),
        ] {
            let e = m(extra).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.param.as_deref()),
                (400, Some(param)),
                "{extra}"
            );
        }
        for (messages, param) in [
            ("", "messages"),
            (r#","messages":[]"#, "messages"),
            (r#","messages":"hi""#, "messages"),
            (
                r#","messages":[{"role":"tool","content":"x"}]"#,
                "messages[0]",
            ),
            (
                r#","messages":[{"role":"user","content":"x"},{"role":"bot","content":"y"}]"#,
                "messages[1]",
            ),
            (
                r#","messages":[{"role":"user","content":[{"type":"image_url"}]}]"#,
                "messages[0]",
            ),
            (
                r#","messages":[{"role":"user","content":5}]"#,
                "messages[0]",
            ),
            (
                r#","messages":[{"role":"user","content":"x","name":3}]"#,
                "messages[0]",
            ),
        ] {
            let e = chat(&format!(r#"{{"model":"m"{messages}}}"#)).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{messages}: {}", e.message);
        }
        let long = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "a".repeat(100)
        );
        assert_eq!(chat(&long).unwrap_err().param.as_deref(), Some("messages"));
    }

    #[test]
    fn each_bad_field_is_named() {
        for (body, param) in [
            ("[1]", None),
            ("{", None),
            (r#"{"prompt":"x"}"#, Some("model")),
            (r#"{"model":"m","prompt":[1,2]}"#, Some("prompt")),
            (r#"{"model":"m","prompt":5}"#, Some("prompt")),
            (r#"{"model":"m","max_tokens":-1}"#, Some("max_tokens")),
            (r#"{"model":"m","max_tokens":1e12}"#, Some("max_tokens")),
            (r#"{"model":"m","max_tokens":"10"}"#, Some("max_tokens")),
            (r#"{"model":"m","temperature":3}"#, Some("temperature")),
            (r#"{"model":"m","top_p":0}"#, Some("top_p")),
            (r#"{"model":"m","seed":-5}"#, Some("seed")),
            (
                r#"{"model":"m","stop":["a","b","c","d","e"]}"#,
                Some("stop"),
            ),
            (r#"{"model":"m","stop":[""]}"#, Some("stop")),
            (r#"{"model":"m","n":0}"#, Some("n")),
            (r#"{"model":"m","n":5,"prompt":["a","b"]}"#, Some("n")),
            (r#"{"model":"m","stream":"yes"}"#, Some("stream")),
            (
                r#"{"model":"m","stream_options":{"include_usage":true}}"#,
                Some("stream_options"),
            ),
            (r#"{"model":"m","logprobs":6}"#, Some("logprobs")),
            (
                r#"{"model":"m","presence_penalty":0.5}"#,
                Some("presence_penalty"),
            ),
            (r#"{"model":"m","prompt":"x","suffix":"y"}"#, Some("suffix")),
        ] {
            let e = p(body).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{body}");
            assert_eq!(e.param.as_deref(), param, "{body}: {}", e.message);
            let b = e.body();
            assert!(
                b["error"]["type"] == "invalid_request_error" && b["error"].get("code").is_some()
            );
        }
    }
}
