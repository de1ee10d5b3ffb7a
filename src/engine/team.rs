//! A fixed team of threads for work too small for a fork/join per call: for the recurrent part
//! of a training step the team is started once per sweep (`run`) and its members meet at a spin
//! barrier after each time step; for stepping streams one character at a time (sampling,
//! serving, validation), where a sweep is one character, a `Crew` of threads lives as long as
//! its sampler and is handed each character's work, spinning briefly, then sleeping, between
//! characters.
//!
//! Measured reason to keep this by hand rather than use a pool crate: a character at H=256 is
//! tens of microseconds of work split over two cores with one meeting per layer; a thread spawn
//! (`run`'s scoped threads) costs about as much as the whole character, and general-purpose
//! pools park and wake through the kernel between jobs.
//!
//! Owns the threads and the barrier, plus `Shared`, the one place where several threads write
//! disjoint parts of one buffer. Does not own any maths.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A reusable barrier for `n` threads that spins (then yields): a time step takes tens of
/// microseconds, far less than a futex round trip would cost to wake a sleeping thread.
pub struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    pub fn new(n: usize) -> SpinBarrier {
        SpinBarrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    pub fn wait(&self) {
        if self.n == 1 {
            return;
        }
        let gen = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            return;
        }
        // A short spin, then yield: when the scheduler has put two members on one core, a long
        // spin starves the member it waits for (measured: a 2×128 RNN step at 2 threads
        // alternated between 4 and 35 ms with 20,000 spins; with 2,000 it stays at 4).
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == gen {
            if spins < 2_000 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Runs `f(k, barrier)` on `n` threads (k = 0 on the caller) and waits for all of them.
pub fn run<F: Fn(usize, &SpinBarrier) + Sync>(n: usize, f: F) {
    let barrier = SpinBarrier::new(n);
    if n == 1 {
        f(0, &barrier);
        return;
    }
    std::thread::scope(|s| {
        for k in 1..n {
            let (f, barrier) = (&f, &barrier);
            s.spawn(move || f(k, barrier));
        }
        f(0, &barrier);
    });
}

/// `run` on `crew` when there is one (of `n` members), else on scoped threads. A crew's
/// threads outlive the call: with AMX each new thread's first tile instruction costs about
/// 100 µs (the kernel grants it the tile state), measured.
pub fn run_on<F: Fn(usize, &SpinBarrier) + Sync>(crew: Option<&Crew>, n: usize, f: F) {
    match crew {
        Some(c) if c.size() == n => c.run(&f),
        _ => run(n, f),
    }
}

/// The job a crew runs: `f(member, barrier)` on every member.
type Job<'a> = dyn Fn(usize, &SpinBarrier) + Sync + 'a;

/// What the crew's threads share.
struct CrewState {
    barrier: SpinBarrier,
    /// Bumped for every job (and once more to stop).
    generation: AtomicUsize,
    /// Members still working on the current job.
    busy: AtomicUsize,
    stop: AtomicBool,
    /// The current job, with its lifetime erased: valid while `Crew::run` is running, and `run`
    /// returns only when every member is done with it.
    job: std::sync::Mutex<Option<&'static Job<'static>>>,
}

/// `n` members that run jobs together: member 0 is the caller of `run`, members 1.. are
/// threads that live as long as the crew.
pub struct Crew {
    state: Arc<CrewState>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Crew {
    /// A crew of `n` (at least 1) members.
    pub fn new(n: usize) -> Crew {
        let n = n.max(1);
        let state = Arc::new(CrewState {
            barrier: SpinBarrier::new(n),
            generation: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            job: std::sync::Mutex::new(None),
        });
        let threads = (1..n)
            .map(|k| {
                let st = Arc::clone(&state);
                std::thread::spawn(move || member_loop(&st, k))
            })
            .collect();
        Crew { state, threads }
    }

    /// The number of members.
    pub fn size(&self) -> usize {
        self.threads.len() + 1
    }

    /// Runs `f(k, barrier)` on every member k (k = 0 on the caller) and returns when all are
    /// done.
    pub fn run(&self, f: &Job<'_>) {
        if self.threads.is_empty() {
            f(0, &self.state.barrier);
            return;
        }
        // SAFETY: the reference is stored only until every member has finished this job,
        // which this function waits for before returning, so it never outlives `f`.
        let erased: &'static Job<'static> = unsafe { std::mem::transmute(f) };
        *self.state.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(erased);
        self.state.busy.store(self.threads.len(), Ordering::Release);
        self.state.generation.fetch_add(1, Ordering::AcqRel);
        for t in &self.threads {
            t.thread().unpark();
        }
        f(0, &self.state.barrier);
        let mut spins = 0u32;
        while self.state.busy.load(Ordering::Acquire) > 0 {
            spin_then_yield(&mut spins);
        }
        *self.state.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        self.state.generation.fetch_add(1, Ordering::AcqRel);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Spins, then yields: a short wait is a few hundred nanoseconds on the other core.
#[inline]
fn spin_then_yield(spins: &mut u32) {
    if *spins < 2_000 {
        std::hint::spin_loop();
        *spins += 1;
    } else {
        std::thread::yield_now();
    }
}

/// A crew member's life: wait for a job (spinning for about 50 µs, then sleeping until
/// unparked), run it, report done.
fn member_loop(st: &CrewState, k: usize) {
    let mut seen = 0usize;
    loop {
        let mut spins = 0u32;
        let gen = loop {
            let g = st.generation.load(Ordering::Acquire);
            if g != seen {
                break g;
            }
            if spins < 20_000 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::park_timeout(std::time::Duration::from_millis(50));
            }
        };
        seen = gen;
        if st.stop.load(Ordering::Acquire) {
            return;
        }
        let job = *st.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = job {
            f(k, &st.barrier);
        }
        st.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The units `[start, end)` that member `k` of `n` owns out of `h`: contiguous, sizes differ by
/// at most one.
pub fn share(h: usize, n: usize, k: usize) -> std::ops::Range<usize> {
    (k * h / n)..((k + 1) * h / n)
}

/// A buffer that team members write in disjoint parts, with barriers ordering every read of
/// another member's part after its write.
pub struct Shared<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: access goes through `slice`/`slice_mut`, whose callers promise disjointness.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    pub fn new(v: &mut [T]) -> Shared<T> {
        Shared {
            ptr: v.as_mut_ptr(),
            len: v.len(),
        }
    }

    /// # Safety
    /// No member writes `range` while this borrow lives (a barrier separates them).
    pub unsafe fn slice(&self, range: std::ops::Range<usize>) -> &[T] {
        assert!(range.start <= range.end && range.end <= self.len);
        std::slice::from_raw_parts(self.ptr.add(range.start), range.end - range.start)
    }

    /// # Safety
    /// No other member reads or writes `range` while this borrow lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut(&self, range: std::ops::Range<usize>) -> &mut [T] {
        assert!(range.start <= range.end && range.end <= self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.end - range.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_orders_steps_across_threads() {
        let n = 3;
        let mut buf = vec![0usize; n];
        let shared = Shared::new(&mut buf);
        let rounds = 200;
        let mismatches = AtomicUsize::new(0);
        run(n, |k, barrier| {
            for r in 1..=rounds {
                unsafe { shared.slice_mut(k..k + 1)[0] = r };
                barrier.wait();
                // every member must see every other member's write of this round
                if unsafe { shared.slice(0..n) }.iter().any(|&v| v != r) {
                    mismatches.fetch_add(1, Ordering::Relaxed);
                }
                barrier.wait();
            }
        });
        assert_eq!(mismatches.load(Ordering::Relaxed), 0);
        assert_eq!(buf, vec![rounds; n]);
    }

    #[test]
    fn a_crew_runs_many_jobs_with_barriers_and_stops_cleanly() {
        for n in [1, 2, 3] {
            let crew = Crew::new(n);
            assert_eq!(crew.size(), n);
            let mut buf = vec![0usize; n];
            for job in 1..=300 {
                let shared = Shared::new(&mut buf);
                let bad = AtomicUsize::new(0);
                crew.run(&|k, barrier| {
                    unsafe { shared.slice_mut(k..k + 1)[0] = job * 10 + k };
                    barrier.wait();
                    let all = unsafe { shared.slice(0..n) };
                    if all.iter().enumerate().any(|(i, &v)| v != job * 10 + i) {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                    barrier.wait();
                });
                assert_eq!(bad.load(Ordering::Relaxed), 0, "job {job}");
                assert_eq!(buf[n - 1], job * 10 + n - 1);
            }
        }
    }

    #[test]
    fn shares_cover_the_range() {
        let parts: Vec<_> = (0..3).map(|k| share(10, 3, k)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
    }
}
