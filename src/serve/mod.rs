//! `charrnn serve`: trained models behind the OpenAI Completions and Chat Completions APIs,
//! with a page at `/`. The rooms are those of Hugging Face's text-generation-inference router.
//! A connection is held by `listen` (hyper, its read timeout, shutdown in bounded time); a
//! completion goes from `server` (the route's handler) to `validation` (the body into a job:
//! its model, its prompts as ids, a chat's messages through the `chat` template, each choice's
//! stop strings, seed and log-probabilities), into `queue` (per model, the jobs waiting and
//! their count, and each job's small channel back), to `scheduler` (per model, a thread owning
//! the batch that every running job's streams are stepped in, parking those whose clients do
//! not read), and comes back as the job's events, which `answer` turns into a whole object or
//! server-sent events in its API's shape. `api` holds the OpenAI wire format and every error's
//! HTTP status, `models` the served models, `metrics` the Prometheus metrics. Imports flow one
//! way: `queue` and `metrics` at the bottom, then `models`, `api`, `chat`, `validation`,
//! `answer`, `server`, `listen`; the scheduler knows only the queue and the metrics. The HTTP
//! side runs on `tokio` through `axum` and `hyper`; stepping runs on the schedulers' own
//! threads.
//!
//! Owns the command: its flags, starting the schedulers, binding, shutting down. Does not own
//! generation (`sample`).

pub mod answer;
pub mod api;
pub mod chat;
pub mod listen;
pub mod metrics;
pub mod models;
pub mod queue;
pub mod scheduler;
pub mod server;
pub mod validation;

use crate::error::{Error, Result};
use clap::Args;
use metrics::Metrics;
use models::Served;
use server::App;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use validation::{Limits, Validation};

/// Examples at the end of `charrnn serve --help`.
pub const EXAMPLES: &str = "\
Examples:
  charrnn serve runs/fairy/best.safetensors runs/shakespeare/best.safetensors --port 8080
  curl -N http://127.0.0.1:8080/v1/completions -d '{\"model\":\"fairy\",\"prompt\":\"The emperor\",\"max_tokens\":300,\"temperature\":0.8,\"seed\":7,\"stream\":true}'";

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Checkpoints to serve: PATH (named by its folder, e.g. runs/fairy/best.safetensors is
    /// "fairy", or by its file stem) or NAME=PATH.
    #[arg(required = true, num_args = 1.., value_name = "[NAME=]CHECKPOINT")]
    pub models: Vec<String>,
    /// The address to listen on; 127.0.0.1 keeps the server to this machine, 0.0.0.0 opens it.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port; 0 picks a free one (printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The weights' precision (f32 gives the texts `charrnn sample` gives) and the threads
    /// each model's steps run on.
    #[command(flatten)]
    pub compute: crate::sample::weights::Compute,
    /// Streams stepped together per model at most; more requests wait in the queue.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 64,
        allow_negative_numbers = true
    )]
    pub max_streams: usize,
    /// Requests that may wait per model; beyond it a request gets 429 with Retry-After.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 256,
        allow_negative_numbers = true
    )]
    pub queue: usize,
    /// Characters one choice may generate (`max_tokens`) at most.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8192,
        allow_negative_numbers = true
    )]
    pub max_tokens: usize,
    /// Choices (prompts × n) one request may ask for at most.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16,
        allow_negative_numbers = true
    )]
    pub max_choices: usize,
    /// Characters of a prompt at most.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16384,
        allow_negative_numbers = true
    )]
    pub max_prompt: usize,
    /// Bytes of a request body at most (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, allow_negative_numbers = true)]
    pub max_body: usize,
    /// Seconds a request may take at most.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 300.0,
        allow_negative_numbers = true
    )]
    pub timeout: f64,
    /// On Ctrl-C or SIGTERM, open streams get this many seconds to finish; connections still
    /// open half a second later are closed, whatever their clients do.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10.0,
        allow_negative_numbers = true
    )]
    pub shutdown_grace: f64,
    /// Seconds a client may take to send a request's headers, and again its body (408
    /// beyond); a stalled connection is closed.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10.0,
        allow_negative_numbers = true
    )]
    pub read_timeout: f64,
    /// Characters of a request's text sent together, as one chunk of a stream (vLLM's
    /// --stream-interval, whose tokens are our characters): fewer chunks cost the server and
    /// its clients less per character. The first text goes at once, and none waits more than
    /// 20 ms for the count; 1 sends each character as it comes (1 to 64).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16,
        allow_negative_numbers = true
    )]
    pub stream_interval: usize,
    /// Let pages from ORIGIN (e.g. http://localhost:3000, or * for any) call the API from a
    /// browser (CORS); repeat for more. Off by default: only the page at / can.
    #[arg(long, value_name = "ORIGIN")]
    pub cors: Vec<String>,
    /// A Jinja chat template for /v1/chat/completions (as Hugging Face's and vLLM's); its
    /// `{% set stop = ... %}` names the turn markers a reply ends at [default: a script of
    /// "Name: text" paragraphs, replies ending at the blank line; see docs/serving.md].
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
}

fn check(a: &ServeArgs) -> Result<()> {
    for (flag, v) in [
        ("--max-streams", a.max_streams),
        ("--queue", a.queue),
        ("--max-tokens", a.max_tokens),
        ("--max-choices", a.max_choices),
        ("--max-prompt", a.max_prompt),
        ("--max-body", a.max_body),
    ] {
        if v == 0 {
            crate::bail!("{flag} must be at least 1");
        }
    }
    let most = scheduler::MOST_STREAM_INTERVAL;
    if !(1..=most).contains(&a.stream_interval) {
        crate::bail!(
            "--stream-interval must be 1 to {most} characters, got {}",
            a.stream_interval
        );
    }
    if a.max_choices > a.max_streams {
        crate::bail!(
            "--max-choices ({}) cannot exceed --max-streams ({})",
            a.max_choices,
            a.max_streams
        );
    }
    for (flag, v) in [
        ("--timeout", a.timeout),
        ("--shutdown-grace", a.shutdown_grace),
        ("--read-timeout", a.read_timeout),
    ] {
        // At most a year: a request's deadline, an instant plus it, cannot overflow.
        if !(v > 0.0 && v <= 31_536_000.0) {
            crate::bail!(
                "{flag} must be a positive number of seconds (at most a year, 31536000), got {v}"
            );
        }
    }
    Ok(())
}

/// Refuses limits past the memory available, before the queues are made: the most each
/// model's serving holds at them (see `add_serving`).
fn check_memory(a: &ServeArgs, loaded: &[models::Loaded]) -> Result<()> {
    let mut need = crate::memory::Need::default();
    for m in loaded {
        add_serving(&mut need, a, &m.name, &m.model);
    }
    need.check(
        "serving at these limits",
        crate::memory::available(),
        "lower --max-streams, --queue, --max-choices, --max-prompt or --max-tokens",
    )
}

/// The most one model's serving holds at these limits, added to `need` by part: its streams
/// (`--max-streams` at once) and their text (`--max-tokens` characters of the vocabulary's
/// widest, and its JSON), the prompts of the running streams and of every choice of the
/// requests waiting in the queue (`--max-prompt` ids each), and the queue's slots.
fn add_serving(
    need: &mut crate::memory::Need,
    a: &ServeArgs,
    name: &str,
    model: &crate::sample::Model,
) {
    use crate::memory::buffer;
    let widest = model.vocab().chars.iter().map(|c| c.len_utf8()).max();
    let waiting = a.queue.saturating_add(1).saturating_mul(a.max_choices);
    need.add(
        format!("{name}'s {} streams", a.max_streams),
        crate::sample::Sampler::bytes(model.layout(), a.max_streams),
    )
    .add(
        format!("{name}'s texts"),
        buffer(&[2, a.max_streams, a.max_tokens, widest.unwrap_or(1)], 1),
    )
    .add(
        format!("{name}'s prompts, running and queued"),
        buffer(&[a.max_streams.saturating_add(waiting), a.max_prompt], 4),
    )
    .add(
        format!("{name}'s queue"),
        buffer(
            &[a.queue.saturating_add(1), std::mem::size_of::<queue::Job>()],
            1,
        ),
    );
}

/// Runs `charrnn serve` until Ctrl-C or SIGTERM.
///
/// # Errors
/// Bad flags, a checkpoint that cannot be loaded, two models with one name, or an address
/// that cannot be bound.
pub fn run(a: &ServeArgs) -> Result<()> {
    check(a)?;
    let cors = server::cors(&a.cors)?;
    let template = match &a.chat_template {
        Some(path) => chat::Template::load(path)?,
        None => chat::Template::script(),
    };
    let threads = a.compute.threads.count()?;
    let loaded = models::load(&a.models, a.compute.precision, threads)?;
    check_memory(a, &loaded)?;
    let metrics = Arc::new(Metrics::new());
    let shutting_down = Arc::new(AtomicBool::new(false));
    let settings = scheduler::Settings {
        max_streams: a.max_streams,
        grace: Duration::from_secs_f64(a.shutdown_grace),
        stream_interval: a.stream_interval,
    };
    let (mut models, mut schedulers) = (Vec::new(), Vec::new());
    for model in loaded {
        let (queue, waiting) = queue::channel(a.queue);
        schedulers.push(scheduler::spawn(
            &model.name,
            Arc::clone(&model.model),
            waiting,
            Arc::clone(&shutting_down),
            Arc::clone(&metrics),
            settings,
        ));
        models.push(model.served(queue));
    }
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let banner = format!(
        "{} ({} weights)",
        names.join(", "),
        a.compute.precision.name()
    );
    let app = app(a, models, template, metrics, &shutting_down);
    let result = listen(
        a,
        server::router(Arc::new(app), cors),
        &banner,
        &shutting_down,
    );
    for s in schedulers {
        let _ = s.join();
    }
    result
}

/// What every handler shares: the models, the flags' limits, the metrics and the shutdown flag.
fn app(
    a: &ServeArgs,
    models: Vec<Served>,
    template: chat::Template,
    metrics: Arc<Metrics>,
    shutting_down: &Arc<AtomicBool>,
) -> App {
    let limits = Limits {
        max_tokens: a.max_tokens,
        default_max_tokens: 16.min(a.max_tokens),
        max_choices: a.max_choices,
        max_prompt_chars: a.max_prompt,
    };
    App {
        models,
        validation: Validation::new(limits, template),
        timeout: Duration::from_secs_f64(a.timeout),
        metrics,
        shutting_down: Arc::clone(shutting_down),
        stream_interval: a.stream_interval,
        max_body: a.max_body,
        read_timeout: Duration::from_secs_f64(a.read_timeout),
    }
}

/// Binds the address and serves until Ctrl-C or SIGTERM, then raises `shutting_down` for the
/// schedulers and closes the connections within the grace period (see `listen`).
fn listen(
    a: &ServeArgs,
    router: axum::Router,
    banner: &str,
    shutting_down: &Arc<AtomicBool>,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the server's runtime", e))?;
    let result = rt.block_on(async {
        let addr = format!("{}:{}", a.host, a.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the bound address", e))?;
        eprintln!("charrnn: serving {banner} on http://{local}/ (OpenAI API at http://{local}/v1)");
        let flag = Arc::clone(shutting_down);
        let settings = listen::Settings {
            read_timeout: Duration::from_secs_f64(a.read_timeout),
            grace: Duration::from_secs_f64(a.shutdown_grace),
        };
        listen::serve(listener, router, settings, async move {
            signal().await;
            eprintln!("charrnn: shutting down: no new requests; open streams finish");
            flag.store(true, Ordering::Release);
        })
        .await;
        Ok(())
    });
    shutting_down.store(true, Ordering::Release);
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Ctrl-C or SIGTERM.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
