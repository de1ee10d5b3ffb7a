//! One model's scheduler: a thread that owns the batch. Requests wait in the model's queue
//! (`queue`); every step, new ones join (while the batch has room), every stream of every
//! request moves one character in one pass over the weights, finished streams leave, and a
//! request whose client went away (its receiver dropped) or whose time ran out leaves at once,
//! so its slot is free at the next step. Each stream keeps its own generator, settings and stop
//! strings, so a request's text does not depend on what else runs (the batch's arithmetic
//! keeps streams apart; see `sample::sampler`).
//!
//! A request's events go out on its small channel (`queue::events`) and never block the
//! thread: when the channel is full (its client reads slower than its streams generate), the
//! events wait in the request's outbox and its streams are parked out of the batch with their
//! state, holding their slots; when the reader has caught up they rejoin, their text unchanged.
//! A request parked past its deadline ends like any other that runs late. The last place in a
//! channel is kept for the event that ends a request with an error.
//!
//! A request's text goes out in pieces of `--stream-interval` characters (its first text at
//! once, and none held longer than [`GATHER_WAIT`]): every event wakes the request's handler
//! and becomes a chunk and a write, and the thread that does that shares the cores with the
//! steps. Measured on 2 cores, 32 clients streaming: a chunk per character ran the steps 45 %
//! slower than `charrnn bench` (the handlers' wake-ups preempt the crew mid-step), and the
//! server served 49 % of the engine's characters per second (bench/results/serve-*.md).
//!
//! Owns the batch: when a job joins it, pauses and leaves. Does not count or bound the waiting
//! jobs (`queue`), parse or answer HTTP (`server`), nor know what status an error gets (`api`).

use super::metrics::Metrics;
use super::queue::{Event, Job, JobError, Next, Waiting};
use crate::sample::batch::Parked;
use crate::sample::{Batch, Finish, Logprob, Model, Scores, Step};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

/// How long an idle scheduler waits for a job before it looks at shutdown again.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often a scheduler whose only jobs are parked looks at their channels.
const PARKED_POLL: Duration = Duration::from_millis(1);
/// How long text is held back at most for its `--stream-interval` characters: 20 ms, 50
/// pieces a second, faster than anyone reads, so a slow model's text does not wait for the
/// count.
pub const GATHER_WAIT: Duration = Duration::from_millis(20);
/// The largest `--stream-interval`: a piece is at most a line or so.
pub const MOST_STREAM_INTERVAL: usize = 64;

/// A running request.
struct Running {
    tx: Sender<Event>,
    deadline: Instant,
    /// Choices not yet finished.
    left: usize,
    choices: u32,
    /// Events its channel had no room for, oldest first; while any wait, its streams are
    /// parked.
    outbox: VecDeque<Event>,
    /// Its streams out of the batch while its client catches up.
    parked: Vec<Parked<(u64, u32)>>,
    /// Text held back until `--stream-interval` characters have gathered: one `Text` event
    /// per choice that has some, in the order they came.
    held: Vec<Event>,
    /// Characters `held` holds, over its choices.
    held_chars: usize,
    /// When the oldest held text came.
    held_since: Option<Instant>,
    /// Some text has gone out (the first goes at once, for the time to the first character).
    spoke: bool,
    /// Characters of text sent together (`--stream-interval`).
    interval: usize,
}

impl Running {
    /// A request of `choices` choices that sends on `tx`, `interval` characters of text at a
    /// time, and must finish by `deadline`; its streams are counted in `left` as they join
    /// the batch.
    fn new(tx: Sender<Event>, deadline: Instant, choices: u32, interval: usize) -> Running {
        Running {
            tx,
            deadline,
            left: 0,
            choices,
            outbox: VecDeque::new(),
            parked: Vec::new(),
            held: Vec::new(),
            held_chars: 0,
            held_since: None,
            spoke: false,
            interval,
        }
    }

    /// Sends `ev`, or keeps it (and every event after it) in the outbox while the channel has
    /// no room but the place kept for an error.
    fn send(&mut self, ev: Event) {
        if !self.outbox.is_empty() || self.tx.capacity() <= 1 {
            return self.outbox.push_back(ev);
        }
        if let Err(TrySendError::Full(ev)) = self.tx.try_send(ev) {
            self.outbox.push_back(ev);
        }
    }

    /// Text of choice `index`: sent at once if it is the request's first, else held back
    /// with the rest until `interval` characters have gathered.
    fn text(&mut self, index: u32, text: String, logprobs: Vec<Logprob>) {
        if !std::mem::replace(&mut self.spoke, true) {
            return self.send(Event::Text {
                index,
                text,
                logprobs,
            });
        }
        self.held_chars += text.chars().count();
        self.held_since.get_or_insert_with(Instant::now);
        let same = |ev: &&mut Event| matches!(ev, Event::Text { index: i, .. } if *i == index);
        match self.held.iter_mut().find(same) {
            Some(Event::Text {
                text: t,
                logprobs: l,
                ..
            }) => {
                t.push_str(&text);
                l.extend(logprobs);
            }
            _ => self.held.push(Event::Text {
                index,
                text,
                logprobs,
            }),
        }
        if self.held_chars >= self.interval {
            self.release();
        }
    }

    /// Choice `index` ended: the text held back goes first.
    fn done(&mut self, index: u32, finish: Finish, generated: usize) {
        self.release();
        self.send(Event::Done {
            index,
            finish,
            generated,
        });
        self.left -= 1;
    }

    /// Sends the text held back.
    fn release(&mut self) {
        for ev in std::mem::take(&mut self.held) {
            self.send(ev);
        }
        (self.held_chars, self.held_since) = (0, None);
    }

    /// Sends the text held back once it has waited `GATHER_WAIT`.
    fn release_late(&mut self, now: Instant) {
        if self.held_since.is_some_and(|t| now >= t + GATHER_WAIT) {
            self.release();
        }
    }

    /// Sends what the outbox holds while the channel has room; returns whether it is empty.
    fn flush(&mut self) -> bool {
        while self.tx.capacity() > 1 {
            let Some(ev) = self.outbox.pop_front() else {
                break;
            };
            let _ = self.tx.try_send(ev);
        }
        self.outbox.is_empty()
    }

    /// Whether every choice has finished and every event has gone out.
    fn is_over(&self) -> bool {
        self.left == 0 && self.outbox.is_empty()
    }

    /// Ends the request with `e`, in the place kept for it; what the outbox holds is dropped.
    fn fail(self, e: JobError) {
        let _ = self.tx.try_send(Event::Failed(e));
    }
}

/// The scheduler's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Streams stepped together at most (parked ones included).
    pub max_streams: usize,
    /// After shutdown is asked for, open streams get this long to finish.
    pub grace: Duration,
    /// Characters of a request's text sent together (`--stream-interval`), 1 to
    /// [`MOST_STREAM_INTERVAL`].
    pub stream_interval: usize,
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
        parked: 0,
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
        sch.catch_up();
        sch.drop_gone_or_late();
        let (active, paused) = (sch.batch.len() + sch.parked, sch.parked);
        sch.metrics.set_load(name, active, sch.queue.len(), paused);
        if !sch.batch.is_empty() {
            sch.step();
        } else if shutdown_at.is_some() {
            std::thread::sleep(PARKED_POLL); // only parked streams are left
        }
    }
}

/// A scheduler's state: the batch (each stream keyed by its job and choice), the jobs in it,
/// and the queue they come from.
struct Scheduler<'m> {
    batch: Batch<'m, (u64, u32)>,
    running: HashMap<u64, Running>,
    /// Streams parked, over all jobs.
    parked: usize,
    queue: Waiting,
    metrics: Arc<Metrics>,
    s: Settings,
    /// What the last step did for each stream.
    out: Vec<((u64, u32), Step)>,
}

impl Scheduler<'_> {
    /// Moves queued jobs into the batch while it has room (waiting for one when nothing is to
    /// be stepped). Returns whether the queue's senders are all gone.
    fn admit(&mut self) -> bool {
        loop {
            // Nothing admitted: the job at the head joins whatever its size.
            let (room, wait) = match (self.batch.len() + self.parked, self.running.is_empty()) {
                (0, true) => (usize::MAX, IDLE_WAIT),
                (n, _) if self.batch.is_empty() => {
                    (self.s.max_streams.saturating_sub(n), PARKED_POLL)
                }
                (n, _) => (self.s.max_streams.saturating_sub(n), Duration::ZERO),
            };
            match self.queue.pop(room, wait) {
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
        let mut r = Running::new(job.tx, job.deadline, choices, self.s.stream_interval);
        for (index, stream) in job.streams.into_iter().enumerate() {
            if stream.finished().is_some() {
                // A limit of 0 characters: done before it starts.
                r.send(Event::Done {
                    index: index as u32,
                    finish: Finish::Length,
                    generated: 0,
                });
            } else {
                self.batch.add((job.id, index as u32), stream);
                r.left += 1;
            }
        }
        if r.left > 0 || !r.outbox.is_empty() {
            self.running.insert(job.id, r);
        }
    }

    /// After shutdown is asked for: no more admissions, the queue's jobs are refused, open
    /// streams finish or, once the grace period is over, end with an error event. Returns
    /// whether streams are still open.
    fn wind_down(&mut self, grace_over: bool) -> bool {
        for job in self.queue.drain() {
            let _ = job.tx.try_send(Event::Failed(JobError::ShuttingDown));
        }
        if grace_over {
            for (_, r) in self.running.drain() {
                r.fail(JobError::ShuttingDown);
            }
        }
        !self.running.is_empty()
    }

    /// Jobs whose clients have read what waited send their outboxes; those whose outboxes
    /// are then empty bring their parked streams back into the batch.
    fn catch_up(&mut self) {
        for r in self.running.values_mut() {
            if r.outbox.is_empty() || !r.flush() {
                continue;
            }
            self.parked -= r.parked.len();
            for p in r.parked.drain(..) {
                self.batch.resume(p);
            }
        }
    }

    /// One step of every stream: their text (and log-probabilities) go to their handlers,
    /// finished choices say so, and jobs whose clients are behind are parked.
    fn step(&mut self) {
        let t0 = Instant::now();
        self.out.clear();
        self.batch.step(&mut self.out);
        let m = &self.metrics;
        m.step_seconds.observe(t0.elapsed().as_secs_f64());
        let generated = self.out.iter().filter(|(_, s)| *s != Step::Prefill).count();
        m.characters.inc_by(generated as u64);
        // The scores are in the order of `out`, for the streams that released some.
        let mut scores = self.batch.take_scores().into_iter().peekable();
        for (key, step) in self.out.drain(..) {
            let s = match scores.peek() {
                Some((k, _)) if *k == key => scores.next().map(|(_, s)| s),
                _ => None,
            };
            if let Some(r) = self.running.get_mut(&key.0) {
                send_step(r, key.1, step, s.unwrap_or_default());
            }
        }
        for ((id, index), stream) in self.batch.take_finished() {
            if let Some(r) = self.running.get_mut(&id) {
                let finish = stream.finished().unwrap_or(Finish::Length);
                r.done(index, finish, stream.generated());
            }
        }
        let now = Instant::now();
        for r in self.running.values_mut() {
            r.release_late(now);
        }
        self.park_behind();
    }

    /// Jobs with events waiting in their outboxes leave the batch, parked, until their
    /// clients have read.
    fn park_behind(&mut self) {
        for (&id, r) in self.running.iter_mut() {
            if r.outbox.is_empty() || !r.parked.is_empty() || r.left == 0 {
                continue;
            }
            for index in 0..r.choices {
                if let Some(p) = self.batch.park(&(id, index)) {
                    r.parked.push(p);
                }
            }
            self.parked += r.parked.len();
        }
    }

    /// Jobs whose client went away or whose time ran out leave the batch now (parked or
    /// not), as do finished jobs whose last events have gone out.
    fn drop_gone_or_late(&mut self) {
        let now = Instant::now();
        let ending: Vec<u64> = (self.running.iter())
            .filter(|(_, r)| r.tx.is_closed() || now >= r.deadline || r.is_over())
            .map(|(&id, _)| id)
            .collect();
        for id in ending {
            let Some(r) = self.running.remove(&id) else {
                continue;
            };
            for index in 0..r.choices {
                self.batch.remove(&(id, index));
            }
            self.parked -= r.parked.len();
            if !r.is_over() && !r.tx.is_closed() {
                r.fail(JobError::TimedOut);
            }
        }
    }
}

/// One stream's step as its job's events: the prompt's log-probabilities once the prompt is
/// in, then the new text with its characters' log-probabilities (held back until `interval`
/// characters have gathered).
fn send_step(r: &mut Running, index: u32, step: Step, scores: Scores) {
    if let Some(logprobs) = scores.prompt {
        r.release();
        r.send(Event::Prompt { index, logprobs });
    }
    if let Step::Text(text) | Step::Done(text, _) = step {
        if !text.is_empty() {
            r.text(index, text, scores.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::queue::events;

    fn running(interval: usize) -> (Running, tokio::sync::mpsc::Receiver<Event>) {
        let (tx, rx) = events(2, interval);
        let mut r = Running::new(tx, Instant::now() + Duration::from_secs(60), 2, interval);
        r.left = 2;
        (r, rx)
    }

    fn text(index: u32, text: &str) -> Event {
        Event::Text {
            index,
            text: text.into(),
            logprobs: Vec::new(),
        }
    }

    fn received(rx: &mut tokio::sync::mpsc::Receiver<Event>) -> Vec<Event> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn the_first_text_goes_at_once_and_the_rest_in_pieces_of_the_interval() {
        let (mut r, mut rx) = running(4);
        r.text(0, "a".into(), Vec::new());
        assert_eq!(received(&mut rx), vec![text(0, "a")]);
        // Three characters over two choices: held; the fourth sends them, one event per
        // choice, in the order the choices first had some.
        for (i, c) in [(1, "x"), (0, "b"), (1, "y")] {
            r.text(i, c.into(), Vec::new());
        }
        assert_eq!(received(&mut rx), vec![]);
        r.text(0, "c".into(), Vec::new());
        assert_eq!(received(&mut rx), vec![text(1, "xy"), text(0, "bc")]);
        assert!(r.held.is_empty() && r.held_chars == 0 && r.held_since.is_none());
    }

    #[test]
    fn held_text_goes_once_it_has_waited_and_before_a_choice_ends() {
        let (mut r, mut rx) = running(16);
        r.text(0, "a".into(), Vec::new());
        r.text(0, "b".into(), Vec::new());
        let since = r.held_since.unwrap();
        r.release_late(since + GATHER_WAIT / 2);
        assert_eq!(received(&mut rx), vec![text(0, "a")]);
        r.release_late(since + GATHER_WAIT);
        assert_eq!(received(&mut rx), vec![text(0, "b")]);
        // A choice that ends sends what is held first.
        r.text(1, "z".into(), Vec::new());
        r.done(1, Finish::Length, 1);
        let done = Event::Done {
            index: 1,
            finish: Finish::Length,
            generated: 1,
        };
        assert_eq!(received(&mut rx), vec![text(1, "z"), done]);
        assert_eq!(r.left, 1);
    }

    #[test]
    fn log_probabilities_are_held_with_their_characters() {
        let (mut r, mut rx) = running(2);
        let lp = |c: char| Logprob {
            char: c,
            logprob: -1.0,
            top: Vec::new(),
        };
        r.text(0, "a".into(), vec![lp('a')]);
        r.text(0, "b".into(), vec![lp('b')]);
        r.text(0, "c".into(), vec![lp('c')]);
        let got = received(&mut rx);
        let Event::Text { text, logprobs, .. } = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(text, "bc");
        assert_eq!(logprobs.iter().map(|l| l.char).collect::<String>(), "bc");
    }
}
