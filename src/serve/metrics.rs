//! `GET /metrics` in the Prometheus text format, through the Prometheus project's own Rust
//! client (`prometheus-client`): requests by HTTP status, characters generated, active and
//! paused streams and queue length per model, the step's latency and the time to the first
//! character.
//!
//! Owns the metric names. Does not decide what happened (the scheduler and handlers report).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// Completion requests answered, by HTTP status.
    pub requests: Family<Labels, Counter>,
    /// Characters generated (prompt characters are not counted).
    pub characters: Counter,
    /// Streams admitted (stepped or paused), per model.
    pub active_streams: Family<Labels, Gauge>,
    /// Streams paused because their clients do not read, per model.
    pub paused_streams: Family<Labels, Gauge>,
    /// Requests waiting to join a batch, per model.
    pub queue_length: Family<Labels, Gauge>,
    /// Seconds of one batched step (every stream one character).
    pub step_seconds: Histogram,
    /// Seconds from a request's arrival to its first character.
    pub first_character_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("charrnn");
        let requests = Family::<Labels, Counter>::default();
        let characters = Counter::default();
        let active_streams = Family::<Labels, Gauge>::default();
        let paused_streams = Family::<Labels, Gauge>::default();
        let queue_length = Family::<Labels, Gauge>::default();
        let step_seconds = Histogram::new(exponential_buckets(1e-5, 2.0, 18));
        let first_character_seconds = Histogram::new(exponential_buckets(1e-4, 2.0, 16));
        registry.register(
            "requests",
            "Completion requests answered, by HTTP status",
            requests.clone(),
        );
        registry.register(
            "generated_characters",
            "Characters generated",
            characters.clone(),
        );
        registry.register(
            "active_streams",
            "Streams admitted (stepped or paused), per model",
            active_streams.clone(),
        );
        registry.register(
            "paused_streams",
            "Streams paused until their clients read, per model",
            paused_streams.clone(),
        );
        registry.register(
            "queue_length",
            "Requests waiting to join a batch, per model",
            queue_length.clone(),
        );
        registry.register(
            "step_seconds",
            "Seconds of one batched step",
            step_seconds.clone(),
        );
        registry.register(
            "time_to_first_character_seconds",
            "Seconds from a request's arrival to its first character",
            first_character_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            characters,
            active_streams,
            paused_streams,
            queue_length,
            step_seconds,
            first_character_seconds,
        }
    }

    /// Counts an answered request.
    pub fn answered(&self, status: u16) {
        self.requests
            .get_or_create(&vec![("status".to_string(), status.to_string())])
            .inc();
    }

    /// Sets a model's active streams (of which `paused` are paused) and queue length.
    pub fn set_load(&self, model: &str, active: usize, waiting: usize, paused: usize) {
        let l = vec![("model".to_string(), model.to_string())];
        self.active_streams.get_or_create(&l).set(active as i64);
        self.paused_streams.get_or_create(&l).set(paused as i64);
        self.queue_length.get_or_create(&l).set(waiting as i64);
    }

    /// The text exposition.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = encode(&mut s, &self.registry);
        s
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
