//! The recurrence over time of one layer, forward and backward, split over a team of threads
//! by hidden units: only h_{t-1}·W_hhᵀ (forward) and dgates_t·W_hh (backward) run step by
//! step; member k owns units `team::share(H, n, k)` and keeps its rows of W_hh hot in its
//! core's cache; the team meets at a barrier once per step.
//!
//! With bf16 products (`RecurPacks`) member k packs its block of W_hh once per pass, and
//! writes its units' columns of each step's left operand (h_t, or dgates_t) in bf16 into one
//! of two shared packed buffers, alternating by step, before the barrier that precedes their
//! use: the operand is converted once per step, not once per member (see `bf16`).
//!
//! Reads top down: the two time loops (`recur_forward`, `recur_backward`), then one row of one
//! step for one member, forward beside backward (`ForwardBuffers::step_row`,
//! `BackwardBuffers::step_row`), then the step's product and the packing.
//!
//! Owns the time loop and the team's work split. Does not own the gate equations (see
//! `cells`) or the hoisted GEMMs (see `workspace`).

use std::ops::Range;

use super::bf16::{a_row_runs, convert, gemm_any, ARef, PackedA, PackedB};
use super::cells::{
    cell_backward, cell_forward, gru_backward, gru_forward, rnn_backward, rnn_forward,
};
use super::float::Float;
use super::isa::Bf16Products;
use super::linalg::{matmul, matvec_acc, MatRef, Threads};
use super::team::{self, share, Crew, Shared};
use crate::model::Cell;

/// The recurrence's bf16 operands: each team member's packed block of W_hh, and two packed
/// left operands (B rows) that the members fill column by column, step t using `steps[t % 2]`.
pub struct RecurPacks {
    pub members: Vec<PackedB>,
    pub steps: [PackedA; 2],
    /// The kernel that multiplies them.
    pub kernel: Bf16Products,
}

impl RecurPacks {
    /// For a team of `n`, multiplied by `kernel`.
    pub fn new(n: usize, kernel: Bf16Products) -> RecurPacks {
        RecurPacks {
            members: (0..n).map(|_| PackedB::default()).collect(),
            steps: Default::default(),
            kernel,
        }
    }

    /// Lays out both step operands as (B, k) and shares them, with the members' blocks, for
    /// one pass.
    fn handoff(&mut self, b: usize, k: usize) -> Handoff {
        let kp = self.steps[0].shape(b, k);
        self.steps[1].shape(b, k);
        let [s0, s1] = &mut self.steps;
        Handoff {
            members: Shared::new(&mut self.members[..]),
            kp,
            steps: [Shared::new(s0.data_mut()), Shared::new(s1.data_mut())],
            kernel: self.kernel,
        }
    }
}

/// `RecurPacks` as the team shares it during one pass: step t's left operand, (B, k) at depth
/// `kp`, lives in `steps[t % 2]`.
struct Handoff {
    members: Shared<PackedB>,
    kp: usize,
    steps: [Shared<u16>; 2],
    kernel: Bf16Products,
}

impl Handoff {
    /// Member k's packed block of W_hh.
    ///
    /// # Safety
    /// Only member k asks for it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn member(&self, k: usize) -> &mut PackedB {
        &mut self.members.slice_mut(k..k + 1)[0]
    }

    /// Converts `src` into row i, columns `cols`, of step t's operand.
    ///
    /// # Safety
    /// No other thread reads or writes those columns of that row meanwhile.
    unsafe fn write<F: Float>(&self, t: usize, i: usize, cols: Range<usize>, src: &[F]) {
        for (at, off) in a_row_runs(self.kp, i, cols) {
            let len = at.len();
            convert(self.steps[t % 2].slice_mut(at), &src[off..off + len]);
        }
    }

    /// Step t's operand, (b, k).
    ///
    /// # Safety
    /// Every member's write of it is behind a barrier.
    unsafe fn operand(&self, t: usize, b: usize, k: usize) -> ARef<'_> {
        let a = self.steps[t % 2].slice(0..b.next_multiple_of(32) * self.kp);
        ARef::new(a, b, k)
    }
}

/// The units member k owns, `u` (w of H), and where they sit in a layer's (·, B, ·) buffers.
struct Units {
    b: usize,
    h: usize,
    gn: usize, // G
    u: Range<usize>,
}

impl Units {
    fn new(u: Range<usize>, b: usize, h: usize, gn: usize) -> Units {
        Units { b, h, gn, u }
    }

    /// My columns of gate g in row (t, bi) of a (T, B, G·H) buffer.
    fn gate(&self, t: usize, bi: usize, g: usize) -> Range<usize> {
        let at = (t * self.b + bi) * self.gn * self.h + g * self.h;
        at + self.u.start..at + self.u.end
    }

    /// My columns of row (blk, bi) of a (·, B, H) buffer.
    fn row(&self, blk: usize, bi: usize) -> Range<usize> {
        let at = (blk * self.b + bi) * self.h;
        at + self.u.start..at + self.u.end
    }
}

/// The forward recurrence of one layer. The team splits the hidden units: member k owns
/// `team::share(H, n, k)` (w units), computes their G gate columns from the whole h_{t-1}
/// with one GEMM against its rows of W_hh (kept hot in its core's cache), runs the cell, and
/// the team meets at a barrier after every step, when h_t is complete.
#[allow(clippy::too_many_arguments)]
pub(super) fn recur_forward<F: Float>(
    cell: Cell,
    gates: &mut [F], // (t_len, B, G·H): input-side pre-activations in, activated gates out
    hs: &mut [F],    // (T+1, B, H): block 0 holds the carried-in h
    cs: &mut [F],    // LSTM (T+1, B, H), block 0 the carried-in c; GRU (T, B, H) hn out; RNN empty
    w_hh: &[F],      // (G·H, H)
    b_hn: &[F],      // GRU (H): the hidden side's bias of n; else empty
    pack: &mut [F],  // (G·H·H) scratch: per member (H, G·w)
    scratch: &mut [Vec<F>], // per member, ≥ B·G·w
    (bf16, crew): (Option<&mut RecurPacks>, Option<&Crew>), // bf16 products (None: f32); the team's threads
    b: usize,
    h: usize,
    t_len: usize,
    n: usize,
) {
    let gn = cell.gates();
    let io = ForwardBuffers {
        cell,
        gates: Shared::new(gates),
        hs: Shared::new(hs),
        cs: Shared::new(cs),
        b_hn,
    };
    let (scratch_s, pack_s) = (Shared::new(scratch), Shared::new(pack));
    // bf16: the members' W_hh blocks, and h_t packed (B, H) into steps[t % 2].
    let hand = bf16.map(|p| p.handoff(b, h));
    team::run_on(crew, n, |k, barrier| {
        let me = Units::new(share(h, n, k), b, h, gn);
        let (u, w) = (me.u.clone(), me.u.len());
        // SAFETY (all `Shared` accesses below): member k writes only its own units' columns of
        // gates, h and c (or hn), its own scratch, its own block of the pack and its own packs;
        // it reads other members' columns of h only for the previous step, which the barrier
        // has completed.
        let local = &mut unsafe { scratch_s.slice_mut(k..k + 1) }[0][..b * gn * w];
        let block = match &hand {
            Some(hand) => {
                let my_b = unsafe { hand.member(k) };
                // (H, G·w): column g·w + i is W_hh's row g·H + u.start + i.
                my_b.pack_with(h, gn * w, |kk, j| {
                    w_hh[((j / w) * h + u.start + j % w) * h + kk].to_f32()
                });
                // The carried-in h (block 0 of hs), my columns; the team meets before step 0.
                for bi in 0..b {
                    unsafe { hand.write(0, bi, u.clone(), io.hs.slice(me.row(0, bi))) };
                }
                barrier.wait();
                Block::Bf16(my_b, hand)
            }
            None => {
                let rows = unsafe { pack_s.slice_mut(gn * u.start * h..gn * u.end * h) };
                pack_rows(rows, w_hh, h, gn, u.clone(), b > 1);
                match b {
                    1 => Block::Rows(rows),
                    _ => Block::F32(MatRef::new(rows, h, gn * w)),
                }
            }
        };
        for t in 0..t_len {
            // My units' gates: the input side, plus h_{t-1}·W_hhᵀ.
            unsafe { io.input_side(&me, t, local) };
            let h_prev = unsafe { io.hs.slice(t * b * h..(t + 1) * b * h) };
            unsafe { block.product(local, h_prev, t, (b, h), true) };
            for bi in 0..b {
                unsafe { io.step_row(&me, t, bi, &mut local[bi * gn * w..][..gn * w]) };
                if let Some(hand) = &hand {
                    // h_t, my columns, for step t+1's product.
                    unsafe { hand.write(t + 1, bi, u.clone(), io.hs.slice(me.row(t + 1, bi))) };
                }
            }
            barrier.wait();
        }
    });
}

/// The backward recurrence of one layer, split by hidden unit like `recur_forward`. Member k
/// turns its units' dh (and dc) into their gate gradients, the team meets once dgates_t is
/// complete, then member k computes its units' columns of dh_{t-1} = dgates_t · W_hh (plus,
/// for the GRU, the direct path dh_t ⊙ z). Leaves the gradient w.r.t. the carried-in state in
/// `dh0`, `dc0` (dc0 zero but for the LSTM).
#[allow(clippy::too_many_arguments)]
pub(super) fn recur_backward<F: Float>(
    cell: Cell,
    gates: &mut [F], // (t_len, B, G·H): activated gates in, the hidden side's gradients out
    dh: &[F],        // (t_len, B, H): gradient into this layer's outputs from above
    hs: &[F],        // (T+1, B, H)
    cs: &mut [F],    // LSTM (T+1, B, H) c; GRU (T, B, H) hn in, the n gate's input-side dn out
    w_hh: &[F],      // (G·H, H)
    scratch: &mut [Vec<F>], // per member, ≥ 2·B·w
    dh0: &mut [F],   // (B, H) out
    dc0: &mut [F],   // (B, H) out
    (bf16, crew): (Option<&mut RecurPacks>, Option<&Crew>), // as in `recur_forward`
    b: usize,
    h: usize,
    t_len: usize,
    n: usize,
) {
    let gn = cell.gates();
    let io = BackwardBuffers {
        cell,
        dgates: Shared::new(gates),
        cs: Shared::new(cs),
        dh,
        hs,
    };
    let (scratch_s, dh0_s, dc0_s) = (Shared::new(scratch), Shared::new(dh0), Shared::new(dc0));
    // bf16: the members' W_hh column blocks, and dgates_t packed (B, G·H) into steps[t % 2].
    let hand = bf16.map(|p| p.handoff(b, gn * h));
    team::run_on(crew, n, |k, barrier| {
        let me = Units::new(share(h, n, k), b, h, gn);
        let (u, w) = (me.u.clone(), me.u.len());
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
        let block = match &hand {
            Some(hand) => {
                let my_b = unsafe { hand.member(k) };
                my_b.pack(w_cols);
                Block::Bf16(my_b, hand)
            }
            None => Block::F32(w_cols),
        };
        for t in (0..t_len).rev() {
            for bi in 0..b {
                let (dh_next, dc_next) = (&mut dhn[bi * w..][..w], &mut dcn[bi * w..][..w]);
                unsafe { io.step_row(&me, t, bi, dh_next, dc_next) };
                if let Some(hand) = &hand {
                    // dgates_t, my units' columns of every gate, for this step's product.
                    for g in 0..gn {
                        let src = unsafe { io.dgates.slice(me.gate(t, bi, g)) };
                        unsafe { hand.write(t, bi, g * h + u.start..g * h + u.end, src) };
                    }
                }
            }
            barrier.wait();
            // My columns of dh_{t-1}; the GRU's dhn already holds the direct path dh_t ⊙ z.
            let dg_t = unsafe { io.dgates.slice(t * b * gn * h..(t + 1) * b * gn * h) };
            unsafe { block.product(dhn, dg_t, t, (b, gn * h), cell == Cell::Gru) };
        }
        for bi in 0..b {
            let r = me.row(0, bi);
            unsafe {
                dh0_s
                    .slice_mut(r.clone())
                    .copy_from_slice(&dhn[bi * w..][..w]);
                dc0_s.slice_mut(r).copy_from_slice(&dcn[bi * w..][..w]);
            }
        }
    });
}

/// One layer's buffers in the forward pass, shared by the team (shapes at `recur_forward`).
struct ForwardBuffers<'a, F> {
    cell: Cell,
    gates: Shared<F>,
    hs: Shared<F>,
    cs: Shared<F>,
    b_hn: &'a [F],
}

impl<F: Float> ForwardBuffers<'_, F> {
    /// Step t's input side of my units' gates into `local` (B, G·w); the GRU's n gets b_hn
    /// instead (its hidden side starts there; its input side stays in `gates`).
    ///
    /// # Safety
    /// As in `recur_forward`.
    unsafe fn input_side(&self, me: &Units, t: usize, local: &mut [F]) {
        let w = me.u.len();
        for bi in 0..me.b {
            for g in 0..me.gn {
                let dst = &mut local[(bi * me.gn + g) * w..][..w];
                if self.cell == Cell::Gru && g == 2 {
                    dst.copy_from_slice(&self.b_hn[me.u.clone()]);
                } else {
                    dst.copy_from_slice(self.gates.slice(me.gate(t, bi, g)));
                }
            }
        }
    }

    /// Row bi of step t, my units: the cell on the pre-activations in `lrow` (G·w), which
    /// writes h_t (and c_t, or the GRU's hn), then the activated gates back to `gates`.
    ///
    /// # Safety
    /// As in `recur_forward`.
    unsafe fn step_row(&self, me: &Units, t: usize, bi: usize, lrow: &mut [F]) {
        let w = me.u.len();
        let (prev, next) = (me.row(t, bi), me.row(t + 1, bi));
        match self.cell {
            Cell::Lstm => {
                let (gi, rest) = lrow.split_at_mut(w);
                let (gf, rest) = rest.split_at_mut(w);
                let (gg, go) = rest.split_at_mut(w);
                let (c_prev, c_next) = (self.cs.slice(prev), self.cs.slice_mut(next.clone()));
                cell_forward(gi, gf, gg, go, c_prev, c_next, self.hs.slice_mut(next));
            }
            Cell::Gru => {
                let (gr, rest) = lrow.split_at_mut(w);
                let (gz, hn) = rest.split_at_mut(w);
                let g_n = self.gates.slice_mut(me.gate(t, bi, 2));
                gru_forward(
                    gr,
                    gz,
                    g_n,
                    hn,
                    self.hs.slice(prev.clone()),
                    self.hs.slice_mut(next),
                );
                self.cs.slice_mut(prev).copy_from_slice(hn); // hn of step t: block t
            }
            Cell::Rnn => rnn_forward(lrow, self.hs.slice_mut(next)),
        }
        // GRU: n went straight to the gates; the scratch holds hn there.
        let back = if self.cell == Cell::Gru { 2 } else { me.gn };
        for g in 0..back {
            let dst = self.gates.slice_mut(me.gate(t, bi, g));
            dst.copy_from_slice(&lrow[g * w..][..w]);
        }
    }
}

/// One layer's buffers in the backward pass, shared by the team (shapes at `recur_backward`).
struct BackwardBuffers<'a, F> {
    cell: Cell,
    dgates: Shared<F>,
    cs: Shared<F>,
    dh: &'a [F],
    hs: &'a [F],
}

impl<F: Float> BackwardBuffers<'_, F> {
    /// Row bi of step t, my units: the cell's backward from the gradient from above and the
    /// one carried back (`dh_next`, `dc_next`, (w) each) to the gates' gradients, in place of
    /// the gates; leaves dc_{t-1} (LSTM) or dh_t ⊙ z (GRU) in the carried gradients.
    ///
    /// # Safety
    /// As in `recur_backward`.
    unsafe fn step_row(
        &self,
        me: &Units,
        t: usize,
        bi: usize,
        dh_next: &mut [F],
        dc_next: &mut [F],
    ) {
        let mine = me.row(t, bi); // block t of (T+1, B, H) or (T, B, H)
        let dh_above = &self.dh[mine.clone()];
        let dgates = |g: usize| self.dgates.slice_mut(me.gate(t, bi, g));
        match self.cell {
            Cell::Lstm => {
                let (c, c_prev) = (self.cs.slice(me.row(t + 1, bi)), self.cs.slice(mine));
                cell_backward(
                    [0, 1, 2, 3].map(dgates),
                    dh_above,
                    c,
                    c_prev,
                    dh_next,
                    dc_next,
                );
            }
            Cell::Gru => {
                let hn = self.cs.slice_mut(mine.clone());
                gru_backward([0, 1, 2].map(dgates), hn, dh_above, &self.hs[mine], dh_next);
            }
            Cell::Rnn => rnn_backward(dgates(0), dh_above, dh_next),
        }
    }
}

/// Member k's block of W_hh as the step's product reads it.
enum Block<'a, F> {
    /// f32: forward (H, G·w) (`pack_rows`, transposed), backward (G·H, w) (strided).
    F32(MatRef<'a, F>),
    /// f32 forward with B = 1: (G·w, H) rows (`pack_rows`), for a matvec.
    Rows(&'a [F]),
    /// bf16: packed by the member; step t's left operand is in the hand-off.
    Bf16(&'a PackedB, &'a Handoff),
}

impl<F: Float> Block<'_, F> {
    /// The step's product, my columns: `c (B, cols) = [c +] a (B, k) · block`, where `a` is
    /// step t's left operand (h_{t-1} or dgates_t), read in bf16 from the hand-off when the
    /// block is bf16. `Rows` always accumulates.
    ///
    /// # Safety
    /// Step t's operand is complete: a barrier follows every member's write of it.
    unsafe fn product(&self, c: &mut [F], a: &[F], t: usize, (b, k): (usize, usize), acc: bool) {
        match *self {
            Block::F32(w) => matmul(c, MatRef::new(a, b, k), w, acc, Threads(1)),
            Block::Rows(rows) => {
                debug_assert!(acc);
                matvec_acc(c, rows, a)
            }
            Block::Bf16(packed, hand) => {
                let a = hand.operand(t, b, k);
                gemm_any(c, a, packed, (acc, None), (hand.kernel, None, Threads(1)));
            }
        }
    }
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
    u: Range<usize>,
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
