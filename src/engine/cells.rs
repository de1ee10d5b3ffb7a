//! The cells' gate maths, one row of B at a time, each cell's forward beside its backward:
//! LSTM (gates i, f, g, o and a cell state), GRU (r, z, n, PyTorch's nn.GRU with b_hn inside
//! the reset product) and the tanh RNN. Every loop is written so that all lanes do the same
//! IEEE operations in the same order at any vector width (see `isa`).
//!
//! Owns the per-unit equations. Does not own the recurrence over time or the threads (see
//! `recurrent`).

use super::float::Float;

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
    /// One row of the backward LSTM gate maths for `w` units. Reads the activated gates, the
    /// gradient from above and the carried dh/dc; overwrites the gates with their
    /// pre-activation gradients and leaves dc_{t-1} in `dc_next` (dh_{t-1} comes from the GEMM
    /// with W_hh).
    pub(super) fn cell_backward<F: Float>(
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
    /// One row of the backward GRU for `w` units. Reads r, z, n, the n gate's hidden side
    /// `hn`, h_{t-1}, the gradient from above and the recurrent dh_t in `dh_next`. Writes the
    /// hidden side's pre-activation gradients (dr, dz, r ⊙ dn) over the gates, the input
    /// side's dn over `hn`, and the direct part of dh_{t-1} (dh ⊙ z) over `dh_next`; the
    /// GEMM with W_hh adds the rest.
    pub(super) fn gru_backward<F: Float>(
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
    /// One row of the backward tanh RNN: the activation turns into its pre-activation's
    /// gradient (dh_{t-1} comes from the GEMM with W_hh).
    pub(super) fn rnn_backward<F: Float>(g: &mut [F], dh_above: &[F], dh_next: &[F]) {
        let one = F::ONE;
        let n = g.len();
        let (dh_above, dh_next) = (&dh_above[..n], &dh_next[..n]);
        for j in 0..n {
            let a = g[j];
            g[j] = (dh_above[j] + dh_next[j]) * (one - a * a);
        }
    }
}
