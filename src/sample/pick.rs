//! Choosing the next character from logits: the argmax at temperature 0, else one draw from
//! softmax(logits / temperature), optionally restricted to the top k or to the nucleus holding
//! probability p. Our own exp and a fixed summation order: the same draw on every machine.
//!
//! Owns the picking rules. Does not own the logits (see `sampler`).

use crate::rng::Rng;

/// How the next character is chosen from the logits.
#[derive(Clone, Copy, Debug)]
pub struct Pick {
    /// Softmax temperature; at or below 1e-6 the argmax is taken.
    pub temperature: f32,
    /// Only the k most likely characters.
    pub top_k: Option<usize>,
    /// Only the most likely characters whose probabilities add up to at least p (nucleus).
    pub top_p: Option<f64>,
}

impl Pick {
    pub fn temperature(t: f32) -> Pick {
        Pick {
            temperature: t,
            top_k: None,
            top_p: None,
        }
    }
}

pub fn pick(logits: &[f32], probs: &mut [f32], how: &Pick, rng: &mut Rng) -> u32 {
    let (temperature, top_k) = (how.temperature, how.top_k);
    let argmax = logits
        .iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > logits[best] { i } else { best });
    if temperature <= 1e-6 {
        return argmax as u32;
    }
    let floor = match top_k {
        Some(k) if k < logits.len() => {
            let mut sorted = logits.to_vec();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            sorted[k.max(1) - 1]
        }
        _ => f32::NEG_INFINITY,
    };
    let max = logits[argmax];
    let inv_t = 1.0 / temperature;
    let mut sum = 0.0f64;
    for (p, &x) in probs.iter_mut().zip(logits) {
        *p = if x >= floor {
            crate::engine::float::exp_f32((x - max) * inv_t)
        } else {
            0.0
        };
        sum += *p as f64;
    }
    if let Some(top_p) = how.top_p.filter(|&p| p < 1.0) {
        // Keep the most likely characters (ties to the lower id) until they hold top_p.
        let mut order: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] > 0.0).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let mut kept = 0.0f64;
        let mut cut = order.len();
        for (n, &i) in order.iter().enumerate() {
            kept += probs[i] as f64;
            if kept >= top_p * sum {
                cut = n + 1;
                break;
            }
        }
        for &i in &order[cut..] {
            probs[i] = 0.0;
        }
        sum = order[..cut].iter().map(|&i| probs[i] as f64).sum();
    }
    let mut u = rng.uniform() * sum;
    for (i, &p) in probs.iter().enumerate() {
        u -= p as f64;
        if u < 0.0 {
            return i as u32;
        }
    }
    argmax as u32 // only reachable through rounding at the very top of the range
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_keeps_the_smallest_set_holding_p() {
        // softmax([3, 2, 1, 0]) = [0.644, 0.237, 0.087, 0.032]
        let logits = [3.0f32, 2.0, 1.0, 0.0];
        let mut probs = [0.0f32; 4];
        let mut rng = Rng::new(1);
        let mut counts = [0usize; 4];
        for _ in 0..3000 {
            counts[pick(
                &logits,
                &mut probs,
                &Pick {
                    top_p: Some(0.85),
                    ..Pick::temperature(1.0)
                },
                &mut rng,
            ) as usize] += 1;
        }
        assert!(
            counts[2] == 0 && counts[3] == 0 && counts[0] > 0 && counts[1] > 0,
            "{counts:?}"
        );
        let only_top = pick(
            &logits,
            &mut probs,
            &Pick {
                top_p: Some(0.5),
                ..Pick::temperature(1.0)
            },
            &mut rng,
        );
        assert_eq!(only_top, 0);
    }

    #[test]
    fn picking_rules() {
        let logits = [0.0f32, 2.0, 1.0, -1.0];
        let mut probs = [0.0f32; 4];
        let mut rng = Rng::new(0);
        assert_eq!(
            pick(&logits, &mut probs, &Pick::temperature(0.0), &mut rng),
            1
        );
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[pick(
                &logits,
                &mut probs,
                &Pick {
                    top_k: Some(2),
                    ..Pick::temperature(1.0)
                },
                &mut rng,
            ) as usize] += 1;
        }
        assert_eq!(
            counts[0] + counts[3],
            0,
            "top-k 2 must only pick ids 1 and 2: {counts:?}"
        );
        // softmax([2, 1]) = [0.731, 0.269]
        assert!(
            (counts[1] as f64 / 4000.0 - 0.731).abs() < 0.03,
            "{counts:?}"
        );
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[pick(&logits, &mut probs, &Pick::temperature(1.0), &mut rng) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    }
}
