//! One model's scheduler: a thread that owns the batch. Requests wait in the model's queue
//! (`queue`); every step, new ones join (while the batch has room), every stream of every
//! request moves one character in one pass over the weights, finished streams leave, and a
//! request whose client went away (its receiver dropped) or whose time ran out leaves at once,
//! so its slot is free at the next step. Each stream keeps its own generator, settings and stop
//! strings, so a request's text does not depend on what else runs (the batch's arithmetic
//! keeps streams apart; see `sample::sampler`).
//!
//! Owns the batch: when a job joins it and when it leaves. Does not count or bound the waiting
//! jobs (`queue`), parse or answer HTTP (`server`), nor know what status an error gets (`api`).

use super::metrics::Metrics;
use super::queue::{Event, Job, JobError, Next, Waiting};
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
    queue: Waiting,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    s: Settings,
) {
    let mut sch = Scheduler {
        batch: Batch::new(model.sampler(0), model.vocab()),
        running: HashMap::new(),
        queue,
        metrics,
        s,
        out: Vec::new(),
    };
    let mut shutdown_at: Option<Instant> = None;
    loop {
        if shutdown_at.is_none() && shutdown.load(Ordering::Acquire) {
            shutdown_at = Some(Instant::now());
        }
        let more = match shutdown_at {
            None => !sch.admit() || !sch.running.is_empty(),
            Some(at) => sch.wind_down(at.elapsed() >= s.grace),
        };
        if !more {
            return;
        }
        sch.metrics.set_load(name, sch.batch.len(), sch.queue.len());
        if !sch.batch.is_empty() {
            sch.step();
        }
    }
}

/// A scheduler's state: the batch (each stream keyed by its job and choice), the jobs in it,
/// and the queue they come from.
struct Scheduler<'m> {
    batch: Batch<'m, (u64, u32)>,
    running: HashMap<u64, Running>,
    queue: Waiting,
    metrics: Arc<Metrics>,
    s: Settings,
    /// What the last step did for each stream.
    out: Vec<((u64, u32), Step)>,
}

impl Scheduler<'_> {
    /// Moves queued jobs into the batch while it has room (waiting for one when the batch is
    /// idle). Returns whether the queue's senders are all gone.
    fn admit(&mut self) -> bool {
        loop {
            // An idle batch takes the job at the head whatever its size.
            let (room, idle) = match self.batch.len() {
                0 => (usize::MAX, true),
                n => (self.s.max_streams.saturating_sub(n), false),
            };
            match self.queue.pop(room, idle) {
                Next::Job(job) => self.start(job),
                Next::Empty => return false,
                Next::Closed => return true,
            }
        }
    }

    /// A job's streams join the batch (unless its client left while it waited).
    fn start(&mut self, job: Job) {
        if job.tx.is_closed() {
            return;
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
                self.batch.add((job.id, index as u32), stream);
                left += 1;
            }
        }
        if left > 0 {
            let r = Running {
                tx: job.tx,
                deadline: job.deadline,
                left,
                choices,
            };
            self.running.insert(job.id, r);
        }
    }

    /// After shutdown is asked for: no more admissions, the queue's jobs are refused, open
    /// streams finish or, once the grace period is over, end with an error event. Returns
    /// whether streams are still open.
    fn wind_down(&mut self, grace_over: bool) -> bool {
        for job in self.queue.drain() {
            let _ = job.tx.send(Event::Failed(JobError::ShuttingDown));
        }
        if grace_over {
            for (_, r) in self.running.drain() {
                let _ = r.tx.send(Event::Failed(JobError::ShuttingDown));
            }
        }
        !self.running.is_empty()
    }

    /// One step of every stream: their text goes to their handlers, finished choices say so,
    /// and jobs whose client went away or whose time ran out leave the batch.
    fn step(&mut self) {
        let t0 = Instant::now();
        self.out.clear();
        self.batch.step(&mut self.out);
        let m = &self.metrics;
        m.step_seconds.observe(t0.elapsed().as_secs_f64());
        let generated = self.out.iter().filter(|(_, s)| *s != Step::Prefill).count();
        m.characters.inc_by(generated as u64);
        for ((id, index), step) in self.out.drain(..) {
            let (Step::Text(text) | Step::Done(text, _)) = step else {
                continue;
            };
            if let (false, Some(r)) = (text.is_empty(), self.running.get(&id)) {
                let _ = r.tx.send(Event::Text { index, text });
            }
        }
        for ((id, index), stream) in self.batch.take_finished() {
            if let Some(r) = self.running.get_mut(&id) {
                let _ = r.tx.send(Event::Done {
                    index,
                    finish: stream.finished().unwrap_or(Finish::Length),
                    generated: stream.generated(),
                });
                r.left -= 1;
            }
        }
        self.drop_gone_or_late();
        self.running.retain(|_, r| r.left > 0);
    }

    /// Jobs whose client went away or whose time ran out leave the batch now.
    fn drop_gone_or_late(&mut self) {
        let now = Instant::now();
        let batch = &mut self.batch;
        self.running.retain(|&id, r| {
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
}
