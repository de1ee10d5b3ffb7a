//! How the parameters move: Adam (optionally AMSGrad, AdamW weight decay) and global
//! gradient-norm clipping over the flat parameter buffer, one loop each, the same arithmetic as
//! `torch.optim.Adam` and `clip_grad_norm_`; the learning-rate schedules; and, in `step`, the
//! one training step that the run, the sizing probe and `charrnn bench` all take.
//!
//! Owns the optimiser's moments and step count. Does not own the parameters, the gradients
//! (see `engine`) or when to step (see `train`).

use crate::engine::float::Float;

pub mod step;

#[derive(Clone, Debug, PartialEq)]
pub struct Adam<F> {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Steps taken so far (PyTorch's `state['step']`).
    pub t: u64,
    pub m: Vec<F>,
    pub v: Vec<F>,
    /// AMSGrad's running maximum of v; present only with AMSGrad.
    pub vmax: Option<Vec<F>>,
    /// Decoupled weight decay (AdamW): before each update, parameters in `decay` shrink by
    /// the factor 1 − lr·weight_decay, as `torch.optim.AdamW` does.
    pub weight_decay: f64,
    /// The index ranges weight decay applies to (the weight matrices, not the biases).
    pub decay: Vec<std::ops::Range<usize>>,
}

impl<F: Float> Adam<F> {
    pub fn new(n: usize, lr: f64, amsgrad: bool) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![F::ZERO; n],
            v: vec![F::ZERO; n],
            vmax: amsgrad.then(|| vec![F::ZERO; n]),
            weight_decay: 0.0,
            decay: Vec::new(),
        }
    }

    /// One update of `params` from `grads` with the optimiser's learning rate.
    pub fn step(&mut self, params: &mut [F], grads: &[F]) {
        assert_eq!(params.len(), grads.len());
        assert_eq!(params.len(), self.m.len());
        self.t += 1;
        if self.weight_decay > 0.0 {
            let keep = F::from_f64(1.0 - self.lr * self.weight_decay);
            for r in &self.decay {
                for p in &mut params[r.clone()] {
                    *p *= keep;
                }
            }
        }
        let t = self.t as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2_sqrt = (1.0 - self.beta2.powi(t)).sqrt();
        // The same operations, in the same order and with the same f64-computed constants, as
        // torch's single-tensor Adam (lerp, addcmul, sqrt / bc2_sqrt + eps, addcdiv).
        let step_size = F::from_f64(self.lr / bc1);
        let bc2_sqrt = F::from_f64(bc2_sqrt);
        let (c1, b2, c2) = (
            F::from_f64(1.0 - self.beta1),
            F::from_f64(self.beta2),
            F::from_f64(1.0 - self.beta2),
        );
        let eps = F::from_f64(self.eps);
        let update = |p: &mut F, m: &mut F, v: &mut F, g: F, vhat: &mut dyn FnMut(F) -> F| {
            *m += c1 * (g - *m);
            *v = *v * b2 + c2 * g * g;
            let denom = vhat(*v).sqrt() / bc2_sqrt + eps;
            *p += -step_size * (*m / denom);
        };
        match &mut self.vmax {
            None => {
                for (((p, m), v), &g) in params
                    .iter_mut()
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                    .zip(grads)
                {
                    update(p, m, v, g, &mut |v| v);
                }
            }
            Some(vmax) => {
                for ((((p, m), v), vm), &g) in params
                    .iter_mut()
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                    .zip(vmax.iter_mut())
                    .zip(grads)
                {
                    update(p, m, v, g, &mut |v| {
                        *vm = vm.max(v);
                        *vm
                    });
                }
            }
        }
    }
}

/// How the learning rate moves over a run.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// From the rate down to a tenth of it along half a cosine over the run's budget.
    Cosine,
    /// Multiplied by --lr-decay after every epoch (karpathy/char-rnn's schedule).
    Step,
}

/// The learning rate for optimiser step `step` (0-based) at `progress` ∈ [0, 1] of the run's
/// budget, in epoch `epoch`. The first `warmup` steps ramp up linearly from base/warmup.
pub fn scheduled_lr(
    schedule: Schedule,
    base: f64,
    warmup: u64,
    decay: f64,
    step: u64,
    progress: f64,
    epoch: u64,
) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    match schedule {
        Schedule::Constant => base,
        Schedule::Cosine => {
            let min = base / 10.0;
            min + 0.5
                * (base - min)
                * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())
        }
        Schedule::Step => base * decay.powi(epoch.min(i32::MAX as u64) as i32),
    }
}

/// Scales `grads` so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`, including its 1e-6 in the denominator). Returns the norm before clipping.
/// `max_norm <= 0` only measures.
pub fn clip_grad_norm<F: Float>(grads: &mut [F], max_norm: f64) -> f64 {
    let norm = grads
        .iter()
        .map(|&g| g.to_f64() * g.to_f64())
        .sum::<f64>()
        .sqrt();
    if max_norm > 0.0 {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            let c = F::from_f64(coef);
            for g in grads.iter_mut() {
                *g *= c;
            }
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_scales_to_the_bound_only_when_above_it() {
        let mut g = vec![3.0f64, 4.0];
        assert_eq!(clip_grad_norm(&mut g, 10.0), 5.0);
        assert_eq!(g, vec![3.0, 4.0]);
        assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
        let n = (g[0] * g[0] + g[1] * g[1]).sqrt();
        assert!((n - 1.0).abs() < 1e-6, "{n}");
    }

    #[test]
    fn first_adam_step_moves_each_weight_by_lr_against_its_gradient_sign() {
        // With bias correction, step 1 is lr·g/(|g| + eps): a signed step of size ≈ lr.
        let mut p = vec![1.0f64, 1.0, 1.0];
        let mut adam = Adam::new(3, 0.1, false);
        adam.step(&mut p, &[2.0, -0.5, 0.0]);
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6 && p[2] == 1.0,
            "{p:?}"
        );
    }

    #[test]
    fn schedules() {
        use super::Schedule::*;
        assert_eq!(scheduled_lr(Constant, 1.0, 4, 0.9, 0, 0.0, 0), 0.25);
        assert_eq!(scheduled_lr(Constant, 1.0, 4, 0.9, 3, 0.0, 0), 1.0);
        assert_eq!(scheduled_lr(Cosine, 1.0, 0, 0.9, 10, 0.0, 0), 1.0);
        assert!((scheduled_lr(Cosine, 1.0, 0, 0.9, 10, 0.5, 0) - 0.55).abs() < 1e-12);
        assert!((scheduled_lr(Cosine, 1.0, 0, 0.9, 10, 1.0, 0) - 0.1).abs() < 1e-12);
        assert!((scheduled_lr(Step, 1.0, 0, 0.9, 10, 0.3, 2) - 0.81).abs() < 1e-12);
    }

    #[test]
    fn weight_decay_shrinks_only_the_chosen_ranges() {
        // Zero gradients: Adam's update is 0, so only the decay moves the weights.
        let mut a = Adam::<f64>::new(4, 0.1, false);
        a.weight_decay = 0.5;
        a.decay = vec![0..1, 1..2];
        let mut p = vec![1.0; 4];
        a.step(&mut p, &[0.0; 4]);
        a.step(&mut p, &[0.0; 4]);
        assert_eq!(p, vec![0.95 * 0.95, 0.95 * 0.95, 1.0, 1.0]);
    }

    #[test]
    fn amsgrad_keeps_the_largest_second_moment() {
        let mut a = Adam::<f64>::new(1, 0.1, true);
        let mut p = vec![0.0];
        a.step(&mut p, &[10.0]);
        a.step(&mut p, &[0.1]);
        let vmax = a.vmax.as_ref().unwrap()[0];
        assert!(
            vmax > a.v[0] && (vmax - 0.1).abs() < 1e-9,
            "vmax {vmax} v {}",
            a.v[0]
        );
    }
}
