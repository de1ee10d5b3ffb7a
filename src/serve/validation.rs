//! Request validation: a `POST /v1/completions` body into a job ready to queue (its model
//! looked up, its prompts encoded to ids, each choice's stream with its stop strings and
//! seed), or an error that names the field and says what it must be. Fields OpenAI defines but
//! this server cannot honour (token-array prompts, logprobs, penalties, logit bias, suffix,
//! best_of) are refused rather than silently ignored; fields it does not know are ignored, as
//! vLLM does, so that clients that send extras keep working.
//!
//! Owns the rules for each field and the request's number. Does not queue (`queue`) or say
//! what status an error gets (`api`'s constructors do).

use super::api::ApiError;
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

/// A checked completion request.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
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
}

/// What validates requests: the server's limits, and the number the next request gets.
pub struct Validation {
    limits: Limits,
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
    /// Validation within `limits`; the first request is number 1.
    pub fn new(limits: Limits) -> Validation {
        Validation {
            limits,
            next_id: AtomicU64::new(1),
        }
    }

    /// Checks a request body and turns it into a job for one of `models`.
    ///
    /// # Errors
    /// As [`parse`]; a model `models` lacks (404 `model_not_found`); prompt characters the
    /// model does not know (400 `unknown_characters`) unless the request skips them.
    pub fn validate<'m>(&self, body: &[u8], models: &'m [Served]) -> Result<Valid<'m>, ApiError> {
        let request = parse(body, &self.limits)?;
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
        ..Settings::default()
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

/// Parses and checks a request body.
///
/// # Errors
/// A 400 `invalid_request_error` naming the field.
pub fn parse(body: &[u8], limits: &Limits) -> Result<CompletionRequest, ApiError> {
    let o = object(body)?;
    refuse_unsupported(&o)?;
    let model = model(&o)?;
    let prompts = prompts(o.get("prompt"), limits)?;
    let n = n(&o, prompts.len(), limits)?;
    let stream = boolean(&o, "stream", false)?;
    let include_usage = include_usage(&o, stream)?;
    let (default, most) = (limits.default_max_tokens as u64, limits.max_tokens as u64);
    Ok(CompletionRequest {
        model,
        prompts,
        max_tokens: int(&o, "max_tokens", default, 0, most)? as usize,
        temperature: number(&o, "temperature", 1.0, 0.0, 2.0)? as f32,
        top_p: top_p(&o)?,
        top_k: top_k(&o)?,
        seed: seed(&o)?,
        stop: stops(o.get("stop"))?,
        n,
        stream,
        include_usage,
        echo: boolean(&o, "echo", false)?,
        skip_unknown: boolean(&o, "skip_unknown", false)?,
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

/// OpenAI fields this server cannot honour: refused unless absent or neutral.
fn refuse_unsupported(o: &Map<String, Value>) -> Result<(), ApiError> {
    let neutral = |key: &str, ok: &dyn Fn(&Value) -> bool| match o.get(key) {
        None | Some(Value::Null) => true,
        Some(v) => ok(v),
    };
    let zero = |v: &Value| v.as_f64() == Some(0.0);
    let checks: [(&str, bool, &str); 6] = [
        (
            "logprobs",
            neutral("logprobs", &|_| false),
            "per-character log-probabilities are not supported",
        ),
        (
            "suffix",
            neutral("suffix", &|v| v.as_str() == Some("")),
            "'suffix' (insertion) is not supported",
        ),
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
        (
            "best_of",
            neutral("best_of", &|v| v.as_u64() == Some(1)),
            "'best_of' is not supported; use 'n'",
        ),
    ];
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
    if let Some(p) = list
        .iter()
        .find(|p| p.chars().count() > limits.max_prompt_chars)
    {
        return Err(ApiError::bad(
            "prompt",
            format!(
                "the prompt has {} characters; this server allows {}",
                p.chars().count(),
                limits.max_prompt_chars
            ),
        ));
    }
    Ok(list)
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
        let v = Validation::new(LIMITS);
        let body = r#"{"model":"tiny","prompt":["the ","he"],"n":2,"seed":40,"max_tokens":3}"#;
        let a = v.validate(body.as_bytes(), &models).unwrap();
        assert_eq!((a.id, a.seed, a.streams.len()), (1, 40, 4));
        assert_eq!(a.echoes, ["the ", "the ", "he", "he"]);
        assert_eq!((a.prompt_chars, a.served.name.as_str()), (6, "tiny"));
        assert_eq!(a.streams[2].prompt_len(), 2);
        let b = v.validate(br#"{"model":"tiny"}"#, &models).unwrap();
        assert_eq!((b.id, b.echoes.len(), b.streams[0].prompt_len()), (2, 1, 1));
        let err = |body: &[u8]| v.validate(body, &models).map(|_| ()).unwrap_err();
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
        let c = v.validate(body, &models).unwrap();
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
        let d = p(r#"{"model":"m"}"#).unwrap();
        assert_eq!(
            (d.prompts, d.max_tokens, d.temperature, d.n),
            (vec![String::new()], 16, 1.0, 1)
        );
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
            (r#"{"model":"m","logprobs":2}"#, Some("logprobs")),
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
