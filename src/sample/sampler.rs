//! N streams (usually one) stepped together, one character each per `feed`, on a crew of
//! threads split by hidden units: member k computes its units' gates for every stream from its
//! share of the weights (resident in its core's cache; see `weights`), runs the cell for them,
//! and the crew meets once per layer, when the layer's new state is complete; the head's rows
//! are split the same way. Each row's dot product has a fixed order (`engine::kernels`) and the
//! gate maths is lane by lane, so a stream gives the same logits on every machine, at any thread
//! count, and alone or in a batch; in f32 the same bits as before the crew existed.
//!
//! Owns the streams' recurrent state and logits. Does not own the choice of the next character
//! (`pick`) or the weights' conversion (`weights`).

use super::pick::{pick, Pick};
use super::weights::{Packed, Precision, Share};
use crate::engine::cells::{cell_forward, gru_forward, rnn_forward};
use crate::engine::kernels::matvecs;
use crate::engine::team::{Crew, Shared, SpinBarrier};
use crate::model::{Cell, Layout};
use crate::rng::Rng;

/// One member's working buffers.
struct Scratch {
    gates: Vec<f32>, // (N, G·w): input side plus biases (LSTM, RNN: the whole pre-activation)
    hgates: Vec<f32>, // (N, G·w): the GRU's hidden side, kept apart for r ⊙ (W_hn h + b_hn)
    c_new: Vec<f32>, // (w)
    logits: Vec<f32>, // (N, v_k): its rows of the head
}

/// N streams of one model stepped together. Streams can join (`add_stream`, from a zero
/// state) and leave (`remove_stream`) between feeds; a stream's logits do not depend on which
/// others are in the batch.
pub struct Sampler {
    packed: Packed,
    crew: Crew,
    n: usize,              // streams
    h: [Vec<Vec<f32>>; 2], // per layer (N, H), twice: h[cur] is h_{t-1}, the other gets h_t
    cur: usize,            // which of `h` holds the current state
    c: Vec<Vec<f32>>,      // per layer (N, H), LSTM only
    emb: Vec<f32>,         // (N, D): the streams' embedded inputs, with an embedding
    ids: Vec<u32>,         // (N): this feed's inputs
    scratch: Vec<Scratch>, // per member
    logits: Vec<f32>,      // (N, V)
    probs: Vec<f32>,       // (V)
}

impl Sampler {
    /// A batch of `streams` streams from a zero state over `params` (laid out by `layout`) in
    /// f32, on one thread.
    pub fn new(layout: &Layout, params: &[f32], streams: usize) -> Self {
        Sampler::with(layout, params, streams, Precision::F32, 1)
    }

    /// A batch of `streams` streams over `params` converted to `precision`, split over a crew
    /// of `threads` (at most one per hidden unit).
    pub fn with(
        layout: &Layout,
        params: &[f32],
        streams: usize,
        precision: Precision,
        threads: usize,
    ) -> Self {
        let packed = Packed::new(layout, params, precision, threads);
        let c = layout.config;
        let members = packed.members();
        let mut s = Sampler {
            crew: Crew::new(members),
            n: 0,
            h: [vec![Vec::new(); c.layers], vec![Vec::new(); c.layers]],
            cur: 0,
            c: vec![Vec::new(); c.layers],
            emb: Vec::new(),
            ids: Vec::new(),
            scratch: (0..members)
                .map(|_| Scratch {
                    gates: Vec::new(),
                    hgates: Vec::new(),
                    c_new: Vec::new(),
                    logits: Vec::new(),
                })
                .collect(),
            logits: Vec::new(),
            probs: vec![0.0; c.vocab],
            packed,
        };
        for _ in 0..streams {
            s.add_stream();
        }
        s
    }

    /// Bytes a sampler of `streams` streams over `layout` holds, at most: the weights as
    /// converted (no more than the f32 parameters, whatever the precision), the members' cell
    /// scratch, and each stream's state, gates and logits, twice (grown a stream at a time, a
    /// buffer may hold up to twice its length). Saturates, so that counts from flags can be
    /// checked before anything is allocated (see `memory`).
    pub fn bytes(layout: &Layout, streams: usize) -> u64 {
        use crate::memory::buffer;
        let c = layout.config;
        let (l, h, v, g) = (c.layers, c.hidden, c.vocab, c.cell.gates());
        let lstm = usize::from(c.cell == Cell::Lstm);
        let gru = usize::from(c.cell == Cell::Gru);
        // h twice, c (LSTM), the embedded input, the id, the gates (and the GRU's hidden
        // side), the members' share of the logits and the logits.
        let per_stream = (2 + lstm) * l * h + c.embed + 1 + g * h * (1 + gru) + 2 * v;
        buffer(&[layout.total], 4)
            .saturating_add(buffer(&[v + h], 4))
            .saturating_add(buffer(&[2, streams, per_stream], 4))
    }

    /// The number of streams.
    pub fn streams(&self) -> usize {
        self.n
    }

    /// The precision of the weights.
    pub fn precision(&self) -> Precision {
        self.packed.precision
    }

    /// Threads the steps run on.
    pub fn threads(&self) -> usize {
        self.crew.size()
    }

    /// Adds a stream with a zero state after the others; returns its index.
    pub fn add_stream(&mut self) -> usize {
        self.n += 1;
        self.resize();
        self.n - 1
    }

    /// Removes stream `s`; the last stream takes its index (a swap-remove).
    pub fn remove_stream(&mut self, s: usize) {
        assert!(s < self.n, "no stream {s}");
        let h = self.packed.layout.config.hidden;
        let last = self.n - 1;
        let [h0, h1] = &mut self.h;
        let bufs = h0.iter_mut().chain(h1.iter_mut()).chain(self.c.iter_mut());
        for buf in bufs.filter(|b| !b.is_empty()) {
            buf.copy_within(last * h..(last + 1) * h, s * h); // c is empty but for the LSTM
        }
        let v = self.packed.layout.config.vocab;
        self.logits.copy_within(last * v..(last + 1) * v, s * v);
        self.n -= 1;
        self.resize();
    }

    /// Sizes every per-stream buffer for `n` streams; a new stream's state is zero.
    fn resize(&mut self) {
        let c = self.packed.layout.config;
        let (h, n) = (c.hidden, self.n);
        let [h0, h1] = &mut self.h;
        for buf in h0.iter_mut().chain(h1.iter_mut()) {
            buf.resize(n * h, 0.0);
        }
        if c.cell == Cell::Lstm {
            for buf in self.c.iter_mut() {
                buf.resize(n * h, 0.0);
            }
        }
        let g = c.cell.gates();
        for (sc, share) in self.scratch.iter_mut().zip(&self.packed.shares) {
            let w = share.units.len();
            sc.gates.resize(n * g * w, 0.0);
            sc.hgates
                .resize(if c.cell == Cell::Gru { n * g * w } else { 0 }, 0.0);
            sc.c_new.resize(w, 0.0);
            sc.logits.resize(n * share.vocab.len(), 0.0);
        }
        self.logits.resize(n * c.vocab, 0.0);
        self.emb.resize(n * c.embed, 0.0);
        self.ids.resize(n, 0);
    }

    /// Runs one character per stream through the model (`ids.len()` = streams); the logits
    /// for each stream's next character are then in `logits(s)`.
    pub fn feed(&mut self, ids: &[u32]) {
        let cfg = self.packed.layout.config;
        assert_eq!(ids.len(), self.n, "one id per stream");
        self.ids.copy_from_slice(ids);
        if !self.packed.embed.is_empty() {
            let d = cfg.embed;
            for (row, &id) in self.emb.chunks_exact_mut(d).zip(ids) {
                row.copy_from_slice(&self.packed.embed[id as usize * d..][..d]);
            }
        }
        let (cur, next) = (self.cur, 1 - self.cur);
        let [h0, h1] = &mut self.h;
        let (h_prev, h_next) = if cur == 0 { (h0, h1) } else { (h1, h0) };
        let step = Step {
            packed: &self.packed,
            n: self.n,
            ids: &self.ids,
            emb: &self.emb,
            h_prev: h_prev.iter_mut().map(|v| Shared::new(v)).collect(),
            h_next: h_next.iter_mut().map(|v| Shared::new(v)).collect(),
            c: self.c.iter_mut().map(|v| Shared::new(v)).collect(),
            scratch: Shared::new(&mut self.scratch),
            logits: Shared::new(&mut self.logits),
        };
        self.crew.run(&|k, barrier| step.member(k, barrier));
        self.cur = next;
    }

    /// Stream `s`'s logits for its next character, from the last `feed`.
    pub fn logits(&self, s: usize) -> &[f32] {
        let v = self.packed.layout.config.vocab;
        &self.logits[s * v..][..v]
    }

    /// Picks the next character from the last logits: the argmax at temperature ≤ 1e-6,
    /// else a draw from softmax(logits / temperature), restricted to the `top_k` most likely.
    pub fn pick(&mut self, s: usize, how: &Pick, rng: &mut Rng) -> u32 {
        let v = self.packed.layout.config.vocab;
        pick(&self.logits[s * v..][..v], &mut self.probs, how, rng)
    }

    /// Log-probability (nats) of `id` under stream `s`'s last logits at temperature 1:
    /// `(x_id − max) − ln Σ exp(x − max)` in f64, right for any finite logits (adding the max
    /// back first would cancel to 0 near 3e38).
    pub fn log_prob(&self, s: usize, id: u32) -> f64 {
        let logits = self.logits(s);
        let (max, ln_sum) = max_and_ln_sum(logits);
        (logits[id as usize] as f64 - max) - ln_sum
    }

    /// Log-probabilities (nats) under stream `s`'s last logits at temperature 1 (the model's
    /// own distribution, before a temperature, top-k or top-p shapes the draw): `id`'s, and the
    /// `top` most likely ids' with theirs, most likely first (ties to the lower id).
    pub fn log_probs(&self, s: usize, id: u32, top: usize) -> (f32, Vec<(u32, f32)>) {
        let logits = self.logits(s);
        let (max, ln_sum) = max_and_ln_sum(logits);
        let lp = |i: usize| ((logits[i] as f64 - max) - ln_sum) as f32;
        let mut best = Vec::new();
        if top > 0 {
            let mut order: Vec<usize> = (0..logits.len()).collect();
            order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
            best = order.iter().take(top).map(|&i| (i as u32, lp(i))).collect();
        }
        (lp(id as usize), best)
    }

    /// Stream `s`'s recurrent state, to take it out of the batch and bring it back later
    /// (`add_saved`) without a change in its text.
    pub fn save_stream(&self, s: usize) -> Saved {
        assert!(s < self.n, "no stream {s}");
        let h = self.packed.layout.config.hidden;
        let rows = |bufs: &[Vec<f32>]| -> Vec<f32> {
            bufs.iter()
                .filter(|b| !b.is_empty())
                .flat_map(|b| b[s * h..(s + 1) * h].iter().copied())
                .collect()
        };
        Saved {
            h: rows(&self.h[self.cur]),
            c: rows(&self.c),
        }
    }

    /// Adds a stream with a saved state after the others; returns its index. Its next feed
    /// gives the logits it would have had had it never left.
    pub fn add_saved(&mut self, saved: &Saved) -> usize {
        let s = self.add_stream();
        let h = self.packed.layout.config.hidden;
        let cur = self.cur;
        for (l, row) in saved.h.chunks_exact(h).enumerate() {
            self.h[cur][l][s * h..(s + 1) * h].copy_from_slice(row);
        }
        for (l, row) in saved.c.chunks_exact(h).enumerate() {
            self.c[l][s * h..(s + 1) * h].copy_from_slice(row);
        }
        s
    }
}

/// A stream's recurrent state out of a sampler.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    h: Vec<f32>, // (L, H): each layer's h_t
    c: Vec<f32>, // (L, H): each layer's c_t (LSTM; empty otherwise)
}

/// The largest logit and ln Σ exp(x − max), in f64: a log-probability is (x − max) − ln_sum,
/// right for any finite logits (adding the max back first would cancel to 0 near 3e38).
fn max_and_ln_sum(logits: &[f32]) -> (f64, f64) {
    let max = logits.iter().fold(f32::MIN, |m, &x| m.max(x)) as f64;
    let ln_sum = logits
        .iter()
        .map(|&x| (x as f64 - max).exp())
        .sum::<f64>()
        .ln();
    (max, ln_sum)
}

/// One feed's view of the sampler, shared by the crew's members.
struct Step<'a> {
    packed: &'a Packed,
    n: usize,
    ids: &'a [u32],
    emb: &'a [f32],
    h_prev: Vec<Shared<f32>>, // per layer (N, H): h_{t-1}
    h_next: Vec<Shared<f32>>, // per layer (N, H): h_t, written unit share by unit share
    c: Vec<Shared<f32>>,      // per layer (N, H), LSTM
    scratch: Shared<Scratch>,
    logits: Shared<f32>, // (N, V)
}

impl Step<'_> {
    /// Member k's part of a feed: its units of every layer (meeting the crew after each), then
    /// its rows of the head.
    fn member(&self, k: usize, barrier: &SpinBarrier) {
        let cfg = self.packed.layout.config;
        let (hd, n) = (cfg.hidden, self.n);
        let share = &self.packed.shares[k];
        // SAFETY (all `Shared` accesses): member k writes only its own scratch, its own units'
        // columns of h_next and c, and its own columns of the logits; it reads h_prev (nobody
        // writes it during a feed) and h_next of the layer below only after the barrier that
        // follows every member's write of it.
        let sc = &mut unsafe { self.scratch.slice_mut(k..k + 1) }[0];
        for l in 0..share.layers.len() {
            let h_prev = unsafe { self.h_prev[l].slice(0..n * hd) };
            let below = (l > 0).then(|| unsafe { self.h_next[l - 1].slice(0..n * hd) });
            self.gates(share, l, sc, h_prev, below);
            self.cell(share, l, sc, h_prev);
            barrier.wait();
        }
        // The head: this member's vocabulary rows for every stream.
        let v = cfg.vocab;
        let vk = share.vocab.len();
        if vk > 0 {
            let top = unsafe { self.h_next[cfg.layers - 1].slice(0..n * hd) };
            for row in sc.logits.chunks_exact_mut(vk) {
                row.copy_from_slice(&share.head_b);
            }
            matvecs(&mut sc.logits, share.head_w.rows(), top, hd);
            for (s, row) in sc.logits.chunks_exact(vk).enumerate() {
                let at = s * v + share.vocab.start;
                unsafe { self.logits.slice_mut(at..at + vk) }.copy_from_slice(row);
            }
        }
    }

    /// The member's gate pre-activations of layer l for every stream, in the order the
    /// single-threaded sampler had: biases, then the input, then the hidden side.
    fn gates(
        &self,
        share: &Share,
        l: usize,
        sc: &mut Scratch,
        h_prev: &[f32],
        below: Option<&[f32]>,
    ) {
        let cfg = self.packed.layout.config;
        let ls = &share.layers[l];
        let gw = ls.b_ih.len(); // G·w
        let gru = self.packed.gru();
        for (s, row) in sc.gates.chunks_exact_mut(gw).enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                // The GRU's b_hh goes with W_hh·h into `hgates`.
                *x = if gru {
                    ls.b_ih[j]
                } else {
                    ls.b_ih[j] + ls.b_hh[j]
                };
            }
            if !ls.onehot.is_empty() {
                let col = &ls.onehot[self.ids[s] as usize * gw..][..gw];
                for (x, &w) in row.iter_mut().zip(col) {
                    *x += w;
                }
            }
        }
        match (&ls.w_ih, below) {
            (Some(w), Some(x)) => matvecs(&mut sc.gates, w.rows(), x, cfg.hidden),
            (Some(w), None) => matvecs(&mut sc.gates, w.rows(), self.emb, cfg.embed),
            (None, _) => {}
        }
        if gru {
            for row in sc.hgates.chunks_exact_mut(gw) {
                row.copy_from_slice(&ls.b_hh);
            }
            matvecs(&mut sc.hgates, ls.w_hh.rows(), h_prev, cfg.hidden);
        } else {
            matvecs(&mut sc.gates, ls.w_hh.rows(), h_prev, cfg.hidden);
        }
    }

    /// The cell on the member's units for every stream: h_t (and c_t) of its units.
    fn cell(&self, share: &Share, l: usize, sc: &mut Scratch, h_prev: &[f32]) {
        let cfg = self.packed.layout.config;
        let (hd, n) = (cfg.hidden, self.n);
        let u = share.units.clone();
        let w = u.len();
        let g = cfg.cell.gates();
        for s in 0..n {
            let r = s * hd + u.start..s * hd + u.end;
            let h_out = unsafe { self.h_next[l].slice_mut(r.clone()) };
            let row = &mut sc.gates[s * g * w..][..g * w];
            match cfg.cell {
                Cell::Lstm => {
                    let (gi, rest) = row.split_at_mut(w);
                    let (gf, rest) = rest.split_at_mut(w);
                    let (gg, go) = rest.split_at_mut(w);
                    let c_s = unsafe { self.c[l].slice_mut(r) };
                    cell_forward(gi, gf, gg, go, c_s, &mut sc.c_new, h_out);
                    c_s.copy_from_slice(&sc.c_new);
                }
                Cell::Gru => {
                    let hg = &sc.hgates[s * g * w..][..g * w];
                    for (x, &y) in row[..2 * w].iter_mut().zip(&hg[..2 * w]) {
                        *x += y;
                    }
                    let (gr, rest) = row.split_at_mut(w);
                    let (gz, gn) = rest.split_at_mut(w);
                    gru_forward(gr, gz, gn, &hg[2 * w..], &h_prev[r], h_out);
                }
                Cell::Rnn => rnn_forward(row, h_out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{init_params, State, Threads, Workspace};
    use crate::model::ModelConfig;
    use crate::rng::Rng;

    #[test]
    fn bytes_bounds_what_a_sampler_holds() {
        for (cell, embed) in [(Cell::Lstm, 0), (Cell::Gru, 6), (Cell::Rnn, 0)] {
            let layout = Layout::new(ModelConfig {
                cell,
                vocab: 50,
                hidden: 24,
                layers: 2,
                embed,
            });
            let params = init_params(&layout, &mut Rng::new(1));
            for streams in [1, 7] {
                let s = Sampler::with(&layout, &params, streams, Precision::F32, 3);
                let vecs = |v: &[Vec<f32>]| v.iter().map(Vec::capacity).sum::<usize>();
                let mut floats = vecs(&s.h[0]) + vecs(&s.h[1]) + vecs(&s.c) + s.emb.capacity();
                floats += s.ids.capacity() + s.logits.capacity() + s.probs.capacity();
                for sc in &s.scratch {
                    floats += sc.gates.capacity() + sc.hgates.capacity();
                    floats += sc.c_new.capacity() + sc.logits.capacity();
                }
                let weights: usize = s.packed.bytes_per_member().iter().sum::<usize>()
                    + s.packed
                        .shares
                        .iter()
                        .map(|sh| {
                            4 * (sh.head_b.len()
                                + sh.layers
                                    .iter()
                                    .map(|l| l.onehot.len() + 2 * l.b_ih.len())
                                    .sum::<usize>())
                        })
                        .sum::<usize>()
                    + 4 * s.packed.embed.len();
                let held = (4 * floats + weights) as u64;
                let want = Sampler::bytes(&layout, streams);
                assert!(
                    held <= want && want <= held * 3 / 2,
                    "{cell:?} {streams}: {held} {want}"
                );
            }
        }
    }

    #[test]
    fn log_probabilities_are_right_for_any_finite_logits() {
        let layout = Layout::new(ModelConfig {
            cell: Cell::Lstm,
            vocab: 4,
            hidden: 4,
            layers: 1,
            embed: 0,
        });
        let params = init_params(&layout, &mut Rng::new(1));
        let mut s = Sampler::new(&layout, &params, 1);
        // Equal logits near 3e38: a uniform guess (adding the max back first gave 0).
        s.logits.fill(3e38);
        assert!(
            (s.log_prob(0, 2) + 4f64.ln()).abs() < 1e-12,
            "{}",
            s.log_prob(0, 2)
        );
        s.logits.copy_from_slice(&[3e38, -3e38, 0.0, 0.0]);
        assert!((s.log_prob(0, 1) / -6e38 - 1.0).abs() < 1e-6);
        assert_eq!(s.log_prob(0, 0), 0.0);
    }

    #[test]
    fn sampler_matches_the_batched_engine() {
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            for embed in [0, 5] {
                sampler_matches(cell, embed);
            }
        }
    }

    #[test]
    fn a_saved_stream_comes_back_with_the_logits_it_would_have_had() {
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            let layout = Layout::new(ModelConfig {
                cell,
                vocab: 7,
                hidden: 10,
                layers: 2,
                embed: 0,
            });
            let p: Vec<f32> = init_params(&layout, &mut Rng::new(5));
            let mut twin = Sampler::new(&layout, &p, 1);
            let mut s = Sampler::with(&layout, &p, 3, Precision::F32, 2);
            let ids = [1u32, 4, 2, 6, 0, 3];
            for &id in &ids[..3] {
                twin.feed(&[id]);
                s.feed(&[5, id, 2]);
            }
            // Stream 1 leaves for two feeds of the others, then comes back last.
            let saved = s.save_stream(1);
            s.remove_stream(1);
            s.feed(&[1, 1]);
            s.feed(&[0, 3]);
            assert_eq!(s.add_saved(&saved), 2);
            for &id in &ids[3..] {
                twin.feed(&[id]);
                s.feed(&[4, 2, id]);
                assert!(s.logits(2) == twin.logits(0), "{cell:?}");
            }
            let (lp, top) = s.log_probs(2, 3, 3);
            assert!((lp as f64 - s.log_prob(2, 3)).abs() < 1e-6);
            assert_eq!(top.len(), 3);
            assert!(top.windows(2).all(|w| w[0].1 >= w[1].1), "{top:?}");
            let total: f64 = (0..7).map(|i| s.log_prob(2, i).exp()).sum();
            assert!((total - 1.0).abs() < 1e-6);
            assert_eq!(top[0].0 as usize, {
                let l = s.logits(2);
                (0..7).fold(0, |b, i| if l[i] > l[b] { i } else { b })
            });
        }
    }

    fn sampler_matches(cell: Cell, embed: usize) {
        // Two streams at once against the training engine with B = 2.
        let layout = Layout::new(ModelConfig {
            cell,
            vocab: 9,
            hidden: 12,
            layers: 2,
            embed,
        });
        let p: Vec<f32> = init_params(&layout, &mut Rng::new(1));
        let x = [3u32, 5, 0, 0, 8, 1, 8, 2, 1, 7]; // time-major (T = 5, B = 2)
        let mut ws = Workspace::<f32>::new(&layout, 2, 5, false, Threads(1));
        ws.forward(&p, &layout, &x, &State::zeros(2, 2, 12));
        let mut s = Sampler::new(&layout, &p, 2);
        let mut alone = Sampler::new(&layout, &p, 1);
        let mut crew = Sampler::with(&layout, &p, 2, Precision::F32, 3);
        for t in 0..5 {
            s.feed(&x[2 * t..2 * t + 2]);
            alone.feed(&x[2 * t..2 * t + 1]);
            crew.feed(&x[2 * t..2 * t + 2]);
            for b in 0..2 {
                for (a, w) in s
                    .logits(b)
                    .iter()
                    .zip(&ws.logits(9)[(2 * t + b) * 9..][..9])
                {
                    assert!(
                        (a - w).abs() < 1e-5,
                        "{cell:?} step {t} stream {b}: {a} vs {w}"
                    );
                }
                assert!(
                    crew.logits(b) == s.logits(b),
                    "three threads give the same bits"
                );
            }
            assert!(
                alone.logits(0) == s.logits(0),
                "a stream gives the same bits alone"
            );
        }
    }
}
