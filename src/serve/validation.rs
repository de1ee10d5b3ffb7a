//! Request validation: a `POST /v1/completions` body into a checked request, or a 400 that
//! names the field and says what it must be. Fields OpenAI defines but this server cannot honour
//! (token-array prompts, logprobs, penalties, logit bias, suffix, best_of) are refused rather
//! than silently ignored; fields it does not know are ignored, as vLLM does, so that clients
//! that send extras keep working.
//!
//! Owns the rules for each field. Does not know models (the handler checks the name) or queues.

use super::api::ApiError;
use serde_json::{Map, Value};

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

/// Parses and checks a request body.
///
/// # Errors
/// A 400 `invalid_request_error` naming the field.
pub fn parse(body: &[u8], limits: &Limits) -> Result<CompletionRequest, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("", format!("the body is not valid JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(ApiError::bad("", "the body must be a JSON object"));
    };
    refuse_unsupported(&o)?;
    let model = match o.get("model") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => {
            return Err(ApiError::bad(
                "model",
                "'model' must be a model name (a string); GET /v1/models lists them",
            ))
        }
        None => {
            return Err(ApiError::bad(
                "model",
                "'model' is required; GET /v1/models lists the models",
            ))
        }
    };
    let prompts = prompts(o.get("prompt"), limits)?;
    let n = int(&o, "n", 1, 1, limits.max_choices as u64)? as usize;
    if n * prompts.len() > limits.max_choices {
        return Err(ApiError::bad(
            "n",
            format!(
                "{} prompts × n = {n} is {} choices; this server allows {} per request",
                prompts.len(),
                n * prompts.len(),
                limits.max_choices
            ),
        ));
    }
    let stream = boolean(&o, "stream", false)?;
    let include_usage = match o.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(so)) if stream => boolean(so, "include_usage", false)?,
        Some(Value::Object(_)) => {
            return Err(ApiError::bad(
                "stream_options",
                "'stream_options' is only allowed with \"stream\": true",
            ))
        }
        Some(_) => {
            return Err(ApiError::bad(
                "stream_options",
                "'stream_options' must be an object",
            ))
        }
    };
    Ok(CompletionRequest {
        model,
        prompts,
        max_tokens: int(
            &o,
            "max_tokens",
            limits.default_max_tokens as u64,
            0,
            limits.max_tokens as u64,
        )? as usize,
        temperature: number(&o, "temperature", 1.0, 0.0, 2.0)? as f32,
        top_p: match number(&o, "top_p", 1.0, 0.0, 1.0)? {
            p if p <= 0.0 => {
                return Err(ApiError::bad(
                    "top_p",
                    "'top_p' must be above 0 and at most 1",
                ))
            }
            p if p >= 1.0 => None,
            p => Some(p),
        },
        top_k: match o.get("top_k") {
            None | Some(Value::Null) => None,
            Some(v) if v.as_i64().is_some_and(|k| k == -1 || k == 0) => None, // vLLM: off
            Some(_) => Some(int(&o, "top_k", 1, 1, u32::MAX as u64)? as usize),
        },
        seed: match o.get("seed") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                ApiError::bad(
                    "seed",
                    format!("'seed' must be an integer from 0 to {}, got {v}", u64::MAX),
                )
            })?),
        },
        stop: stops(o.get("stop"))?,
        n,
        stream,
        include_usage,
        echo: boolean(&o, "echo", false)?,
        skip_unknown: boolean(&o, "skip_unknown", false)?,
    })
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
    if list.iter().any(String::is_empty) {
        return Err(ApiError::bad("stop", "'stop' strings must not be empty"));
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

    const LIMITS: Limits = Limits {
        max_tokens: 4096,
        default_max_tokens: 16,
        max_choices: 8,
        max_prompt_chars: 100,
    };

    fn p(body: &str) -> Result<CompletionRequest, ApiError> {
        parse(body.as_bytes(), &LIMITS)
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
