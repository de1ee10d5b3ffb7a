//! N streams (usually one) stepped together: a matvec per layer per character that reads each
//! weight row once for all streams (no GEMM packing, no threads). The arithmetic has a fixed
//! order and our own exp, so a stream gives the same logits on every machine and the same bits
//! alone or in a batch.
//!
//! Owns the streams' recurrent state and logits. Does not own the choice of the next character
//! (`pick`) or the parameters.

use super::pick::{pick, Pick};
use crate::engine::cells::{cell_forward, gru_forward, rnn_forward};
use crate::engine::linalg::matvecs_acc;
use crate::model::{Cell, Layout};
use crate::rng::Rng;

/// N streams of one model stepped together, one character each per `feed`. Streams can join
/// (`add_stream`, from a zero state) and leave (`remove_stream`) between feeds; a stream's
/// logits do not depend on which others are in the batch.
pub struct Sampler<'a> {
    layout: &'a Layout,
    params: &'a [f32],
    n: usize,         // streams
    h: Vec<Vec<f32>>, // per layer (N, H)
    c: Vec<Vec<f32>>, // per layer (N, H), LSTM only
    gates: Vec<f32>,  // (N, G·H)
    hgates: Vec<f32>, // (N, G·H): the GRU's hidden side, kept apart for r ⊙ (W_hn h + b_hn)
    c_new: Vec<f32>,  // (H)
    logits: Vec<f32>, // (N, V)
    probs: Vec<f32>,  // (V)
    emb: Vec<f32>,    // (N, D): the streams' embedded inputs, with an embedding
}

impl<'a> Sampler<'a> {
    /// A batch of `streams` streams from a zero state over `params` (laid out by `layout`).
    pub fn new(layout: &'a Layout, params: &'a [f32], streams: usize) -> Self {
        let c = layout.config;
        assert_eq!(params.len(), layout.total);
        let mut s = Sampler {
            layout,
            params,
            n: 0,
            h: vec![Vec::new(); c.layers],
            c: vec![Vec::new(); c.layers],
            gates: Vec::new(),
            hgates: Vec::new(),
            c_new: vec![0.0; c.hidden],
            logits: Vec::new(),
            probs: vec![0.0; c.vocab],
            emb: Vec::new(),
        };
        for _ in 0..streams {
            s.add_stream();
        }
        s
    }

    /// The number of streams.
    pub fn streams(&self) -> usize {
        self.n
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
        let h = self.layout.config.hidden;
        let last = self.n - 1;
        for buf in self.h.iter_mut().chain(self.c.iter_mut()) {
            if !buf.is_empty() {
                buf.copy_within(last * h..(last + 1) * h, s * h); // c is empty but for the LSTM
            }
        }
        let v = self.layout.config.vocab;
        self.logits.copy_within(last * v..(last + 1) * v, s * v);
        self.n -= 1;
        self.resize();
    }

    /// Sizes every per-stream buffer for `n` streams; a new stream's state is zero.
    fn resize(&mut self) {
        let c = self.layout.config;
        let (h, n) = (c.hidden, self.n);
        let gh = c.cell.gates() * h;
        for buf in self.h.iter_mut() {
            buf.resize(n * h, 0.0);
        }
        if c.cell == Cell::Lstm {
            for buf in self.c.iter_mut() {
                buf.resize(n * h, 0.0);
            }
        }
        self.gates.resize(n * gh, 0.0);
        self.hgates
            .resize(if c.cell == Cell::Gru { n * gh } else { 0 }, 0.0);
        self.logits.resize(n * c.vocab, 0.0);
        self.emb.resize(n * c.embed, 0.0);
    }

    /// Runs one character per stream through the model (`ids.len()` = streams); the logits
    /// for each stream's next character are then in `logits(s)`.
    pub fn feed(&mut self, ids: &[u32]) {
        let cfg = self.layout.config;
        let (h, v, n) = (cfg.hidden, cfg.vocab, self.n);
        let gh = cfg.cell.gates() * h; // G·H
        let gru = cfg.cell == Cell::Gru;
        assert_eq!(ids.len(), n, "one id per stream");
        let p = self.params;
        for (l, off) in self.layout.layers.iter().enumerate() {
            for (s, g) in self.gates.chunks_exact_mut(gh).enumerate() {
                for (j, ((x, &bi), &bh)) in g
                    .iter_mut()
                    .zip(&p[off.b_ih..][..gh])
                    .zip(&p[off.b_hh..][..gh])
                    .enumerate()
                {
                    // The GRU's b_hh goes with W_hh·h into `hgates`.
                    *x = if gru { bi } else { bi + bh };
                    if l == 0 && self.layout.embed.is_none() {
                        // One-hot input: column `id` of W_ih (G·H, V).
                        *x += p[off.w_ih + j * v + ids[s] as usize];
                    }
                }
            }
            let (below, this) = self.h.split_at_mut(l);
            if l > 0 {
                matvecs_acc(&mut self.gates, &p[off.w_ih..][..gh * h], &below[l - 1], h);
            } else if let Some(e) = self.layout.embed {
                // Embedded input: W_ih (4H, D) times each stream's row E[id].
                let d = cfg.embed;
                for (row, &id) in self.emb.chunks_exact_mut(d).zip(ids) {
                    row.copy_from_slice(&p[e + id as usize * d..][..d]);
                }
                matvecs_acc(&mut self.gates, &p[off.w_ih..][..gh * d], &self.emb, d);
            }
            let h_l = &mut this[0]; // (N, H)
            let w_hh = &p[off.w_hh..][..gh * h];
            match cfg.cell {
                Cell::Lstm => {
                    matvecs_acc(&mut self.gates, w_hh, h_l, h);
                    for (s, g) in self.gates.chunks_exact_mut(gh).enumerate() {
                        let (gi, rest) = g.split_at_mut(h);
                        let (gf, rest) = rest.split_at_mut(h);
                        let (gg, go) = rest.split_at_mut(h);
                        let c_s = &mut self.c[l][s * h..][..h];
                        cell_forward(gi, gf, gg, go, c_s, &mut self.c_new, &mut h_l[s * h..][..h]);
                        c_s.copy_from_slice(&self.c_new);
                    }
                }
                Cell::Gru => {
                    for row in self.hgates.chunks_exact_mut(gh) {
                        row.copy_from_slice(&p[off.b_hh..][..gh]);
                    }
                    matvecs_acc(&mut self.hgates, w_hh, h_l, h);
                    let rows = self
                        .gates
                        .chunks_exact_mut(gh)
                        .zip(self.hgates.chunks_exact(gh));
                    for (s, (g, hg)) in rows.enumerate() {
                        for (x, &y) in g[..2 * h].iter_mut().zip(&hg[..2 * h]) {
                            *x += y;
                        }
                        let (gr, rest) = g.split_at_mut(h);
                        let (gz, gn) = rest.split_at_mut(h);
                        let h_s = &mut h_l[s * h..][..h];
                        self.c_new.copy_from_slice(h_s); // h_{t-1}
                        gru_forward(gr, gz, gn, &hg[2 * h..], &self.c_new, h_s);
                    }
                }
                Cell::Rnn => {
                    matvecs_acc(&mut self.gates, w_hh, h_l, h);
                    for (g, h_s) in self.gates.chunks_exact_mut(h).zip(h_l.chunks_exact_mut(h)) {
                        rnn_forward(g, h_s);
                    }
                }
            }
        }
        for row in self.logits.chunks_exact_mut(v) {
            row.copy_from_slice(&p[self.layout.head_b..][..v]);
        }
        let top = &self.h[cfg.layers - 1];
        matvecs_acc(&mut self.logits, &p[self.layout.head_w..][..v * h], top, h);
    }

    /// Stream `s`'s logits for its next character, from the last `feed`.
    pub fn logits(&self, s: usize) -> &[f32] {
        let v = self.layout.config.vocab;
        &self.logits[s * v..][..v]
    }

    /// Picks the next character from the last logits: the argmax at temperature ≤ 1e-6,
    /// else a draw from softmax(logits / temperature), restricted to the `top_k` most likely.
    pub fn pick(&mut self, s: usize, how: &Pick, rng: &mut Rng) -> u32 {
        let v = self.layout.config.vocab;
        pick(&self.logits[s * v..][..v], &mut self.probs, how, rng)
    }

    /// Log-probability (nats) of `id` under stream `s`'s last logits at temperature 1.
    pub fn log_prob(&self, s: usize, id: u32) -> f64 {
        let logits = self.logits(s);
        let max = logits.iter().fold(f32::MIN, |m, &x| m.max(x)) as f64;
        let lse = max
            + logits
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
        logits[id as usize] as f64 - lse
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{init_params, State, Threads, Workspace};
    use crate::model::ModelConfig;
    use crate::rng::Rng;

    #[test]
    fn sampler_matches_the_batched_engine() {
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            for embed in [0, 5] {
                sampler_matches(cell, embed);
            }
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
        for t in 0..5 {
            s.feed(&x[2 * t..2 * t + 2]);
            alone.feed(&x[2 * t..2 * t + 1]);
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
            }
            assert!(
                alone.logits(0) == s.logits(0),
                "a stream gives the same bits alone"
            );
        }
    }
}
