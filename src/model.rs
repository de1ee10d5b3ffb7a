//! The model's shape and its parameters: one flat buffer with named views, in PyTorch's names,
//! shapes, gate order (i, f, g, o) and default init, so a PyTorch `state_dict` of
//! `lstm = nn.LSTM(V, H, L); head = nn.Linear(H, V)` is a plain copy.
//!
//! Owns the layout and the init. Does not own the maths (see `engine`) or the file format
//! (see `checkpoint`).

use crate::float::Float;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Vocabulary size V (input one-hot width and head width).
    pub vocab: usize,
    /// Hidden size H of every layer.
    pub hidden: usize,
    /// Number of stacked LSTM layers L.
    pub layers: usize,
    /// Width D of a learned input embedding (`embed.weight`, (V, D)); 0 means one-hot input.
    #[serde(default)]
    pub embed: usize,
}

/// One named tensor in the flat buffer.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

/// Offsets of one layer's tensors in the flat buffer.
#[derive(Clone, Copy, Debug)]
pub struct LayerOffsets {
    pub w_ih: usize, // (4H, I), I = V for layer 0 else H
    pub w_hh: usize, // (4H, H)
    pub b_ih: usize, // (4H)
    pub b_hh: usize, // (4H)
    pub input: usize,
}

#[derive(Clone, Debug)]
pub struct Layout {
    pub config: ModelConfig,
    pub tensors: Vec<TensorInfo>,
    pub layers: Vec<LayerOffsets>,
    pub head_w: usize, // (V, H)
    pub head_b: usize, // (V)
    /// Offset of `embed.weight` (V, D) when the input is a learned embedding.
    pub embed: Option<usize>,
    pub total: usize,
}

impl Layout {
    pub fn new(config: ModelConfig) -> Layout {
        let (v, h) = (config.vocab, config.hidden);
        let mut tensors = Vec::new();
        let mut total = 0;
        let mut push = |name: String, shape: Vec<usize>| {
            let len = shape.iter().product();
            tensors.push(TensorInfo {
                name,
                shape,
                offset: total,
                len,
            });
            total += len;
            total - len
        };
        // PyTorch's state_dict order for the peer's CharRNN: embed, lstm, head.
        let embed = (config.embed > 0).then(|| push("embed.weight".into(), vec![v, config.embed]));
        let mut layers = Vec::new();
        for l in 0..config.layers {
            let input = match l {
                0 if config.embed > 0 => config.embed,
                0 => v,
                _ => h,
            };
            let w_ih = push(format!("lstm.weight_ih_l{l}"), vec![4 * h, input]);
            let w_hh = push(format!("lstm.weight_hh_l{l}"), vec![4 * h, h]);
            let b_ih = push(format!("lstm.bias_ih_l{l}"), vec![4 * h]);
            let b_hh = push(format!("lstm.bias_hh_l{l}"), vec![4 * h]);
            layers.push(LayerOffsets {
                w_ih,
                w_hh,
                b_ih,
                b_hh,
                input,
            });
        }
        let head_w = push("head.weight".into(), vec![v, h]);
        let head_b = push("head.bias".into(), vec![v]);
        Layout {
            config,
            tensors,
            layers,
            head_w,
            head_b,
            embed,
            total,
        }
    }

    pub fn find(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// PyTorch's default init for nn.LSTM and nn.Linear(H, V): every weight and bias uniform in
/// ±1/√H (for Linear, kaiming_uniform(a=√5) reduces to the same bound with fan_in = H).
/// nn.Embedding's is a standard normal.
pub fn init_params<F: Float>(layout: &Layout, rng: &mut Rng) -> Vec<F> {
    let bound = 1.0 / (layout.config.hidden as f64).sqrt();
    let mut p: Vec<F> = (0..layout.total)
        .map(|_| F::from_f64(rng.uniform_in(-bound, bound)))
        .collect();
    if let Some(e) = layout.embed {
        let len = layout.config.vocab * layout.config.embed;
        for x in &mut p[e..e + len] {
            *x = F::from_f64(rng.normal());
        }
    }
    p
}

/// Training FLOPs per character, the count ENGINE.md uses: 72H² + 6HV for 2 layers
/// (forward 8H² for layer 1 with one-hot input, 16H² per further layer, 2HV head; backward ≈ 2×).
pub fn train_flops_per_char(c: &ModelConfig) -> f64 {
    let (h, v) = (c.hidden as f64, c.vocab as f64);
    let first = if c.embed > 0 {
        8.0 * h * h + 8.0 * h * c.embed as f64
    } else {
        8.0 * h * h
    };
    let fwd = first + 16.0 * h * h * (c.layers as f64 - 1.0) + 2.0 * h * v;
    3.0 * fwd
}
