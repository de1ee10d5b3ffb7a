//! One model's queue: the line its requests wait in between their handler and the model's
//! scheduler, and the count of those waiting, which is both the limit (`--queue`) and the
//! `queue_length` metric. A handler appends a job or hears why it cannot; the scheduler takes
//! jobs from the head while its batch has room, and a job that does not fit yet stays at the
//! head, so none overtakes another.
//!
//! A job's events go back to its handler on a small channel (`events`): a handler whose client
//! does not read leaves it full, and the scheduler then pauses that job rather than generate
//! into memory nobody reads.
//!
//! Owns the job (what waits, and the channel its handler hears back on), the line and its
//! count. Does not decide when a job runs (`scheduler`) or what an error looks like on the
//! wire (`api`).

use crate::sample::{Finish, Logprob, Stream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Sender;

/// A validated request on its way to a scheduler: its choices' streams, in choice order.
pub struct Job {
    /// The request's number: the scheduler's key for its streams.
    pub id: u64,
    pub streams: Vec<Stream>,
    /// Where its events go (a channel from `events`); closed when the client has gone.
    pub tx: Sender<Event>,
    /// When it must have finished (`--timeout` after it arrived).
    pub deadline: Instant,
}

/// What a job's handler hears back.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The log-probabilities of choice `index`'s prompt, every character after the first
    /// (when the request asks for them), before its first text.
    Prompt { index: u32, logprobs: Vec<Logprob> },
    /// More text of choice `index` (never empty), with its characters' log-probabilities when
    /// the request asks for them (else none).
    Text {
        index: u32,
        text: String,
        logprobs: Vec<Logprob>,
    },
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
    /// `--queue` jobs already wait for this model.
    QueueFull,
    /// The server is shutting down: the job was not admitted, or its grace period ran out.
    ShuttingDown,
    /// The job ran past its deadline (`--timeout`).
    TimedOut,
}

/// Characters a job's channel holds per choice: enough that a client that reads keeps its
/// streams stepping, few enough that one that does not costs little memory.
pub const CHARS_PER_CHOICE: usize = 64;

/// The channel of a job with `choices` choices whose text comes `interval` characters to an
/// event (`--stream-interval`): room for `CHARS_PER_CHOICE` characters per choice (4 events at
/// least, for its prompt's log-probabilities and its end) and one more event, which the
/// scheduler keeps for the event that ends the job with an error, so that a full channel
/// never hides why a job ended.
pub fn events(
    choices: usize,
    interval: usize,
) -> (Sender<Event>, tokio::sync::mpsc::Receiver<Event>) {
    let per_choice = (CHARS_PER_CHOICE / interval.max(1)).max(4);
    tokio::sync::mpsc::channel(per_choice * choices.max(1) + 1)
}

/// The handlers' end of a model's queue.
pub struct Queue {
    tx: SyncSender<Job>,
    /// Jobs appended and not yet taken (the one held at the head included).
    waiting: Arc<AtomicUsize>,
    /// Jobs that may wait at most.
    limit: usize,
}

/// The scheduler's end of a model's queue.
pub struct Waiting {
    rx: Receiver<Job>,
    /// The job at the head, taken from the channel but too big for the batch yet.
    held: Option<Job>,
    waiting: Arc<AtomicUsize>,
}

/// What [`Waiting::pop`] found.
pub enum Next {
    /// The job at the head, no longer counted as waiting.
    Job(Job),
    /// No job, or none that fits yet.
    Empty,
    /// Every handler's end is gone.
    Closed,
}

/// A queue where at most `limit` jobs wait.
pub fn channel(limit: usize) -> (Queue, Waiting) {
    // One more than the limit: the scheduler may hold one job back from the channel.
    let (tx, rx) = std::sync::mpsc::sync_channel(limit + 1);
    let waiting = Arc::new(AtomicUsize::new(0));
    let queue = Queue {
        tx,
        waiting: Arc::clone(&waiting),
        limit,
    };
    let far = Waiting {
        rx,
        held: None,
        waiting,
    };
    (queue, far)
}

impl Queue {
    /// Appends a job at the end of the line.
    ///
    /// # Errors
    /// `QueueFull` when `limit` jobs already wait; `ShuttingDown` when the scheduler has
    /// stopped.
    pub fn append(&self, job: Job) -> Result<(), JobError> {
        // The count, not the channel, is the limit: the scheduler may hold one job back from
        // the channel while the batch is full.
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(JobError::QueueFull);
        }
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                Err(JobError::QueueFull)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                Err(JobError::ShuttingDown)
            }
        }
    }
}

impl Waiting {
    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The job at the head if it has at most `room` streams; one that has more stays at the
    /// head. Waits up to `wait` for a job when none is there (zero: only looks).
    pub fn pop(&mut self, room: usize, wait: Duration) -> Next {
        let job = match self.held.take() {
            Some(j) => j,
            None if !wait.is_zero() => match self.rx.recv_timeout(wait) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => return Next::Empty,
                Err(RecvTimeoutError::Disconnected) => return Next::Closed,
            },
            None => match self.rx.try_recv() {
                Ok(j) => j,
                Err(TryRecvError::Empty) => return Next::Empty,
                Err(TryRecvError::Disconnected) => return Next::Closed,
            },
        };
        if job.streams.len() > room {
            self.held = Some(job);
            return Next::Empty;
        }
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        Next::Job(job)
    }

    /// Every job still waiting, taken out of the line (at shutdown).
    pub fn drain(&mut self) -> Vec<Job> {
        let jobs: Vec<Job> = self
            .held
            .take()
            .into_iter()
            .chain(self.rx.try_iter())
            .collect();
        self.waiting.fetch_sub(jobs.len(), Ordering::AcqRel);
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Settings;

    fn job(id: u64, streams: usize) -> (Job, tokio::sync::mpsc::Receiver<Event>) {
        let (tx, rx) = events(streams, 1);
        let streams = (0..streams)
            .map(|_| Stream::new(vec![0], &Settings::default()))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let job = Job {
            id,
            streams,
            tx,
            deadline,
        };
        (job, rx)
    }

    #[test]
    fn the_count_is_the_limit_and_a_job_too_big_stays_at_the_head() {
        let (queue, mut far) = channel(2);
        let (a, _ra) = job(1, 3);
        let (b, _rb) = job(2, 1);
        let (c, _rc) = job(3, 1);
        assert_eq!((queue.append(a), queue.append(b)), (Ok(()), Ok(())));
        assert_eq!(queue.append(c).unwrap_err(), JobError::QueueFull);
        assert_eq!(far.len(), 2);
        // Three streams do not fit in two: the job is held, still counted, and nothing
        // behind it overtakes it.
        assert!(matches!(far.pop(2, Duration::ZERO), Next::Empty));
        assert_eq!(far.len(), 2);
        assert!(matches!(far.pop(2, Duration::ZERO), Next::Empty));
        match far.pop(3, Duration::ZERO) {
            Next::Job(j) => assert_eq!(j.id, 1),
            _ => panic!("the held job did not come out"),
        }
        assert_eq!(far.len(), 1);
        let (d, _rd) = job(4, 1);
        assert_eq!(queue.append(d), Ok(()));
        let left: Vec<u64> = far.drain().iter().map(|j| j.id).collect();
        assert_eq!((left, far.len()), (vec![2, 4], 0));
        drop(far);
        let (e, _re) = job(5, 1);
        assert_eq!(queue.append(e).unwrap_err(), JobError::ShuttingDown);
        assert_eq!(queue.waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_queue_whose_handlers_are_gone_is_closed() {
        let (queue, mut far) = channel(1);
        drop(queue);
        assert!(matches!(
            far.pop(usize::MAX, Duration::from_millis(50)),
            Next::Closed
        ));
    }
}
