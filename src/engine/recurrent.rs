//! The recurrence over time of one layer, forward and backward, split over a team of threads
//! by hidden units: only h_{t-1}·W_hhᵀ (forward) and dgates_t·W_hh (backward) run step by
//! step; member k owns units `team::share(H, n, k)` and keeps its rows of W_hh hot in its
//! core's cache; the team meets at a barrier once per step.
//!
//! With bf16 products (`RecurPacks`) member k packs its block of W_hh once per pass, and
//! writes its units' columns of each step's left operand (h_t, or dgates_t) in bf16 into one
//! of two shared packed buffers, alternating by step, before the barrier that precedes their
//! use: the operand is converted once per step, not once per member (see `amx`).
//!
//! Owns the time loop and the team's work split. Does not own the gate equations (see
//! `cells`) or the hoisted GEMMs (see `workspace`).

use super::amx::{a_row_runs, convert, gemm_any, ARef, PackedA, PackedB};
use super::cells::{
    cell_backward, cell_forward, gru_backward, gru_forward, rnn_backward, rnn_forward,
};
use super::float::Float;
use super::linalg::{matmul, matvec_acc, MatRef, Threads};
use super::team::{self, share, Crew, Shared};
use crate::model::Cell;

/// The recurrence's bf16 operands: each team member's packed block of W_hh, and two packed
/// left operands (B rows) that the members fill column by column, step t using `steps[t % 2]`.
#[derive(Default)]
pub struct RecurPacks {
    pub members: Vec<PackedB>,
    pub steps: [PackedA; 2],
}

impl RecurPacks {
    /// For a team of `n`.
    pub fn new(n: usize) -> RecurPacks {
        RecurPacks {
            members: (0..n).map(|_| PackedB::default()).collect(),
            steps: Default::default(),
        }
    }

    /// Lays out both step operands as (B, k); returns their row length and the shared views.
    fn steps_shared(&mut self, b: usize, k: usize) -> (usize, [Shared<u16>; 2]) {
        let kp = self.steps[0].shape(b, k);
        self.steps[1].shape(b, k);
        let [s0, s1] = &mut self.steps;
        (kp, [Shared::new(s0.data_mut()), Shared::new(s1.data_mut())])
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
    let (gates_s, hs_s, cs_s, scratch_s, pack_s) = (
        Shared::new(gates),
        Shared::new(hs),
        Shared::new(cs),
        Shared::new(scratch),
        Shared::new(pack),
    );
    // bf16: the members' W_hh blocks, and h_t packed (B, H) into steps[t % 2].
    let bf16 = bf16.map(|p| {
        let (kp, steps) = p.steps_shared(b, h);
        (Shared::new(&mut p.members[..]), kp, steps)
    });
    team::run_on(crew, n, |k, barrier| {
        let u = share(h, n, k);
        let w = u.len();
        // SAFETY (all `Shared` accesses below): member k writes only its own units' columns of
        // gates, h and c (or hn), its own scratch, its own block of the pack and its own packs;
        // it reads other members' columns of h only for the previous step, which the barrier
        // has completed.
        let local = &mut unsafe { scratch_s.slice_mut(k..k + 1) }[0][..b * gn * w];
        let block = unsafe { pack_s.slice_mut(gn * u.start * h..gn * (u.start + w) * h) };
        let my_b = match &bf16 {
            Some((members, kp, steps)) => {
                let my_b = &mut unsafe { members.slice_mut(k..k + 1) }[0];
                // (H, G·w): column g·w + i is W_hh's row g·H + u.start + i.
                my_b.pack_with(h, gn * w, |kk, j| {
                    w_hh[((j / w) * h + u.start + j % w) * h + kk].to_f32()
                });
                // The carried-in h (block 0 of hs), my columns; the team meets before step 0.
                for bi in 0..b {
                    let src = unsafe { hs_s.slice(bi * h + u.start..bi * h + u.end) };
                    unsafe { write_packed(&steps[0], *kp, bi, u.clone(), src) };
                }
                barrier.wait();
                Some(&*my_b)
            }
            None => {
                pack_rows(block, w_hh, h, gn, u.clone(), b > 1);
                None
            }
        };
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
            if let (Some((_, kp, steps)), Some(my_b)) = (&bf16, my_b) {
                let a = unsafe { steps[t % 2].slice(0..b.next_multiple_of(32) * kp) };
                gemm_any(
                    local,
                    ARef::new(a, b, h),
                    my_b,
                    (true, None),
                    (None, Threads(1)),
                );
            } else if b == 1 {
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
                if let Some((_, kp, steps)) = &bf16 {
                    // h_t, my columns, for step t+1's product.
                    let src = unsafe { hs_s.slice(r(t + 1)) };
                    unsafe { write_packed(&steps[(t + 1) % 2], *kp, bi, u.clone(), src) };
                }
            }
            barrier.wait();
        }
    });
}

/// Converts `src` into row i, columns `cols`, of a shared packed operand of depth kp.
///
/// # Safety
/// No other thread reads or writes those columns of that row meanwhile.
unsafe fn write_packed<F: Float>(
    dst: &Shared<u16>,
    kp: usize,
    i: usize,
    cols: std::ops::Range<usize>,
    src: &[F],
) {
    for (at, off) in a_row_runs(kp, i, cols) {
        let len = at.len();
        convert(dst.slice_mut(at), &src[off..off + len]);
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
    let (dgates_s, cs_s, scratch_s, dh0_s, dc0_s) = (
        Shared::new(gates),
        Shared::new(cs),
        Shared::new(scratch),
        Shared::new(dh0),
        Shared::new(dc0),
    );
    // bf16: the members' W_hh column blocks, and dgates_t packed (B, G·H) into steps[t % 2].
    let bf16 = bf16.map(|p| {
        let (kp, steps) = p.steps_shared(b, gn * h);
        (Shared::new(&mut p.members[..]), kp, steps)
    });
    team::run_on(crew, n, |k, barrier| {
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
        let my_b = bf16.as_ref().map(|(members, _, _)| {
            let my_b = &mut unsafe { members.slice_mut(k..k + 1) }[0];
            my_b.pack(w_cols);
            &*my_b
        });
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
            if let Some((_, kp, steps)) = &bf16 {
                // dgates_t, my units' columns of every gate, for this step's product.
                for bi in 0..b {
                    let rowg = (t * b + bi) * gn * h;
                    for g in 0..gn {
                        let cols = g * h + u.start..g * h + u.end;
                        let src = unsafe { dgates_s.slice(rowg + cols.start..rowg + cols.end) };
                        unsafe { write_packed(&steps[t % 2], *kp, bi, cols, src) };
                    }
                }
            }
            barrier.wait();
            let dg_t = unsafe { dgates_s.slice(t * b * gn * h..(t + 1) * b * gn * h) };
            let direct = cell == Cell::Gru; // dhn already holds dh_t ⊙ z
            let dg_t = MatRef::new(dg_t, b, gn * h);
            if let (Some((_, kp, steps)), Some(my_b)) = (&bf16, my_b) {
                let a = unsafe { steps[t % 2].slice(0..b.next_multiple_of(32) * kp) };
                gemm_any(
                    dhn,
                    ARef::new(a, b, gn * h),
                    my_b,
                    (direct, None),
                    (None, Threads(1)),
                );
            } else {
                matmul(dhn, dg_t, w_cols, direct, Threads(1));
            }
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
