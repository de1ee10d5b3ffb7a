//! A model's weights as the sampler reads them: converted once to a precision (f32, bf16 by
//! round-to-nearest-even, or int8 per output row with an f32 scale) and split over a crew of
//! threads by hidden units, so that each member's share of every matrix it reads per
//! character stays resident in its own core's cache. What is converted: the matrices a
//! character multiplies (W_hh, W_ih of the layers above the first or after an embedding, the
//! head); what stays f32: biases, the embedding and the one-hot input's columns (gathered, not
//! multiplied), and the state.
//!
//! Owns the packed layout. Does not own the arithmetic (`engine::kernels`) or the stepping
//! (`sampler`).

use crate::engine::kernels::{f32_to_bf16, Rows};
use crate::engine::team::share;
use crate::model::{Cell, Layout};

/// The precision of the weights a sampler multiplies with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The trained weights as they are: the texts of earlier seeds.
    #[default]
    F32,
    /// bfloat16, rounded to nearest even: half the bytes.
    Bf16,
    /// int8 per output row with an f32 scale (max |w| / 127): a quarter of the bytes.
    Int8,
}

/// `--precision` and `--threads` of the commands that run a trained model (`sample`, `eval`,
/// `serve`, `bench`), as one clap group flattened into each.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct Compute {
    /// The precision of the weights: f32 (the texts of earlier seeds), bf16 or int8 (a half
    /// or a quarter of the bytes, faster; the same seed gives the same text within a precision
    /// on every machine) [default: f32].
    #[arg(long, value_enum, default_value_t)]
    pub precision: Precision,
    #[command(flatten)]
    pub threads: crate::args::Threads,
}

impl Precision {
    /// "f32", "bf16" or "int8".
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }
}

/// A matrix of `rows` × `cols` in one precision.
pub enum Mat {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
    I8(Vec<i8>, Vec<f32>),
}

impl Mat {
    /// Rows `rows` of the f32 matrix `w` (row length `k`) in `precision`.
    fn pack(w: &[f32], k: usize, rows: impl Iterator<Item = usize> + Clone, p: Precision) -> Mat {
        let row = |r: usize| &w[r * k..][..k];
        let n = rows.clone().count();
        match p {
            Precision::F32 => {
                let mut out = Vec::with_capacity(n * k);
                for r in rows {
                    out.extend_from_slice(row(r));
                }
                Mat::F32(out)
            }
            Precision::Bf16 => {
                let mut out = Vec::with_capacity(n * k);
                for r in rows {
                    out.extend(row(r).iter().map(|&x| f32_to_bf16(x)));
                }
                Mat::Bf16(out)
            }
            Precision::Int8 => {
                let (mut q, mut scales) = (Vec::with_capacity(n * k), Vec::with_capacity(n));
                for r in rows {
                    let s = row(r).iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
                    let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
                    // Round to nearest even by adding 1.5·2^23 and reading the low bits: no
                    // rounding instruction on baseline x86-64, so this keeps the loop vectorised.
                    q.extend(row(r).iter().map(|&x| {
                        let y = (x * inv).clamp(-127.0, 127.0) + 12_582_912.0;
                        y.to_bits().wrapping_sub(0x4B40_0000) as i32 as i8
                    }));
                    scales.push(s);
                }
                Mat::I8(q, scales)
            }
        }
    }

    /// The kernel's view of it.
    pub fn rows(&self) -> Rows<'_> {
        match self {
            Mat::F32(w) => Rows::F32(w),
            Mat::Bf16(w) => Rows::Bf16(w),
            Mat::I8(w, s) => Rows::I8(w, s),
        }
    }

    /// Bytes it occupies.
    pub fn bytes(&self) -> usize {
        match self {
            Mat::F32(w) => 4 * w.len(),
            Mat::Bf16(w) => 2 * w.len(),
            Mat::I8(w, s) => w.len() + 4 * s.len(),
        }
    }
}

/// One member's share of one layer: its units' rows of every gate (gate-major: gate g's rows
/// for the member's units, then gate g+1's), and their biases.
pub struct LayerShare {
    /// (G·w, I): W_ih, for layers above the first and after an embedding.
    pub w_ih: Option<Mat>,
    /// (V, G·w): the one-hot input's columns of W_ih, transposed (layer 0 without embedding).
    pub onehot: Vec<f32>,
    /// (G·w, H)
    pub w_hh: Mat,
    /// (G·w) each.
    pub b_ih: Vec<f32>,
    pub b_hh: Vec<f32>,
}

/// What one crew member multiplies with.
pub struct Share {
    /// The hidden units it owns.
    pub units: std::ops::Range<usize>,
    pub layers: Vec<LayerShare>,
    /// The vocabulary rows of the head it owns.
    pub vocab: std::ops::Range<usize>,
    /// (v_k, H) and (v_k).
    pub head_w: Mat,
    pub head_b: Vec<f32>,
}

/// (V, R): the columns of `w` (row length `v`) for the rows `rows`, as rows.
fn transposed_columns(w: &[f32], v: usize, rows: impl Iterator<Item = usize>) -> Vec<f32> {
    let rows: Vec<usize> = rows.collect();
    let mut out = vec![0.0f32; v * rows.len()];
    for (j, &r) in rows.iter().enumerate() {
        for (id, &x) in w[r * v..][..v].iter().enumerate() {
            out[id * rows.len() + j] = x;
        }
    }
    out
}

/// A model's weights packed for a crew of `members`.
pub struct Packed {
    pub layout: Layout,
    pub precision: Precision,
    pub shares: Vec<Share>,
    /// (V, D) f32, with an embedding.
    pub embed: Vec<f32>,
}

impl Packed {
    /// Converts and splits `params` (laid out by `layout`) for `members` threads.
    pub fn new(layout: &Layout, params: &[f32], precision: Precision, members: usize) -> Packed {
        assert_eq!(params.len(), layout.total);
        let c = layout.config;
        let (h, v, g) = (c.hidden, c.vocab, c.cell.gates());
        let members = members.clamp(1, h);
        let shares = (0..members)
            .map(|k| {
                let units = share(h, members, k);
                let rows = || (0..g).flat_map(|gi| units.clone().map(move |u| gi * h + u));
                let layers = layout
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(l, off)| {
                        let input = off.input;
                        let w_ih = &params[off.w_ih..][..g * h * input];
                        let onehot_input = l == 0 && layout.embed.is_none();
                        LayerShare {
                            w_ih: (!onehot_input)
                                .then(|| Mat::pack(w_ih, input, rows(), precision)),
                            onehot: if onehot_input {
                                transposed_columns(w_ih, v, rows())
                            } else {
                                Vec::new()
                            },
                            w_hh: Mat::pack(&params[off.w_hh..][..g * h * h], h, rows(), precision),
                            b_ih: rows().map(|r| params[off.b_ih + r]).collect(),
                            b_hh: rows().map(|r| params[off.b_hh + r]).collect(),
                        }
                    })
                    .collect();
                let vocab = share(v, members, k);
                Share {
                    head_w: Mat::pack(
                        &params[layout.head_w..][..v * h],
                        h,
                        vocab.clone(),
                        precision,
                    ),
                    head_b: params[layout.head_b..][vocab.clone()].to_vec(),
                    units,
                    layers,
                    vocab,
                }
            })
            .collect();
        let embed = layout
            .embed
            .map_or(Vec::new(), |e| params[e..][..v * c.embed].to_vec());
        Packed {
            layout: layout.clone(),
            precision,
            shares,
            embed,
        }
    }

    /// Members the weights are split for.
    pub fn members(&self) -> usize {
        self.shares.len()
    }

    /// Whether the cell keeps the hidden side of its gates apart (the GRU's n gate).
    pub fn gru(&self) -> bool {
        self.layout.config.cell == Cell::Gru
    }

    /// Bytes of weights each member reads per character (its matrices).
    pub fn bytes_per_member(&self) -> Vec<usize> {
        self.shares
            .iter()
            .map(|s| {
                s.head_w.bytes()
                    + s.layers
                        .iter()
                        .map(|l| l.w_hh.bytes() + l.w_ih.as_ref().map_or(0, Mat::bytes))
                        .sum::<usize>()
            })
            .collect()
    }
}
