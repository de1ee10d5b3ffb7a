//! The workspace of one (B, T) shape and the step's forward and backward through it: the
//! input (one-hot gather or embedding), each recurrent layer, the head. Everything that is not
//! recurrent runs as one GEMM over all T·B rows (layer l>0's input projection, the head, every
//! weight gradient, the gradient into the layer below); the time loop is `recurrent`'s.
//! Activations are time-major: row t·B + b is stream b at step t.
//!
//! Owns the buffers (allocated once; a step allocates nothing) and the order of the passes.
//! Does not own the gate equations (`cells`), the time loop (`recurrent`) or the loss (`loss`).

use super::bf16::{self, Packs};
use super::float::Float;
use super::isa::{self, Bf16Products};
use super::linalg::{matmul, MatRef, Threads};
use super::recurrent::{recur_backward, recur_forward, RecurPacks};
use super::team::Crew;
use super::MatmulPrecision;
use crate::model::{Cell, LayerOffsets, Layout};

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
    pub(super) t_len: usize, // steps in the last forward (≤ seq)
    gates: Vec<Vec<F>>, // per layer (T, B, G·H): pre-activations, then activated (LSTM i, f, g, o)
    h: Vec<Vec<F>>,     // per layer (T+1, B, H); block 0 is the carried-in state
    c: Vec<Vec<F>>,     // LSTM only, per layer (T+1, B, H); block 0 is the carried-in state
    hn: Vec<Vec<F>>, // GRU only, per layer (T, B, H): W_hn·h_{t-1} + b_hn; in backward the n gate's input-side gradient
    pub logits: Vec<F>, // (T·B, V); after `loss_and_grad` it holds dlogits
    bias: Vec<F>, // (G·H): b_ih + b_hh of the layer being run (GRU: b_hn stays out, see `recur_forward`)
    wih0_t: Vec<F>, // (V, G·H): W_ih of layer 0 transposed, so the one-hot gather reads rows
    emb: Vec<F>,  // (T, B, D): the embedded input, when the model has an embedding
    grad: Option<GradBuffers<F>>,
    pub(super) dropout: Option<Dropout<F>>,
    whh_pack: Vec<F>, // (G·H, H): W_hh's rows regrouped so each team member's are contiguous
    scratch: Vec<Vec<F>>, // per team member: (B, G·w) gates forward; (B, w) dh and dc backward
    team: usize,      // members of the recurrent team (≤ threads, ≤ H)
    pub threads: Threads, // for the large hoisted GEMMs
    products: Products<F>, // the hoisted GEMMs in the workspace's precision
    recur_packs: Option<RecurPacks>, // bf16: the recurrence's packed operands
}

/// The hoisted GEMMs in one precision; in bf16 the packed operands are kept between calls.
struct Products<F> {
    precision: MatmulPrecision,
    kernel: Bf16Products, // bf16: the kernel that multiplies
    packs: Packs,
    out: Vec<F>,        // bf16: (K, M) scratch of `matmul_tn`'s transposed product
    crew: Option<Crew>, // bf16: the team's threads, kept for the whole run (see `team::run_on`)
}

impl<F: Float> Products<F> {
    /// `c (m × n) = [c +] a (m × k) · b (k × n)` (see `linalg::matmul`), with bf16 operands in
    /// `MatmulPrecision::Bf16`.
    fn matmul(
        &mut self,
        c: &mut [F],
        a: MatRef<F>,
        b: MatRef<F>,
        accumulate: bool,
        threads: Threads,
    ) {
        match self.precision {
            MatmulPrecision::F32 => matmul(c, a, b, accumulate, threads),
            MatmulPrecision::Bf16 => {
                self.packs.a.pack(a);
                self.packs.b.pack(b);
                let par = (self.kernel, self.crew.as_ref(), threads);
                bf16::gemm_any(
                    c,
                    self.packs.a.view(),
                    &self.packs.b,
                    (accumulate, None),
                    par,
                );
            }
        }
    }

    /// `c (m × n) = bias + a (m × k) · b (k × n)`, `bias` (n) in every row.
    fn matmul_bias(
        &mut self,
        c: &mut [F],
        a: MatRef<F>,
        b: MatRef<F>,
        bias: &[F],
        threads: Threads,
    ) {
        let n = b.cols;
        if self.precision == MatmulPrecision::F32 {
            for row in c[..a.rows * n].chunks_exact_mut(n) {
                row.copy_from_slice(bias);
            }
            return matmul(c, a, b, true, threads);
        }
        self.packs.a.pack(a);
        self.packs.b.pack(b);
        let par = (self.kernel, self.crew.as_ref(), threads);
        bf16::gemm_any(
            c,
            self.packs.a.view(),
            &self.packs.b,
            (false, Some(bias)),
            par,
        );
    }

    /// `c (M × K) += aᵀ · b` for `a` (N × M) and `b` (N × K): a weight gradient (a the gate
    /// gradients, b the layer's input). The tiles want the left operand's rows along N, so
    /// one operand is transposed while it is packed; in bf16, when M > K, the product is
    /// computed as cᵀ = bᵀ · a into a scratch and added transposed, so that the narrower b is
    /// the one transposed (at H=256 this packs a quarter of the values the other way would).
    fn matmul_tn(&mut self, c: &mut [F], a: MatRef<F>, b: MatRef<F>, threads: Threads) {
        let (m, k) = (a.cols, b.cols);
        if self.precision == MatmulPrecision::F32 || m <= k {
            return self.matmul(c, a.t(), b, true, threads);
        }
        self.packs.a.pack(b.t()); // (K, N)
        self.packs.b.pack(a); // (N, M)
        self.out.resize(k * m, F::ZERO);
        let out = &mut self.out[..k * m];
        let par = (self.kernel, self.crew.as_ref(), threads);
        bf16::gemm_any(out, self.packs.a.view(), &self.packs.b, (false, None), par);
        // c += outᵀ in 16 × 16 blocks (both sides stay within a few cache lines).
        for k0 in (0..k).step_by(16) {
            for m0 in (0..m).step_by(16) {
                for i in m0..(m0 + 16).min(m) {
                    let row = &mut c[i * k..][..k];
                    for kk in k0..(k0 + 16).min(k) {
                        row[kk] += out[kk * m + i];
                    }
                }
            }
        }
    }
}

/// Inverted dropout on the input of every layer above the first and on the head's input.
pub(super) struct Dropout<F> {
    pub(super) masks: Vec<Vec<F>>, // per boundary (T, B, H): 0 or 1/(1−p); boundary l feeds layer l+1 or the head
    dropped: Vec<Vec<F>>,          // per boundary (T, B, H): h ⊙ mask, what the layer above reads
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
            products: Products {
                precision: MatmulPrecision::F32,
                kernel: isa::kernels().bf16,
                packs: Packs::default(),
                out: Vec::new(),
                crew: None,
            },
            recur_packs: None,
        }
    }

    /// Bytes a workspace of this shape holds once it has run a step: what `new` allocates
    /// (the same shapes, term by term), the dropout masks when `dropout`, and in bf16 the
    /// packed operands (an upper bound: the largest product's, and W_hh's for the
    /// recurrence). Saturates instead of wrapping, so that shapes from flags can be checked
    /// before anything is allocated (see `memory`).
    pub fn bytes(
        layout: &Layout,
        (batch, seq): (usize, usize),
        (with_grad, dropout): (bool, bool),
        (precision, threads): (MatmulPrecision, Threads),
    ) -> u64 {
        use crate::memory::buffer;
        let cfg = layout.config;
        let (l, h, v, d) = (cfg.layers, cfg.hidden, cfg.vocab, cfg.embed);
        let g = cfg.cell.gates();
        let gh = g * h;
        let f = std::mem::size_of::<F>();
        let n = batch.saturating_mul(seq);
        let steps = seq.saturating_add(1);
        let team = threads.0.clamp(1, h);
        let onehot = if d > 0 { 0 } else { v };
        let lstm = usize::from(cfg.cell == Cell::Lstm);
        let gru = usize::from(cfg.cell == Cell::Gru);
        let mut sum = [
            buffer(&[l, n, gh], f),                                // gates
            buffer(&[l, steps, batch, h], f),                      // h
            buffer(&[lstm, l, steps, batch, h], f),                // c
            buffer(&[gru, l, n, h], f),                            // hn
            buffer(&[n, v], f),                                    // logits
            buffer(&[gh], f),                                      // bias
            buffer(&[onehot, gh], f),                              // wih0_t
            buffer(&[n, d], f),                                    // emb
            buffer(&[gh, h], f),                                   // whh_pack
            buffer(&[team, batch, g.max(2), h.div_ceil(team)], f), // scratch
        ]
        .iter()
        .fold(0u64, |a, &b| a.saturating_add(b));
        if with_grad {
            sum = [
                buffer(&[2, n, h], f),        // dh, dx
                buffer(&[gh], f),             // dbias
                buffer(&[onehot, gh], f),     // dwih0_t
                buffer(&[n, d], f),           // demb
                buffer(&[v], 1),              // seen
                buffer(&[2, l, batch, h], f), // dstate
            ]
            .iter()
            .fold(sum, |a, &b| a.saturating_add(b));
        }
        if dropout {
            sum = sum.saturating_add(buffer(&[2, l, seq, batch, h], f)); // masks, dropped
        }
        if precision == MatmulPrecision::Bf16 {
            // Packed A (m × k) and B (k × n) in bf16, padded to 32: at most the largest
            // product's operands (rows over all T·B, the widest of G·H, V, H and D), the
            // transposed product's f32 scratch, and the team's packed W_hh with two step
            // operands.
            let wide = gh.max(v).max(h).max(d).saturating_add(32);
            let rows = n.saturating_add(32);
            sum = [
                buffer(&[2, rows, wide], 2),
                buffer(&[h.max(d).saturating_add(32), wide], 2),
                buffer(&[gh.max(v), h.max(d)], 4),
                buffer(&[h.saturating_add(32), gh.saturating_add(32 * team)], 2),
                buffer(&[2, batch.saturating_add(32), h.saturating_add(32)], 2),
            ]
            .iter()
            .fold(sum, |a, &b| a.saturating_add(b));
        }
        sum
    }

    /// Sets the operands' precision of every matrix product of the step (f32 by default).
    pub fn set_precision(&mut self, p: MatmulPrecision) {
        self.products.precision = p;
        self.recur_packs = match p {
            MatmulPrecision::F32 => None,
            MatmulPrecision::Bf16 => Some(RecurPacks::new(self.team, self.products.kernel)),
        };
        self.products.crew =
            (p == MatmulPrecision::Bf16 && self.team > 1).then(|| Crew::new(self.team));
    }

    /// Multiplies bf16 operands with `kernel` instead of this process's (`isa::kernels`), so
    /// that tests run every kernel the CPU has. Panics for a kernel this CPU lacks.
    pub fn set_bf16_kernel(&mut self, kernel: Bf16Products) {
        assert!(
            isa::Cpu::here().runs(kernel),
            "{kernel:?} on a CPU without it"
        );
        self.products.kernel = kernel;
        if let Some(r) = &mut self.recur_packs {
            r.kernel = kernel;
        }
    }

    /// The operands' precision of the step's matrix products.
    pub fn precision(&self) -> MatmulPrecision {
        self.products.precision
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
        // 16-bit uniforms, four per draw of the generator, chosen without a branch: drawing
        // the masks was 2.6 ms of a 31 ms step (2×288, B=32, T=50) with 24-bit uniforms, two
        // per draw, and a branch that mispredicts about as often as it drops. p is kept to
        // 1/65,536 (0.1 drops 0.100006 of the inputs).
        let threshold = (p * 65_536.0).round() as u64;
        let pick = [F::ZERO, keep];
        for m in &mut d.masks {
            let mut quads = m.chunks_exact_mut(4);
            for quad in &mut quads {
                let r = rng.next_u64();
                for (k, v) in quad.iter_mut().enumerate() {
                    *v = pick[usize::from((r >> (16 * k)) & 0xFFFF >= threshold)];
                }
            }
            let rest = quads.into_remainder();
            let r = if rest.is_empty() { 0 } else { rng.next_u64() };
            for (k, v) in rest.iter_mut().enumerate() {
                *v = pick[usize::from((r >> (16 * k)) & 0xFFFF >= threshold)];
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

    /// Gradient of the loss w.r.t. the carried-in state, from the last backward.
    pub fn dstate(&self) -> &State<F> {
        &self
            .grad
            .as_ref()
            .expect("workspace built without gradient buffers")
            .dstate
    }

    /// Runs the model over `x` (t_len·B ids, time-major, t_len ≤ T) from `state`; fills the
    /// logits (t_len·B, V). The final state is read with `final_state`.
    pub fn forward(&mut self, params: &[F], layout: &Layout, x: &[u32], state: &State<F>) {
        let b = self.batch;
        assert!(
            x.len().is_multiple_of(b) && x.len() / b <= self.seq,
            "input does not fit the workspace"
        );
        assert_eq!(params.len(), layout.total);
        self.t_len = x.len() / b;
        self.input_forward(params, layout, x);
        for (l, off) in layout.layers.iter().enumerate() {
            self.layer_forward(params, layout, l, off, x, state);
        }
        self.head_forward(params, layout);
    }

    /// Layer 0's input: with one-hot input, W_ih transposed (V, G·H) so that the one-hot
    /// product becomes a row copy; with an embedding, the rows E[x] (T·B, D).
    fn input_forward(&mut self, params: &[F], layout: &Layout, x: &[u32]) {
        let cfg = layout.config;
        let (gh, v, d) = (cfg.cell.gates() * cfg.hidden, cfg.vocab, cfg.embed);
        let n = self.t_len * self.batch;
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
    }

    /// Layer l forward: its input projection for all steps at once (gates = bias + x·W_ihᵀ),
    /// then the recurrence from the carried-in state.
    fn layer_forward(
        &mut self,
        params: &[F],
        layout: &Layout,
        l: usize,
        off: &LayerOffsets,
        x: &[u32],
        state: &State<F>,
    ) {
        let cfg = layout.config;
        let (b, h, d) = (self.batch, cfg.hidden, cfg.embed);
        let gh = cfg.cell.gates() * h; // G·H
        let (t_len, n) = (self.t_len, self.t_len * self.batch);
        let gru = cfg.cell == Cell::Gru;
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

        if l == 0 && d > 0 {
            let w_ih = MatRef::new(&params[off.w_ih..][..gh * d], gh, d);
            self.products.matmul_bias(
                gates,
                MatRef::new(&self.emb[..n * d], n, d),
                w_ih.t(),
                &self.bias,
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
            self.products.matmul_bias(
                gates,
                MatRef::new(input, n, h),
                w_ih.t(),
                &self.bias,
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
            (self.recur_packs.as_mut(), self.products.crew.as_ref()),
            b,
            h,
            t_len,
            self.team,
        );
    }

    /// The head: logits = b + h_top·Wᵀ, one GEMM over all rows (h_top after dropout).
    fn head_forward(&mut self, params: &[F], layout: &Layout) {
        let cfg = layout.config;
        let (b, h, v) = (self.batch, cfg.hidden, cfg.vocab);
        let (t_len, n) = (self.t_len, self.t_len * self.batch);
        let mut top = &self.h[cfg.layers - 1][b * h..(t_len + 1) * b * h];
        if let Some(d) = &mut self.dropout {
            let last = cfg.layers - 1;
            apply_mask(&mut d.dropped[last][..n * h], top, &d.masks[last][..n * h]);
            top = &d.dropped[last][..n * h];
        }
        let top = MatRef::new(top, n, h);
        let logits = &mut self.logits[..n * v];
        let hb = &params[layout.head_b..][..v];
        let hw = MatRef::new(&params[layout.head_w..][..v * h], v, h);
        self.products
            .matmul_bias(logits, top, hw.t(), hb, self.threads);
    }

    /// Backpropagates the dlogits left by `loss_and_grad` through the last forward;
    /// accumulates parameter gradients into `grads` (laid out like the parameters).
    pub fn backward(&mut self, params: &[F], layout: &Layout, x: &[u32], grads: &mut [F]) {
        assert_eq!(
            x.len(),
            self.t_len * self.batch,
            "input does not match the forward"
        );
        assert_eq!(grads.len(), layout.total);
        assert!(
            self.grad.is_some(),
            "workspace built without gradient buffers"
        );
        self.head_backward(params, layout, grads);
        for (l, off) in layout.layers.iter().enumerate().rev() {
            self.layer_backward(params, layout, l, off, grads);
            self.input_backward(params, layout, l, off, x, grads);
        }
    }

    /// The head's gradients (dW, db) and dh into the top layer's outputs, (T·B, H).
    fn head_backward(&mut self, params: &[F], layout: &Layout, grads: &mut [F]) {
        let cfg = layout.config;
        let (b, h, v) = (self.batch, cfg.hidden, cfg.vocab);
        let (t_len, n) = (self.t_len, self.t_len * self.batch);
        let gb = self.grad.as_mut().unwrap();
        let dlogits = MatRef::new(&self.logits[..n * v], n, v);
        let top = match &self.dropout {
            Some(d) => &d.dropped[cfg.layers - 1][..n * h],
            None => &self.h[cfg.layers - 1][b * h..(t_len + 1) * b * h],
        };
        let top = MatRef::new(top, n, h);
        self.products.matmul_tn(
            &mut grads[layout.head_w..][..v * h],
            dlogits,
            top,
            self.threads,
        ); // (V, H)
        let dhb = &mut grads[layout.head_b..][..v];
        for row in self.logits[..n * v].chunks_exact(v) {
            for (d, &g) in dhb.iter_mut().zip(row) {
                *d += g;
            }
        }
        let hw = MatRef::new(&params[layout.head_w..][..v * h], v, h);
        self.products
            .matmul(&mut gb.dh[..n * h], dlogits, hw, false, self.threads); // (N, H)
        if let Some(d) = &self.dropout {
            mask_in_place(&mut gb.dh[..n * h], &d.masks[cfg.layers - 1][..n * h]);
        }
    }

    /// Layer l backward through time (the gates buffer turns into dgates in place: each
    /// step's gates are read once), then its W_hh and bias gradients, one GEMM over all rows.
    fn layer_backward(
        &mut self,
        params: &[F],
        layout: &Layout,
        l: usize,
        off: &LayerOffsets,
        grads: &mut [F],
    ) {
        let cfg = layout.config;
        let (b, h) = (self.batch, cfg.hidden);
        let gh = cfg.cell.gates() * h; // G·H
        let (t_len, n) = (self.t_len, self.t_len * self.batch);
        let gb = self.grad.as_mut().unwrap();
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
            (self.recur_packs.as_mut(), self.products.crew.as_ref()),
            b,
            h,
            t_len,
            self.team,
        );
        let h_prev = MatRef::new(&hs[..n * h], n, h); // h_{t-1} for t = 0..T
        self.products.matmul_tn(
            &mut grads[off.w_hh..][..gh * h],
            MatRef::new(&self.gates[l][..n * gh], n, gh),
            h_prev,
            self.threads,
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
    }

    /// Layer l's input side: dW_ih and the gradient into its input (the layer below's outputs,
    /// the embedding rows, or, for one-hot input, only dW_ih's touched columns).
    fn input_backward(
        &mut self,
        params: &[F],
        layout: &Layout,
        l: usize,
        off: &LayerOffsets,
        x: &[u32],
        grads: &mut [F],
    ) {
        let cfg = layout.config;
        let (b, h, v) = (self.batch, cfg.hidden, cfg.vocab);
        let gh = cfg.cell.gates() * h; // G·H
        let (t_len, n) = (self.t_len, self.t_len * self.batch);
        let threads = self.threads;
        let gb = self.grad.as_mut().unwrap();
        let dgates_buf = &self.gates[l][..n * gh];
        let dgates = MatRef::new(dgates_buf, n, gh);
        if l > 0 {
            let input = match &self.dropout {
                Some(d) => &d.dropped[l - 1][..n * h],
                None => &self.h[l - 1][b * h..(t_len + 1) * b * h],
            };
            self.products.matmul_tn(
                &mut grads[off.w_ih..][..gh * h],
                dgates,
                MatRef::new(input, n, h),
                threads,
            );
            let w_ih = MatRef::new(&params[off.w_ih..][..gh * h], gh, h);
            self.products
                .matmul(&mut gb.dx[..n * h], dgates, w_ih, false, threads);
            if let Some(d) = &self.dropout {
                mask_in_place(&mut gb.dx[..n * h], &d.masks[l - 1][..n * h]);
            }
            std::mem::swap(&mut gb.dh, &mut gb.dx);
        } else if let Some(e) = layout.embed {
            // Embedded input: dW_ih = dgatesᵀ·E[x]; dE[x] += dgates·W_ih, a row scatter.
            let d = cfg.embed;
            let emb = MatRef::new(&self.emb[..n * d], n, d);
            self.products
                .matmul_tn(&mut grads[off.w_ih..][..gh * d], dgates, emb, threads);
            let w_ih = MatRef::new(&params[off.w_ih..][..gh * d], gh, d);
            self.products
                .matmul(&mut gb.demb[..n * d], dgates, w_ih, false, threads);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    impl<F> Workspace<F> {
        /// Bytes its buffers hold now.
        fn allocated(&self) -> u64 {
            fn vecs<T>(v: &[Vec<T>]) -> usize {
                v.iter()
                    .map(|x| x.capacity() * std::mem::size_of::<T>())
                    .sum()
            }
            let f = std::mem::size_of::<F>();
            let mut n = vecs(&self.gates) + vecs(&self.h) + vecs(&self.c) + vecs(&self.hn);
            n += vecs(&self.scratch);
            n += f * (self.logits.capacity() + self.bias.capacity() + self.wih0_t.capacity());
            n +=
                f * (self.emb.capacity() + self.whh_pack.capacity() + self.products.out.capacity());
            if let Some(g) = &self.grad {
                n += f * (g.dh.capacity() + g.dx.capacity() + g.dbias.capacity());
                n += f * (g.dwih0_t.capacity() + g.demb.capacity());
                n += g.seen.capacity() + f * (g.dstate.h.capacity() + g.dstate.c.capacity());
            }
            if let Some(d) = &self.dropout {
                n += vecs(&d.masks) + vecs(&d.dropped);
            }
            n += self.products.packs.a.bytes() + self.products.packs.b.bytes();
            if let Some(r) = &self.recur_packs {
                n += r.members.iter().map(|m| m.bytes()).sum::<usize>();
                n += r.steps.iter().map(|s| s.bytes()).sum::<usize>();
            }
            n as u64
        }
    }

    #[test]
    fn bytes_is_what_a_workspace_holds_after_a_step() {
        use crate::model::Cell;
        let mut rng = crate::rng::Rng::new(3);
        for (cell, embed, vocab) in [(Cell::Lstm, 0, 70), (Cell::Gru, 12, 300), (Cell::Rnn, 0, 9)] {
            let layout = Layout::new(ModelConfig {
                cell,
                vocab,
                hidden: 40,
                layers: 2,
                embed,
            });
            let params = crate::engine::init_params(&layout, &mut rng);
            let (b, t) = (6, 11);
            let x: Vec<u32> = (0..b * t).map(|i| (i % vocab) as u32).collect();
            for precision in [MatmulPrecision::F32, MatmulPrecision::Bf16] {
                let threads = Threads(2);
                let mut ws = Workspace::<f32>::new(&layout, b, t, true, threads);
                ws.set_precision(precision);
                ws.set_dropout(0.1, &mut rng);
                ws.forward(&params, &layout, &x, &State::zeros(2, b, 40));
                ws.loss_and_grad(&x, vocab);
                let mut grads = vec![0.0; layout.total];
                ws.backward(&params, &layout, &x, &mut grads);
                let want =
                    Workspace::<f32>::bytes(&layout, (b, t), (true, true), (precision, threads));
                let got = ws.allocated();
                match precision {
                    // f32: term by term what `new` and `set_dropout` allocate.
                    MatmulPrecision::F32 => assert_eq!(got, want, "{cell:?}"),
                    // bf16: a bound on the packed operands, not too loose.
                    MatmulPrecision::Bf16 => assert!(
                        got <= want && want <= 3 * got,
                        "{cell:?}: holds {got}, estimated {want}"
                    ),
                }
            }
        }
    }
}
