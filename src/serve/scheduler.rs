//! One model's scheduler: a thread that owns the batch. Requests wait in the model's queue
//! (`queue`); every step, new ones join (while the batch has room), every stream of every request moves one
//! character in one pass over the weights, finished streams leave, and a request whose client
//! went away (its receiver dropped) or whose time ran out leaves at once, so its slot is free
//! at the next step. Each stream keeps its own generator, settings and stop strings, so a
//! request's text does not depend on what else runs (the batch's arithmetic keeps streams
//! apart; see `sample::sampler`).
//!
//! Owns the batch: when a job joins it and when it leaves. Does not count or bound the waiting
//! jobs (`queue`), parse or answer HTTP (`server`), nor know what status an error gets (`api`).

use super::metrics::Metrics;
use super::queue::{Event, JobError, Next, Waiting};
use crate::sample::{Batch, Finish, Model, Step};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// A running request.
struct Running {
    tx: UnboundedSender<Event>,
    deadline: Instant,
    /// Choices not yet finished.
    left: usize,
    choices: u32,
}

/// The scheduler's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Streams stepped together at most.
    pub max_streams: usize,
    /// After shutdown is asked for, open streams get this long to finish.
    pub grace: Duration,
}

/// Starts the scheduler of a model on a thread of its own: it steps the jobs from `queue`
/// until `shutdown` is raised and its grace period is over, or every handler's end is gone.
pub fn spawn(
    name: &str,
    model: Arc<Model>,
    queue: Waiting,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    s: Settings,
) -> JoinHandle<()> {
    let name = name.to_string();
    std::thread::spawn(move || run(&name, model, queue, shutdown, metrics, s))
}

/// Runs the scheduler of `model` until shutdown and its grace period are over.
fn run(
    name: &str,
    model: Arc<Model>,
    mut queue: Waiting,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    s: Settings,
) {
    let mut batch: Batch<(u64, u32)> = Batch::new(model.sampler(0), model.vocab());
    let mut running: HashMap<u64, Running> = HashMap::new();
    let mut out = Vec::new();
    let mut shutdown_at: Option<Instant> = None;
    loop {
        if shutdown.load(Ordering::Acquire) && shutdown_at.is_none() {
            shutdown_at = Some(Instant::now());
        }
        let closed = admit(&mut queue, &mut batch, &mut running, &s, shutdown_at);
        if let Some(at) = shutdown_at {
            // No more admissions: the queue's jobs are refused, open streams finish or, after
            // the grace period, end with an error event.
            for job in queue.drain() {
                let _ = job.tx.send(Event::Failed(JobError::ShuttingDown));
            }
            if at.elapsed() >= s.grace {
                for (_, r) in running.drain() {
                    let _ = r.tx.send(Event::Failed(JobError::ShuttingDown));
                }
                return;
            }
            if running.is_empty() {
                return;
            }
        } else if closed && running.is_empty() {
            return;
        }
        metrics.set_load(name, batch.len(), queue.len());
        if batch.is_empty() {
            continue;
        }
        let t0 = Instant::now();
        out.clear();
        batch.step(&mut out);
        metrics.step_seconds.observe(t0.elapsed().as_secs_f64());
        metrics
            .characters
            .inc_by(out.iter().filter(|(_, s)| *s != Step::Prefill).count() as u64);
        for ((id, index), step) in out.drain(..) {
            let (Step::Text(text) | Step::Done(text, _)) = step else {
                continue;
            };
            if let (false, Some(r)) = (text.is_empty(), running.get(&id)) {
                let _ = r.tx.send(Event::Text { index, text });
            }
        }
        for ((id, index), stream) in batch.take_finished() {
            if let Some(r) = running.get_mut(&id) {
                let _ = r.tx.send(Event::Done {
                    index,
                    finish: stream.finished().unwrap_or(Finish::Length),
                    generated: stream.generated(),
                });
                r.left -= 1;
            }
        }
        drop_gone_or_late(&mut batch, &mut running);
        running.retain(|_, r| r.left > 0);
    }
}

/// Moves queued jobs into the batch while it has room (waiting for one when the batch is
/// idle). Returns whether the queue's senders are all gone.
fn admit(
    queue: &mut Waiting,
    batch: &mut Batch<(u64, u32)>,
    running: &mut HashMap<u64, Running>,
    s: &Settings,
    shutdown_at: Option<Instant>,
) -> bool {
    if shutdown_at.is_some() {
        return false;
    }
    loop {
        // An idle batch takes the job at the head whatever its size.
        let (room, idle) = match batch.len() {
            0 => (usize::MAX, true),
            n => (s.max_streams.saturating_sub(n), false),
        };
        let job = match queue.pop(room, idle) {
            Next::Job(j) => j,
            Next::Empty => return false,
            Next::Closed => return true,
        };
        if job.tx.is_closed() {
            continue; // its client left while it waited
        }
        let choices = job.streams.len() as u32;
        let mut left = 0;
        for (index, stream) in job.streams.into_iter().enumerate() {
            if stream.finished().is_some() {
                // A limit of 0 characters: done before it starts.
                let _ = job.tx.send(Event::Done {
                    index: index as u32,
                    finish: Finish::Length,
                    generated: 0,
                });
            } else {
                batch.add((job.id, index as u32), stream);
                left += 1;
            }
        }
        if left > 0 {
            running.insert(
                job.id,
                Running {
                    tx: job.tx,
                    deadline: job.deadline,
                    left,
                    choices,
                },
            );
        }
    }
}

/// Requests whose client went away or whose time ran out leave the batch now.
fn drop_gone_or_late(batch: &mut Batch<(u64, u32)>, running: &mut HashMap<u64, Running>) {
    let now = Instant::now();
    running.retain(|&id, r| {
        let gone = r.tx.is_closed();
        let late = now >= r.deadline;
        if !gone && !late {
            return true;
        }
        for index in 0..r.choices {
            batch.remove(&(id, index));
        }
        if late && !gone {
            let _ = r.tx.send(Event::Failed(JobError::TimedOut));
        }
        false
    });
}
