//! The loss: softmax cross-entropy of the head's logits, its gradient, and the exact
//! validation loss (every character predicted from all the ones before it).
//!
//! Owns the log-softmax arithmetic (fixed lanes, the same bits at every vector width). Does
//! not own the forward pass (see `workspace`).

use super::float::Float;
use super::linalg::Threads;
use super::workspace::{State, Workspace};
use crate::model::Layout;

impl<F: Float> Workspace<F> {
    /// Summed cross-entropy (nats) of the last forward's logits against targets `y`; logits
    /// are left as they are. Each row is `ln Σ exp(x − max) − (x_y − max)`, the difference
    /// taken in f64, so any finite logits give the right loss (a loss formed as
    /// `(max + ln Σ) − x_y` cancels to 0 when the logits are near 3e38).
    pub fn loss_sum(&self, y: &[u32], vocab: usize) -> f64 {
        let logits = &self.logits[..y.len() * vocab];
        logits
            .chunks_exact(vocab)
            .zip(y)
            .map(|(row, &yi)| {
                let (max, ln_sum) = log_sum_exp(row);
                ln_sum - (row[yi as usize].to_f64() - max)
            })
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
}

crate::multiversion! {
    /// One row of the head's loss: turns logits into scale·(softmax − onehot(y)) in place and
    /// returns −log softmax[y] in nats, as `ln Σ exp(x − max) − (x_y − max)` with the
    /// difference in f64 (in the float type it overflows for logits of opposite signs near
    /// 3e38). Max and sum run in 16 fixed lanes, so the loops vectorise (with a large
    /// vocabulary this is a fifth of the step) and give the same bits at every vector width.
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
        let z_y = row[yi].to_f64() - max.to_f64();
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

crate::multiversion! {
    /// (max, ln Σ exp(row − max)) for validation: exp in the float type (our vectorising exp
    /// for f32; the largest term is exactly 1), summed in f64 over 16 fixed lanes. The max is
    /// returned apart, not added, so that the caller's `x_y − max` keeps its digits at any
    /// magnitude. With a large vocabulary this is most of a validation (was all f64: 4 s per
    /// validation at V=6003).
    fn log_sum_exp<F: Float>(row: &[F]) -> (f64, f64) {
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
        (max.to_f64(), sum.ln())
    }
}

/// Exact validation loss in nats/char: mean cross-entropy of predicting ids[t+1] from
/// ids[..=t] for every t, one stream from a zero state, run in chunks with the state carried
/// (the definition the PyTorch peer of `bench/compare.sh` uses too, so their losses compare).
/// NaN for fewer than 2 ids.
pub fn evaluate(layout: &Layout, params: &[f32], ids: &[u32], threads: Threads) -> f64 {
    let mut e = Evaluator::new(layout, params, threads);
    e.push(ids);
    e.mean()
}

/// `evaluate` over a text given in pieces (a validation part too large to hold): the state
/// and the last character carry from one piece to the next, so any split of the text gives
/// `evaluate`'s loss of the whole, up to rounding (one piece gives it exactly).
pub struct Evaluator<'a> {
    layout: &'a Layout,
    params: &'a [f32],
    ws: Workspace<f32>,
    state: State<f32>,
    /// The last id pushed: it predicts the first of the next piece.
    prev: Option<u32>,
    seq: Vec<u32>, // (CHUNK + 1): the ids of one forward and the one after
    total: f64,
    n: u64,
}

impl<'a> Evaluator<'a> {
    /// Rows per forward: bounds the workspace (about 20 MB at H=512) while keeping the team's
    /// start-up and the hoisted GEMMs rare (1,000 rather than 250: 10.4 s to 9.4 s for a million
    /// characters at H=128 on 2 threads).
    pub const CHUNK: usize = 1000;

    /// An evaluator from a zero state.
    pub fn new(layout: &'a Layout, params: &'a [f32], threads: Threads) -> Self {
        Evaluator {
            layout,
            params,
            ws: Workspace::<f32>::new(layout, 1, Self::CHUNK, false, threads),
            state: State::zeros(layout.config.layers, 1, layout.config.hidden),
            prev: None,
            seq: Vec::with_capacity(Self::CHUNK + 1),
            total: 0.0,
            n: 0,
        }
    }

    /// Scores the next piece of the text.
    pub fn push(&mut self, ids: &[u32]) {
        let mut rest = ids;
        while !rest.is_empty() {
            let take = (Self::CHUNK + usize::from(self.prev.is_none())).min(rest.len());
            self.seq.clear();
            self.seq.extend(self.prev);
            self.seq.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            self.prev = self.seq.last().copied();
            let k = self.seq.len() - 1; // predictions in this forward
            if k == 0 {
                continue;
            }
            self.ws
                .forward(self.params, self.layout, &self.seq[..k], &self.state);
            self.total += self.ws.loss_sum(&self.seq[1..], self.layout.config.vocab);
            self.ws.final_state(&mut self.state);
            self.n += k as u64;
        }
    }

    /// The mean loss so far in nats/char (NaN before two ids).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.total / self.n as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, ModelConfig};

    fn workspace(vocab: usize, rows: usize) -> Workspace<f32> {
        let layout = Layout::new(ModelConfig {
            cell: Cell::Lstm,
            vocab,
            hidden: 4,
            layers: 1,
            embed: 0,
        });
        Workspace::new(&layout, 1, rows, false, Threads(1))
    }

    #[test]
    fn any_finite_logits_give_the_right_loss() {
        // Logits near 3e38, all equal: a uniform guess, ln V nats per row (a loss formed as
        // (max + ln Σ) − x_y cancelled to 0 here).
        let v = 5;
        let mut ws = workspace(v, 2);
        ws.logits[..2 * v].fill(3e38);
        let want = 2.0 * (v as f64).ln();
        assert!(
            (ws.loss_sum(&[0, 3], v) - want).abs() < 1e-9,
            "{}",
            ws.loss_sum(&[0, 3], v)
        );
        // Logits of opposite signs near the largest float: x_y − max is −6e38, which f32
        // cannot hold.
        ws.logits[..v].copy_from_slice(&[3e38, -3e38, 0.0, 1.0, 2.0]);
        let got = ws.loss_sum(&[1], v);
        assert!((got / 6e38 - 1.0).abs() < 1e-6, "{got}");
        let mut row = [3e38f32, -3e38, 0.0];
        let got = softmax_grad_row(&mut row, 1, 1.0);
        assert!((got / 6e38 - 1.0).abs() < 1e-6, "{got}");
        assert_eq!(row[..2], [1.0, -1.0]);
        assert!(row[2].abs() < 1e-30);
        let mut row = [3e38f32; 4];
        let got = softmax_grad_row(&mut row, 2, 1.0);
        assert!((got - 4f64.ln()).abs() < 1e-6, "{got}");
    }
}
