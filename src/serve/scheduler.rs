//! One model's scheduler: a thread that owns the batch. Requests wait in a bounded queue; every
//! step, new ones join (while the batch has room), every stream of every request moves one
//! character in one pass over the weights, finished streams leave, and a request whose client
//! went away (its receiver dropped) or whose time ran out leaves at once, so its slot is free
//! at the next step. Each stream keeps its own generator, settings and stop strings, so a
//! request's text does not depend on what else runs (the batch's arithmetic keeps streams
//! apart; see `sample::sampler`).
//!
//! Owns the batch and the queue's far end. Does not parse or answer HTTP (`server`), nor know
//! what status an error gets (`api`).

use super::metrics::Metrics;
use crate::sample::{Batch, Finish, Model, Step, Stream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What a request's handler hears back.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// More text of choice `index` (never empty).
    Text { index: u32, text: String },
    /// Choice `index` ended; it generated `generated` characters.
    Done {
        index: u32,
        finish: Finish,
        generated: usize,
    },
    /// The request ended without finishing.
    Failed(JobError),
}

/// Why a job was refused or ended before its choices finished. The HTTP answer to each is
/// `api`'s business.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobError {
    /// The server is shutting down: the job was not admitted, or its grace period ran out.
    ShuttingDown,
    /// The job ran past its deadline (`--timeout`).
    TimedOut,
}

/// A request admitted by a handler: its choices' streams, in choice order.
pub struct Job {
    pub id: u64,
    pub streams: Vec<Stream>,
    pub tx: UnboundedSender<Event>,
    pub deadline: Instant,
}

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

/// Runs the scheduler of `model` until shutdown and its grace period are over.
pub fn run(
    name: &str,
    model: Arc<Model>,
    queue: Receiver<Job>,
    waiting: Arc<AtomicUsize>,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    s: Settings,
) {
    let mut batch: Batch<(u64, u32)> = Batch::new(model.sampler(0), model.vocab());
    let mut running: HashMap<u64, Running> = HashMap::new();
    let mut pending: Option<Job> = None;
    let mut out = Vec::new();
    let mut shutdown_at: Option<Instant> = None;
    loop {
        if shutdown.load(Ordering::Acquire) && shutdown_at.is_none() {
            shutdown_at = Some(Instant::now());
        }
        let closed = admit(
            &queue,
            &mut pending,
            &mut batch,
            &mut running,
            &waiting,
            &s,
            shutdown_at,
        );
        if let Some(at) = shutdown_at {
            // No more admissions: the queue's jobs are refused, open streams finish or, after
            // the grace period, end with an error event.
            refuse_queued(&queue, &mut pending, &waiting);
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
        metrics.set_load(name, batch.len(), waiting.load(Ordering::Relaxed));
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
    queue: &Receiver<Job>,
    pending: &mut Option<Job>,
    batch: &mut Batch<(u64, u32)>,
    running: &mut HashMap<u64, Running>,
    waiting: &AtomicUsize,
    s: &Settings,
    shutdown_at: Option<Instant>,
) -> bool {
    if shutdown_at.is_some() {
        return false;
    }
    loop {
        let job = match pending.take() {
            Some(j) => j,
            None if batch.is_empty() => match queue.recv_timeout(Duration::from_millis(50)) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => return true,
            },
            None => match queue.try_recv() {
                Ok(j) => j,
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            },
        };
        if !batch.is_empty() && batch.len() + job.streams.len() > s.max_streams {
            *pending = Some(job);
            return false;
        }
        waiting.fetch_sub(1, Ordering::AcqRel);
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

/// Jobs still queued at shutdown are answered with 503.
fn refuse_queued(queue: &Receiver<Job>, pending: &mut Option<Job>, waiting: &AtomicUsize) {
    let refuse = |job: Job| {
        waiting.fetch_sub(1, Ordering::AcqRel);
        let _ = job.tx.send(Event::Failed(JobError::ShuttingDown));
    };
    if let Some(j) = pending.take() {
        refuse(j);
    }
    while let Ok(j) = queue.try_recv() {
        refuse(j);
    }
}
