//! The batched recurrent engine: forward, loss and backward of an L-layer LSTM, GRU or tanh RNN
//! (PyTorch's equations) with one-hot or embedded input and a linear head, over B streams and
//! T steps, written by hand (ENGINE.md's layout). G is the cell's number of gate blocks
//! (LSTM 4, GRU 3, RNN 1).
//!
//! Everything that is not recurrent runs as one GEMM over all T·B rows (layer l>0's input
//! projection, the head, every weight gradient, the gradient into the layer below). Only
//! h_{t-1}·W_hhᵀ and dgates_t·W_hh run per step. The gate maths is fused into one pass.
//! All buffers live in `Workspace`, allocated once for (B, T); the step allocates nothing.
//!
//! Owns the maths of one training step. Does not own the parameters (a flat slice laid out by
//! `model::Layout`), the optimiser, or the data. Layout of activations is time-major: row
//! t·B + b is stream b at step t.

use crate::float::Float;
use crate::linalg::{matmul, matvec_acc, MatRef, Threads};
use crate::model::{Cell, Layout};
use crate::team::{self, share, Shared};

/// The recurrent state carried between batches: h and c of every layer, each (L, B, H).
/// Only the LSTM has a cell state; for the GRU and the RNN `c` stays zero.
#[derive(Clone, Debug, PartialEq)]
pub struct State<F> {
    pub h: Vec<F>, // (L, B, H)
    pub c: Vec<F>, // (L, B, H)
}

impl<F: Float> State<F> {
    pub fn zeros(layers: usize, batch: usize, hidden: usize) -> Self {
        let n = layers * batch * hidden;
        State {
            h: vec![F::ZERO; n],
            c: vec![F::ZERO; n],
        }
    }
    pub fn reset(&mut self) {
        self.h.fill(F::ZERO);
        self.c.fill(F::ZERO);
    }
}

/// Buffers for one (B, T) shape. Gradient buffers exist only when asked for.
pub struct Workspace<F> {
    pub batch: usize,
    pub seq: usize,
    hidden: usize,
    cell: Cell,
    t_len: usize,       // steps in the last forward (≤ seq)
    gates: Vec<Vec<F>>, // per layer (T, B, G·H): pre-activations, then activated (LSTM i, f, g, o)
    h: Vec<Vec<F>>,     // per layer (T+1, B, H); block 0 is the carried-in state
    c: Vec<Vec<F>>,     // LSTM only, per layer (T+1, B, H); block 0 is the carried-in state
    hn: Vec<Vec<F>>, // GRU only, per layer (T, B, H): W_hn·h_{t-1} + b_hn; in backward the n gate's input-side gradient
    pub logits: Vec<F>, // (T·B, V); after `loss_and_grad` it holds dlogits
    bias: Vec<F>, // (G·H): b_ih + b_hh of the layer being run (GRU: b_hn stays out, see `recur_forward`)
    wih0_t: Vec<F>, // (V, G·H): W_ih of layer 0 transposed, so the one-hot gather reads rows
    emb: Vec<F>,  // (T, B, D): the embedded input, when the model has an embedding
    grad: Option<GradBuffers<F>>,
    dropout: Option<Dropout<F>>,
    whh_pack: Vec<F>, // (G·H, H): W_hh's rows regrouped so each team member's are contiguous
    scratch: Vec<Vec<F>>, // per team member: (B, G·w) gates forward; (B, w) dh and dc backward
    team: usize,      // members of the recurrent team (≤ threads, ≤ H)
    pub threads: Threads, // for the large hoisted GEMMs
}

/// Inverted dropout on the input of every layer above the first and on the head's input.
struct Dropout<F> {
    masks: Vec<Vec<F>>, // per boundary (T, B, H): 0 or 1/(1−p); boundary l feeds layer l+1 or the head
    dropped: Vec<Vec<F>>, // per boundary (T, B, H): h ⊙ mask, what the layer above reads
}

struct GradBuffers<F> {
    dh: Vec<F>,       // (T, B, H): gradient into the current layer's outputs
    dx: Vec<F>,       // (T, B, H): gradient into the layer below's outputs
    dbias: Vec<F>,    // (G·H)
    dwih0_t: Vec<F>,  // (V, G·H): layer 0 input-weight gradient, transposed, touched rows only
    demb: Vec<F>,     // (T, B, D): gradient into the embedded input
    seen: Vec<bool>,  // (V): which rows of dwih0_t this step touched
    dstate: State<F>, // (L, B, H) each: gradient of the loss w.r.t. the carried-in state
}

impl<F: Float> Workspace<F> {
    pub fn new(
        layout: &Layout,
        batch: usize,
        seq: usize,
        with_grad: bool,
        threads: Threads,
    ) -> Self {
        let cfg = layout.config;
        let (l, h, v) = (cfg.layers, cfg.hidden, cfg.vocab);
        let gh = cfg.cell.gates() * h;
        let n = batch * seq;
        let per_layer = |len: usize| (0..l).map(|_| vec![F::ZERO; len]).collect::<Vec<_>>();
        let team = threads.0.clamp(1, h);
        let grad = with_grad.then(|| GradBuffers {
            dh: vec![F::ZERO; n * h],
            dx: vec![F::ZERO; n * h],
            dbias: vec![F::ZERO; gh],
            dwih0_t: vec![F::ZERO; if cfg.embed > 0 { 0 } else { v * gh }],
            demb: vec![F::ZERO; n * cfg.embed],
            seen: vec![false; v],
            dstate: State::zeros(l, batch, h),
        });
        Workspace {
            batch,
            seq,
            hidden: h,
            cell: cfg.cell,
            t_len: 0,
            gates: per_layer(n * gh),
            h: per_layer((seq + 1) * batch * h),
            c: per_layer(if cfg.cell == Cell::Lstm {
                (seq + 1) * batch * h
            } else {
                0
            }),
            hn: per_layer(if cfg.cell == Cell::Gru { n * h } else { 0 }),
            logits: vec![F::ZERO; n * v],
            bias: vec![F::ZERO; gh],
            wih0_t: vec![F::ZERO; if cfg.embed > 0 { 0 } else { v * gh }],
            emb: vec![F::ZERO; n * cfg.embed],
            grad,
            dropout: None,
            whh_pack: vec![F::ZERO; gh * h],
            scratch: (0..team)
                .map(|_| vec![F::ZERO; batch * cfg.cell.gates().max(2) * h.div_ceil(team)])
                .collect(),
            team,
            threads,
        }
    }

    /// Runs the model over `x` (t_len·B ids, time-major, t_len ≤ T) from `state`; fills the
    /// logits (t_len·B, V). The final state is read with `final_state`.
    pub fn forward(&mut self, params: &[F], layout: &Layout, x: &[u32], state: &State<F>) {
        let cfg = layout.config;
        let (b, h, v) = (self.batch, cfg.hidden, cfg.vocab);
        let gh = cfg.cell.gates() * h; // G·H
        assert!(
            x.len().is_multiple_of(b) && x.len() / b <= self.seq,
            "input does not fit the workspace"
        );
        assert_eq!(params.len(), layout.total);
        let t_len = x.len() / b;
        let n = t_len * b;
        self.t_len = t_len;

        // Layer 0's input weight, transposed (V, G·H): the one-hot product becomes a row copy.
        // With an embedding, the input is E[x] (T·B, D), and layer 0 runs a GEMM like the others.
        let d = cfg.embed;
        match layout.embed {
            None => {
                let w0 = &params[layout.layers[0].w_ih..][..gh * v];
                for (j, wrow) in w0.chunks_exact(v).enumerate() {
                    for (id, &w) in wrow.iter().enumerate() {
                        self.wih0_t[id * gh + j] = w;
                    }
                }
            }
            Some(e) => {
                for (row, &id) in self.emb[..n * d].chunks_exact_mut(d).zip(x) {
                    row.copy_from_slice(&params[e + id as usize * d..][..d]);
                }
            }
        }

        let gru = cfg.cell == Cell::Gru;
        for (l, off) in layout.layers.iter().enumerate() {
            // GRU: b_hn multiplies with r, so it joins the hidden side in `recur_forward`.
            let b_hh = &params[off.b_hh..][..gh];
            let b_hn: &[F] = if gru { &b_hh[2 * h..] } else { &[] };
            for (j, (s, &bi)) in self
                .bias
                .iter_mut()
                .zip(&params[off.b_ih..][..gh])
                .enumerate()
            {
                *s = if gru && j >= 2 * h { bi } else { bi + b_hh[j] };
            }
            let gates = &mut self.gates[l][..n * gh]; // (t_len, B, G·H)
            let (below, this_and_up) = self.h.split_at_mut(l);
            let hs = &mut this_and_up[0]; // (T+1, B, H)
            hs[..b * h].copy_from_slice(&state.h[l * b * h..][..b * h]);
            let cs: &mut [F] = match cfg.cell {
                Cell::Lstm => {
                    self.c[l][..b * h].copy_from_slice(&state.c[l * b * h..][..b * h]);
                    &mut self.c[l]
                }
                Cell::Gru => &mut self.hn[l],
                Cell::Rnn => &mut [],
            };

            // Input projection for all steps at once: gates = bias + x·W_ihᵀ.
            if l == 0 && d > 0 {
                for row in gates.chunks_exact_mut(gh) {
                    row.copy_from_slice(&self.bias);
                }
                let w_ih = MatRef::new(&params[off.w_ih..][..gh * d], gh, d);
                matmul(
                    gates,
                    MatRef::new(&self.emb[..n * d], n, d),
                    w_ih.t(),
                    true,
                    self.threads,
                );
            } else if l == 0 {
                for (row, &id) in gates.chunks_exact_mut(gh).zip(x) {
                    let w = &self.wih0_t[id as usize * gh..][..gh];
                    for ((r, &wv), &bv) in row.iter_mut().zip(w).zip(&self.bias) {
                        *r = wv + bv;
                    }
                }
            } else {
                for row in gates.chunks_exact_mut(gh) {
                    row.copy_from_slice(&self.bias);
                }
                let mut input = &below[l - 1][b * h..(t_len + 1) * b * h];
                if let Some(d) = &mut self.dropout {
                    apply_mask(
                        &mut d.dropped[l - 1][..n * h],
                        input,
                        &d.masks[l - 1][..n * h],
                    );
                    input = &d.dropped[l - 1][..n * h];
                }
                let w_ih = MatRef::new(&params[off.w_ih..][..gh * h], gh, h);
                matmul(
                    gates,
                    MatRef::new(input, n, h),
                    w_ih.t(),
                    true,
                    self.threads,
                );
            }

            // The recurrence: only h_{t-1}·W_hhᵀ is step by step, split over the team.
            recur_forward(
                cfg.cell,
                gates,
                hs,
                cs,
                &params[off.w_hh..][..gh * h],
                b_hn,
                &mut self.whh_pack,
                &mut self.scratch,
                b,
                h,
                t_len,
                self.team,
            );
        }

        // Head: logits = b + h_top·Wᵀ, one GEMM over all rows.
        let mut top = &self.h[cfg.layers - 1][b * h..(t_len + 1) * b * h];
        if let Some(d) = &mut self.dropout {
            let last = cfg.layers - 1;
            apply_mask(&mut d.dropped[last][..n * h], top, &d.masks[last][..n * h]);
            top = &d.dropped[last][..n * h];
        }
        let top = MatRef::new(top, n, h);
        let logits = &mut self.logits[..n * v];
        let hb = &params[layout.head_b..][..v];
        for row in logits.chunks_exact_mut(v) {
            row.copy_from_slice(hb);
        }
        let hw = MatRef::new(&params[layout.head_w..][..v * h], v, h);
        matmul(logits, top, hw.t(), true, self.threads);
    }

    /// Draws new inverted-dropout masks with drop probability `p` for the input of every layer
    /// above the first and for the head's input; they apply to every forward and backward
    /// until the next draw. `p = 0` turns dropout off.
    pub fn set_dropout(&mut self, p: f64, rng: &mut crate::rng::Rng) {
        if p <= 0.0 {
            self.dropout = None;
            return;
        }
        let len = self.seq * self.batch * self.hidden;
        let layers = self.h.len();
        let d = self.dropout.get_or_insert_with(|| Dropout {
            masks: (0..layers).map(|_| vec![F::ZERO; len]).collect(),
            dropped: (0..layers).map(|_| vec![F::ZERO; len]).collect(),
        });
        let keep = F::from_f64(1.0 / (1.0 - p));
        // 24-bit uniforms, two per draw of the generator.
        let threshold = (p * (1u64 << 24) as f64) as u64;
        for m in &mut d.masks {
            for pair in m.chunks_mut(2) {
                let r = rng.next_u64();
                for (k, v) in pair.iter_mut().enumerate() {
                    let u = (r >> (8 + 32 * k)) & 0xFF_FFFF;
                    *v = if u >= threshold { keep } else { F::ZERO };
                }
            }
        }
    }

    /// Logits of the last forward, (t_len·B, V).
    pub fn logits(&self, vocab: usize) -> &[F] {
        &self.logits[..self.t_len * self.batch * vocab]
    }

    /// Copies the state after the last forward's final step into `state` (the carry of
    /// truncated BPTT: values only, no gradient flows back through it).
    pub fn final_state(&self, state: &mut State<F>) {
        let bh = state.h.len() / self.h.len(); // B·H
        let t = self.t_len;
        for l in 0..self.h.len() {
            state.h[l * bh..][..bh].copy_from_slice(&self.h[l][t * bh..][..bh]);
            if self.cell == Cell::Lstm {
                state.c[l * bh..][..bh].copy_from_slice(&self.c[l][t * bh..][..bh]);
            }
        }
    }

    /// Summed cross-entropy (nats) of the last forward's logits against targets `y`; logits
    /// are left as they are.
    pub fn loss_sum(&self, y: &[u32], vocab: usize) -> f64 {
        let logits = &self.logits[..y.len() * vocab];
        logits
            .chunks_exact(vocab)
            .zip(y)
            .map(|(row, &yi)| log_sum_exp(row) - row[yi as usize].to_f64())
            .sum()
    }

    /// Mean cross-entropy over all rows; turns the logits into dloss/dlogits in place.
    pub fn loss_and_grad(&mut self, y: &[u32], vocab: usize) -> f64 {
        let n = y.len();
        assert_eq!(
            n,
            self.t_len * self.batch,
            "targets do not match the forward"
        );
        let scale = F::from_f64(1.0 / n as f64);
        let mut total = 0.0f64;
        for (row, &yi) in self.logits[..n * vocab].chunks_exact_mut(vocab).zip(y) {
            total += softmax_grad_row(row, yi as usize, scale);
        }
        total / n as f64
    }

    /// Backpropagates the dlogits left by `loss_and_grad` through the last forward;
    /// accumulates parameter gradients into `grads` (laid out like the parameters).
    pub fn backward(&mut self, params: &[F], layout: &Layout, x: &[u32], grads: &mut [F]) {
        let cfg = layout.config;
        let (b, h, v) = (self.batch, cfg.hidden, cfg.vocab);
        let gh = cfg.cell.gates() * h; // G·H
        let t_len = self.t_len;
        let n = t_len * b;
        assert_eq!(x.len(), n, "input does not match the forward");
        assert_eq!(grads.len(), layout.total);
        let threads = self.threads;
        let gb = self
            .grad
            .as_mut()
            .expect("workspace built without gradient buffers");

        // Head.
        let dlogits = MatRef::new(&self.logits[..n * v], n, v);
        let top = match &self.dropout {
            Some(d) => &d.dropped[cfg.layers - 1][..n * h],
            None => &self.h[cfg.layers - 1][b * h..(t_len + 1) * b * h],
        };
        let top = MatRef::new(top, n, h);
        matmul(
            &mut grads[layout.head_w..][..v * h],
            dlogits.t(),
            top,
            true,
            threads,
        ); // (V, H)
        let dhb = &mut grads[layout.head_b..][..v];
        for row in self.logits[..n * v].chunks_exact(v) {
            for (d, &g) in dhb.iter_mut().zip(row) {
                *d += g;
            }
        }
        let hw = MatRef::new(&params[layout.head_w..][..v * h], v, h);
        matmul(&mut gb.dh[..n * h], dlogits, hw, false, threads); // (N, H)
        if let Some(d) = &self.dropout {
            mask_in_place(&mut gb.dh[..n * h], &d.masks[cfg.layers - 1][..n * h]);
        }

        for (l, off) in layout.layers.iter().enumerate().rev() {
            // The gates buffer turns into dgates in place (each step's gates are read once):
            // first the gradient of the hidden side's pre-activations.
            let hs = &self.h[l];
            let cs: &mut [F] = match cfg.cell {
                Cell::Lstm => &mut self.c[l],
                Cell::Gru => &mut self.hn[l],
                Cell::Rnn => &mut [],
            };
            recur_backward(
                cfg.cell,
                &mut self.gates[l][..n * gh],
                &gb.dh[..n * h],
                hs,
                cs,
                &params[off.w_hh..][..gh * h],
                &mut self.scratch,
                &mut gb.dstate.h[l * b * h..][..b * h],
                &mut gb.dstate.c[l * b * h..][..b * h],
                b,
                h,
                t_len,
                self.team,
            );

            // Weight gradients, one GEMM each over all rows.
            let h_prev = MatRef::new(&hs[..n * h], n, h); // h_{t-1} for t = 0..T
            matmul(
                &mut grads[off.w_hh..][..gh * h],
                MatRef::new(&self.gates[l][..n * gh], n, gh).t(),
                h_prev,
                true,
                threads,
            );
            column_sums(&mut gb.dbias, &self.gates[l][..n * gh]);
            add_to(&mut grads[off.b_hh..][..gh], &gb.dbias);
            if cfg.cell == Cell::Gru {
                // The n gate's input side gets dn, its hidden side r⊙dn: swap in the former.
                let rows = self.gates[l][..n * gh].chunks_exact_mut(gh);
                for (row, dn) in rows.zip(self.hn[l].chunks_exact(h)) {
                    row[2 * h..].copy_from_slice(dn);
                }
                column_sums(&mut gb.dbias, &self.gates[l][..n * gh]);
            }
            add_to(&mut grads[off.b_ih..][..gh], &gb.dbias);
            let dgates_buf = &self.gates[l][..n * gh];
            let dgates = MatRef::new(dgates_buf, n, gh);
            if l > 0 {
                let input = match &self.dropout {
                    Some(d) => &d.dropped[l - 1][..n * h],
                    None => &self.h[l - 1][b * h..(t_len + 1) * b * h],
                };
                matmul(
                    &mut grads[off.w_ih..][..gh * h],
                    dgates.t(),
                    MatRef::new(input, n, h),
                    true,
                    threads,
                );
                let w_ih = MatRef::new(&params[off.w_ih..][..gh * h], gh, h);
                matmul(&mut gb.dx[..n * h], dgates, w_ih, false, threads);
                if let Some(d) = &self.dropout {
                    mask_in_place(&mut gb.dx[..n * h], &d.masks[l - 1][..n * h]);
                }
                std::mem::swap(&mut gb.dh, &mut gb.dx);
            } else if let Some(e) = layout.embed {
                // Embedded input: dW_ih = dgatesᵀ·E[x]; dE[x] += dgates·W_ih, a row scatter.
                let d = cfg.embed;
                let emb = MatRef::new(&self.emb[..n * d], n, d);
                matmul(
                    &mut grads[off.w_ih..][..gh * d],
                    dgates.t(),
                    emb,
                    true,
                    threads,
                );
                let w_ih = MatRef::new(&params[off.w_ih..][..gh * d], gh, d);
                matmul(&mut gb.demb[..n * d], dgates, w_ih, false, threads);
                for (row, &id) in gb.demb[..n * d].chunks_exact(d).zip(x) {
                    for (g, &r) in grads[e + id as usize * d..][..d].iter_mut().zip(row) {
                        *g += r;
                    }
                }
            } else {
                // One-hot input: dW_ih[:, id] += dgates row, a scatter into the transposed copy.
                gb.seen.fill(false);
                for (row, &id) in dgates_buf.chunks_exact(gh).zip(x) {
                    let id = id as usize;
                    let acc = &mut gb.dwih0_t[id * gh..][..gh];
                    if !gb.seen[id] {
                        gb.seen[id] = true;
                        acc.fill(F::ZERO);
                    }
                    for (a, &g) in acc.iter_mut().zip(row) {
                        *a += g;
                    }
                }
                let dw = &mut grads[off.w_ih..][..gh * v];
                for id in (0..v).filter(|&id| gb.seen[id]) {
                    let acc = &gb.dwih0_t[id * gh..][..gh];
                    for (j, &a) in acc.iter().enumerate() {
                        dw[j * v + id] += a;
                    }
                }
            }
        }
    }

    /// Gradient of the loss w.r.t. the carried-in state, from the last backward.
    pub fn dstate(&self) -> &State<F> {
        &self
            .grad
            .as_ref()
            .expect("workspace built without gradient buffers")
            .dstate
    }
}

crate::multiversion! {
    /// One row of the head's loss: turns logits into scale·(softmax − onehot(y)) in place and
    /// returns −log softmax[y] in nats. Max and sum run in 16 fixed lanes, so the loops
    /// vectorise (with a large vocabulary this is a fifth of the step) and give the same bits
    /// at every vector width.
    fn softmax_grad_row<F: Float>(row: &mut [F], yi: usize, scale: F) -> f64 {
        const W: usize = 16;
        let mut lanes = [row[0]; W];
        let mut chunks = row.chunks_exact(W);
        for c in &mut chunks {
            for j in 0..W {
                lanes[j] = lanes[j].max(c[j]);
            }
        }
        let max = chunks.remainder().iter().fold(lanes.iter().fold(row[0], |m, &x| m.max(x)), |m, &x| m.max(x));
        let z_y = (row[yi] - max).to_f64();
        for x in row.iter_mut() {
            *x = (*x - max).exp();
        }
        let mut acc = [F::ZERO; W];
        let mut chunks = row.chunks_exact(W);
        for c in &mut chunks {
            for j in 0..W {
                acc[j] += c[j];
            }
        }
        let mut sum = F::ZERO;
        for a in acc {
            sum += a;
        }
        for &x in chunks.remainder() {
            sum += x;
        }
        let inv = scale / sum;
        for x in row.iter_mut() {
            *x *= inv;
        }
        row[yi] -= scale;
        sum.to_f64().ln() - z_y
    }
}

/// sums = Σ over rows of `rows` (R, sums.len()).
fn column_sums<F: Float>(sums: &mut [F], rows: &[F]) {
    sums.fill(F::ZERO);
    for row in rows.chunks_exact(sums.len()) {
        for (d, &g) in sums.iter_mut().zip(row) {
            *d += g;
        }
    }
}

/// acc += x.
fn add_to<F: Float>(acc: &mut [F], x: &[F]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}

/// out = x ⊙ mask.
fn apply_mask<F: Float>(out: &mut [F], x: &[F], mask: &[F]) {
    for ((o, &a), &m) in out.iter_mut().zip(x).zip(mask) {
        *o = a * m;
    }
}

/// x ⊙= mask.
fn mask_in_place<F: Float>(x: &mut [F], mask: &[F]) {
    for (a, &m) in x.iter_mut().zip(mask) {
        *a *= m;
    }
}

crate::multiversion! {
    /// ln Σ exp(row) for validation: exp in the float type (our vectorising exp for f32; the
    /// largest term is exactly 1), summed in f64 over 16 fixed lanes. With a large vocabulary
    /// this is most of a validation (was all f64: 4 s per validation at V=6003).
    fn log_sum_exp<F: Float>(row: &[F]) -> f64 {
        const W: usize = 16;
        let max = row.iter().fold(row[0], |m, &x| m.max(x));
        let mut acc = [0.0f64; W];
        let mut chunks = row.chunks_exact(W);
        for c in &mut chunks {
            for j in 0..W {
                acc[j] += (c[j] - max).exp().to_f64();
            }
        }
        let mut sum: f64 = acc.iter().sum();
        for &x in chunks.remainder() {
            sum += (x - max).exp().to_f64();
        }
        max.to_f64() + sum.ln()
    }
}

crate::multiversion! {
    /// One row of the fused LSTM gate maths: activates the gates in place (i, f, o sigmoid;
    /// g tanh) and writes c_t and h_t.
    pub(crate) fn cell_forward<F: Float>(
        gi: &mut [F],
        gf: &mut [F],
        gg: &mut [F],
        go: &mut [F],
        c_prev: &[F],
        c_next: &mut [F],
        h_next: &mut [F],
    ) {
        let n = gi.len();
        let (gf, gg, go) = (&mut gf[..n], &mut gg[..n], &mut go[..n]);
        let (c_prev, c_next, h_next) = (&c_prev[..n], &mut c_next[..n], &mut h_next[..n]);
        for j in 0..n {
            let i = gi[j].sigmoid();
            let f = gf[j].sigmoid();
            let g = gg[j].tanh();
            let o = go[j].sigmoid();
            gi[j] = i;
            gf[j] = f;
            gg[j] = g;
            go[j] = o;
            let c = f * c_prev[j] + i * g;
            let t = c.tanh();
            c_next[j] = c;
            h_next[j] = o * t;
        }
    }
}

crate::multiversion! {
    /// One row of the GRU (PyTorch's nn.GRU): r = σ(gr), z = σ(gz), n = tanh(gn + r ⊙ hn),
    /// h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}. `gr`, `gz` hold the full pre-activations, `gn` the
    /// input side of n (W_in x + b_in) and `hn` its hidden side (W_hn h_{t-1} + b_hn); r, z, n
    /// are written back in place of them.
    pub(crate) fn gru_forward<F: Float>(
        gr: &mut [F],
        gz: &mut [F],
        gn: &mut [F],
        hn: &[F],
        h_prev: &[F],
        h_next: &mut [F],
    ) {
        let one = F::ONE;
        let n = gr.len();
        let (gz, gn, hn) = (&mut gz[..n], &mut gn[..n], &hn[..n]);
        let (h_prev, h_next) = (&h_prev[..n], &mut h_next[..n]);
        for j in 0..n {
            let r = gr[j].sigmoid();
            let z = gz[j].sigmoid();
            let nv = (gn[j] + r * hn[j]).tanh();
            gr[j] = r;
            gz[j] = z;
            gn[j] = nv;
            h_next[j] = (one - z) * nv + z * h_prev[j];
        }
    }
}

crate::multiversion! {
    /// One row of the tanh RNN: the pre-activation turns into h_t, kept in place and in `h_next`.
    pub(crate) fn rnn_forward<F: Float>(g: &mut [F], h_next: &mut [F]) {
        let n = g.len();
        let h_next = &mut h_next[..n];
        for j in 0..n {
            let a = g[j].tanh();
            g[j] = a;
            h_next[j] = a;
        }
    }
}

crate::multiversion! {
    /// One row of the backward LSTM gate maths for `w` units. Reads the activated gates, the
    /// gradient from above and the carried dh/dc; overwrites the gates with their
    /// pre-activation gradients and leaves dc_{t-1} in `dc_next` (dh_{t-1} comes from the GEMM
    /// with W_hh).
    fn cell_backward<F: Float>(
        gates: [&mut [F]; 4],
        dh_above: &[F],
        c: &[F],
        c_prev: &[F],
        dh_next: &[F],
        dc_next: &mut [F],
    ) {
        let one = F::ONE;
        let n = dh_above.len();
        let [gi, gf, gg, go] = gates.map(|s| &mut s[..n]);
        let (c, c_prev, dh_next, dc_next) = (&c[..n], &c_prev[..n], &dh_next[..n], &mut dc_next[..n]);
        for j in 0..n {
            let (i, f, gv, o) = (gi[j], gf[j], gg[j], go[j]);
            let dh = dh_above[j] + dh_next[j];
            let t = c[j].tanh(); // recomputed: cheaper than keeping (T, B, H) of it
            let dc = dc_next[j] + dh * o * (one - t * t);
            dc_next[j] = dc * f;
            gi[j] = dc * gv * i * (one - i);
            gf[j] = dc * c_prev[j] * f * (one - f);
            gg[j] = dc * i * (one - gv * gv);
            go[j] = dh * t * o * (one - o);
        }
    }
}

crate::multiversion! {
    /// One row of the backward GRU for `w` units. Reads r, z, n, the n gate's hidden side
    /// `hn`, h_{t-1}, the gradient from above and the recurrent dh_t in `dh_next`. Writes the
    /// hidden side's pre-activation gradients (dr, dz, r ⊙ dn) over the gates, the input
    /// side's dn over `hn`, and the direct part of dh_{t-1} (dh ⊙ z) over `dh_next`; the
    /// GEMM with W_hh adds the rest.
    fn gru_backward<F: Float>(
        gates: [&mut [F]; 3],
        hn: &mut [F],
        dh_above: &[F],
        h_prev: &[F],
        dh_next: &mut [F],
    ) {
        let one = F::ONE;
        let n = dh_above.len();
        let [gr, gz, gn] = gates.map(|s| &mut s[..n]);
        let (hn, h_prev, dh_next) = (&mut hn[..n], &h_prev[..n], &mut dh_next[..n]);
        for j in 0..n {
            let (r, z, nv) = (gr[j], gz[j], gn[j]);
            let dh = dh_above[j] + dh_next[j];
            let dn = dh * (one - z) * (one - nv * nv); // through tanh
            gr[j] = dn * hn[j] * r * (one - r);
            gz[j] = dh * (h_prev[j] - nv) * z * (one - z);
            gn[j] = dn * r;
            hn[j] = dn;
            dh_next[j] = dh * z;
        }
    }
}

crate::multiversion! {
    /// One row of the backward tanh RNN: the activation turns into its pre-activation's
    /// gradient (dh_{t-1} comes from the GEMM with W_hh).
    fn rnn_backward<F: Float>(g: &mut [F], dh_above: &[F], dh_next: &[F]) {
        let one = F::ONE;
        let n = g.len();
        let (dh_above, dh_next) = (&dh_above[..n], &dh_next[..n]);
        for j in 0..n {
            let a = g[j];
            g[j] = (dh_above[j] + dh_next[j]) * (one - a * a);
        }
    }
}

/// The forward recurrence of one layer. The team splits the hidden units: member k owns
/// `team::share(H, n, k)` (w units), computes their G gate columns from the whole h_{t-1}
/// with one GEMM against its rows of W_hh (kept hot in its core's cache), runs the cell, and
/// the team meets at a barrier after every step, when h_t is complete.
#[allow(clippy::too_many_arguments)]
fn recur_forward<F: Float>(
    cell: Cell,
    gates: &mut [F], // (t_len, B, G·H): input-side pre-activations in, activated gates out
    hs: &mut [F],    // (T+1, B, H): block 0 holds the carried-in h
    cs: &mut [F],    // LSTM (T+1, B, H), block 0 the carried-in c; GRU (T, B, H) hn out; RNN empty
    w_hh: &[F],      // (G·H, H)
    b_hn: &[F],      // GRU (H): the hidden side's bias of n; else empty
    pack: &mut [F],  // (G·H·H) scratch: per member (H, G·w)
    scratch: &mut [Vec<F>], // per member, ≥ B·G·w
    b: usize,
    h: usize,
    t_len: usize,
    n: usize,
) {
    let gn = cell.gates();
    let (gates_s, hs_s, cs_s, scratch_s, pack_s) = (
        Shared::new(gates),
        Shared::new(hs),
        Shared::new(cs),
        Shared::new(scratch),
        Shared::new(pack),
    );
    team::run(n, |k, barrier| {
        let u = share(h, n, k);
        let w = u.len();
        // SAFETY (all `Shared` accesses below): member k writes only its own units' columns of
        // gates, h and c (or hn), its own scratch and its own block of the pack; it reads other
        // members' columns of h only for the previous step, which the barrier has completed.
        let local = &mut unsafe { scratch_s.slice_mut(k..k + 1) }[0][..b * gn * w];
        let block = unsafe { pack_s.slice_mut(gn * u.start * h..gn * (u.start + w) * h) };
        pack_rows(block, w_hh, h, gn, u.clone(), b > 1);
        let block = &*block;
        let wk = MatRef::new(block, h, gn * w); // (H, G·w) when B > 1
        for t in 0..t_len {
            for bi in 0..b {
                let row = (t * b + bi) * gn * h;
                for g in 0..gn {
                    let dst = &mut local[(bi * gn + g) * w..][..w];
                    if cell == Cell::Gru && g == 2 {
                        dst.copy_from_slice(&b_hn[u.clone()]); // n's hidden side starts at b_hn
                    } else {
                        let seg = row + g * h + u.start..row + g * h + u.end;
                        dst.copy_from_slice(unsafe { gates_s.slice(seg) });
                    }
                }
            }
            let h_prev = unsafe { hs_s.slice(t * b * h..(t + 1) * b * h) };
            if b == 1 {
                matvec_acc(local, block, h_prev);
            } else {
                matmul(local, MatRef::new(h_prev, b, h), wk, true, Threads(1));
            }
            for bi in 0..b {
                let lrow = &mut local[bi * gn * w..][..gn * w];
                let r = |blk: usize| (blk * b + bi) * h + u.start..(blk * b + bi) * h + u.end;
                let row = (t * b + bi) * gn * h;
                let seg = |g: usize| row + g * h + u.start..row + g * h + u.end;
                match cell {
                    Cell::Lstm => {
                        let (gi, rest) = lrow.split_at_mut(w);
                        let (gf, rest) = rest.split_at_mut(w);
                        let (gg, go) = rest.split_at_mut(w);
                        unsafe {
                            cell_forward(
                                gi,
                                gf,
                                gg,
                                go,
                                cs_s.slice(r(t)),
                                cs_s.slice_mut(r(t + 1)),
                                hs_s.slice_mut(r(t + 1)),
                            );
                        }
                    }
                    Cell::Gru => {
                        let (gr, rest) = lrow.split_at_mut(w);
                        let (gz, hn) = rest.split_at_mut(w);
                        unsafe {
                            gru_forward(
                                gr,
                                gz,
                                gates_s.slice_mut(seg(2)),
                                hn,
                                hs_s.slice(r(t)),
                                hs_s.slice_mut(r(t + 1)),
                            );
                            cs_s.slice_mut(r(t)).copy_from_slice(hn); // hn of step t: block t
                        }
                    }
                    Cell::Rnn => unsafe { rnn_forward(lrow, hs_s.slice_mut(r(t + 1))) },
                }
                // GRU: n went straight to the gates; the scratch holds hn there.
                let back = if cell == Cell::Gru { 2 } else { gn };
                for g in 0..back {
                    let dst = unsafe { gates_s.slice_mut(seg(g)) };
                    dst.copy_from_slice(&lrow[g * w..][..w]);
                }
            }
            barrier.wait();
        }
    });
}

/// Member k's block of W_hh: its rows g·H + j (g over the G gates; j its units) as (G·w, H),
/// or transposed to (H, G·w) for a GEMM, a layout the kernel reads in place instead of
/// repacking the weights at every step (measured: H=256, 2 threads, 52k -> 59k chars/s). Each
/// member packs its own block, so it lands in that core's cache.
fn pack_rows<F: Float>(
    block: &mut [F],
    w_hh: &[F],
    h: usize,
    gn: usize,
    u: std::ops::Range<usize>,
    transpose: bool,
) {
    let w = u.len();
    let row = |g: usize, i: usize| &w_hh[(g * h + u.start + i) * h..][..h];
    if !transpose {
        for g in 0..gn {
            for i in 0..w {
                block[(g * w + i) * h..][..h].copy_from_slice(row(g, i));
            }
        }
        return;
    }
    // Transpose in 16×16 tiles so that reads and writes both stay within cache lines.
    const TILE: usize = 16;
    for g in 0..gn {
        for i0 in (0..w).step_by(TILE) {
            for p0 in (0..h).step_by(TILE) {
                for i in i0..(i0 + TILE).min(w) {
                    let r = row(g, i);
                    for p in p0..(p0 + TILE).min(h) {
                        block[p * gn * w + g * w + i] = r[p];
                    }
                }
            }
        }
    }
}

/// The backward recurrence of one layer, split by hidden unit like `recur_forward`. Member k
/// turns its units' dh (and dc) into their gate gradients, the team meets once dgates_t is
/// complete, then member k computes its units' columns of dh_{t-1} = dgates_t · W_hh (plus,
/// for the GRU, the direct path dh_t ⊙ z). Leaves the gradient w.r.t. the carried-in state in
/// `dh0`, `dc0` (dc0 zero but for the LSTM).
#[allow(clippy::too_many_arguments)]
fn recur_backward<F: Float>(
    cell: Cell,
    gates: &mut [F], // (t_len, B, G·H): activated gates in, the hidden side's gradients out
    dh: &[F],        // (t_len, B, H): gradient into this layer's outputs from above
    hs: &[F],        // (T+1, B, H)
    cs: &mut [F],    // LSTM (T+1, B, H) c; GRU (T, B, H) hn in, the n gate's input-side dn out
    w_hh: &[F],      // (G·H, H)
    scratch: &mut [Vec<F>], // per member, ≥ 2·B·w
    dh0: &mut [F],   // (B, H) out
    dc0: &mut [F],   // (B, H) out
    b: usize,
    h: usize,
    t_len: usize,
    n: usize,
) {
    let gn = cell.gates();
    let (dgates_s, cs_s, scratch_s, dh0_s, dc0_s) = (
        Shared::new(gates),
        Shared::new(cs),
        Shared::new(scratch),
        Shared::new(dh0),
        Shared::new(dc0),
    );
    team::run(n, |k, barrier| {
        let u = share(h, n, k);
        let w = u.len();
        // SAFETY (all `Shared` accesses below): member k writes only its own units' columns of
        // dgates, of hn and of dh0/dc0 and its own scratch; it reads all of dgates_t only after
        // the barrier that follows every member's write of it.
        let local = &mut unsafe { scratch_s.slice_mut(k..k + 1) }[0][..2 * b * w];
        let (dhn, dcn) = local.split_at_mut(b * w); // (B, w) each: dh_{t}, dc_{t} carried back
        dhn.fill(F::ZERO);
        dcn.fill(F::ZERO);
        // Member k's columns of W_hh: (G·H, w), a strided view.
        let w_cols = MatRef {
            data: &w_hh[u.start..],
            rows: gn * h,
            cols: w,
            rs: h,
            cs: 1,
        };
        for t in (0..t_len).rev() {
            for bi in 0..b {
                let rowg = (t * b + bi) * gn * h;
                let rowh = (t * b + bi) * h;
                let seg = |g: usize| rowg + g * h + u.start..rowg + g * h + u.end;
                let mine = rowh + u.start..rowh + u.end; // block t of (T+1, B, H) or (T, B, H)
                let dh_above = &dh[mine.clone()];
                let (dh_next, dc_next) = (&mut dhn[bi * w..][..w], &mut dcn[bi * w..][..w]);
                match cell {
                    Cell::Lstm => unsafe {
                        let c_t = rowh + b * h + u.start..rowh + b * h + u.end; // block t+1
                        cell_backward(
                            [0, 1, 2, 3].map(|g| dgates_s.slice_mut(seg(g))),
                            dh_above,
                            cs_s.slice(c_t),
                            cs_s.slice(mine), // c_{t-1}
                            dh_next,
                            dc_next,
                        );
                    },
                    Cell::Gru => unsafe {
                        gru_backward(
                            [0, 1, 2].map(|g| dgates_s.slice_mut(seg(g))),
                            cs_s.slice_mut(mine.clone()),
                            dh_above,
                            &hs[mine], // h_{t-1}
                            dh_next,
                        );
                    },
                    Cell::Rnn => unsafe {
                        rnn_backward(dgates_s.slice_mut(seg(0)), dh_above, dh_next);
                    },
                }
            }
            barrier.wait();
            let dg_t = unsafe { dgates_s.slice(t * b * gn * h..(t + 1) * b * gn * h) };
            let direct = cell == Cell::Gru; // dhn already holds dh_t ⊙ z
            matmul(
                dhn,
                MatRef::new(dg_t, b, gn * h),
                w_cols,
                direct,
                Threads(1),
            );
        }
        for bi in 0..b {
            let r = bi * h + u.start..bi * h + u.end;
            unsafe {
                dh0_s
                    .slice_mut(r.clone())
                    .copy_from_slice(&dhn[bi * w..][..w]);
                dc0_s.slice_mut(r).copy_from_slice(&dcn[bi * w..][..w]);
            }
        }
    });
}

#[cfg(test)]
mod tests;
