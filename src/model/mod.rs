//! The model's shape and its parameters: one flat buffer with named views, in PyTorch's names,
//! shapes, gate order and default init, so a PyTorch `state_dict` of
//! `lstm = nn.LSTM(V, H, L); head = nn.Linear(H, V)` (or `gru = nn.GRU(…)`, `rnn = nn.RNN(…)`)
//! is a plain copy. Gate order: LSTM i, f, g, o; GRU r, z, n; RNN one tanh block.
//!
//! Owns the layout and the init. Does not own the maths (see `engine`) or the file format
//! (see `checkpoint`).

pub mod carry;

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// The recurrent cell, as karpathy/char-rnn offers them, with PyTorch's equations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Long short-term memory (nn.LSTM): gates i, f, g, o and a cell state c.
    #[default]
    Lstm,
    /// Gated recurrent unit (nn.GRU): gates r, z, n, with b_hn inside the reset product.
    Gru,
    /// Plain tanh recurrence (nn.RNN): h' = tanh(W_ih x + b_ih + W_hh h + b_hh).
    Rnn,
}

impl Cell {
    /// Gate blocks of H rows in W_ih and W_hh.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn => 1,
        }
    }
    /// PyTorch module name, the prefix of the tensor names.
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
            Cell::Rnn => "rnn",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
            Cell::Rnn => "RNN",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The recurrent cell; checkpoints from before cells existed are LSTMs.
    #[serde(default)]
    pub cell: Cell,
    /// Vocabulary size V (input one-hot width and head width).
    pub vocab: usize,
    /// Hidden size H of every layer.
    pub hidden: usize,
    /// Number of stacked recurrent layers L.
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
    pub w_ih: usize, // (G·H, I), I = V (or D) for layer 0 else H; G gate blocks
    pub w_hh: usize, // (G·H, H)
    pub b_ih: usize, // (G·H)
    pub b_hh: usize, // (G·H)
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
        let (gh, cell) = (config.cell.gates() * config.hidden, config.cell.name());
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
            let w_ih = push(format!("{cell}.weight_ih_l{l}"), vec![gh, input]);
            let w_hh = push(format!("{cell}.weight_hh_l{l}"), vec![gh, h]);
            let b_ih = push(format!("{cell}.bias_ih_l{l}"), vec![gh]);
            let b_hh = push(format!("{cell}.bias_hh_l{l}"), vec![gh]);
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

/// PyTorch's default init for nn.LSTM / nn.GRU / nn.RNN and nn.Linear(H, V): every weight and bias uniform in
/// ±1/√H (for Linear, kaiming_uniform(a=√5) reduces to the same bound with fan_in = H).
/// nn.Embedding's is a standard normal.
/// The values are drawn in f64 and converted by `cast` (the engine's float type; see
/// `engine::init_params`), so an f32 and an f64 model from one seed differ only by rounding.
pub fn init_params_with<F>(layout: &Layout, rng: &mut Rng, cast: impl Fn(f64) -> F) -> Vec<F> {
    let bound = 1.0 / (layout.config.hidden as f64).sqrt();
    let mut p: Vec<F> = (0..layout.total)
        .map(|_| cast(rng.uniform_in(-bound, bound)))
        .collect();
    if let Some(e) = layout.embed {
        let len = layout.config.vocab * layout.config.embed;
        for x in &mut p[e..e + len] {
            *x = cast(rng.normal());
        }
    }
    p
}

/// Training FLOPs per character, the count `charrnn bench` reports GFLOP/s by and the sizing's
/// probe fits against: 72H² + 6HV for a 2-layer LSTM (forward 2GH² for layer 1 with one-hot
/// input, 4GH² per further layer, 2HV head, G gate blocks; backward ≈ 2×).
pub fn train_flops_per_char(c: &ModelConfig) -> f64 {
    let (h, v, g) = (c.hidden as f64, c.vocab as f64, c.cell.gates() as f64);
    let first = 2.0 * g * h * (h + c.embed as f64);
    let fwd = first + 4.0 * g * h * h * (c.layers as f64 - 1.0) + 2.0 * h * v;
    3.0 * fwd
}
