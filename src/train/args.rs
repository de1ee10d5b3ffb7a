//! The flags of `charrnn train`: their doc comments are `--help`.
//!
//! Owns the flag definitions. Does not check or apply them (see `config`, `setup`).

use clap::Args;
use std::path::PathBuf;

// The doc comments are --help text, written for a terminal, not rustdoc.
#[allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The UTF-8 text to train on: a file, several files, or folders (read recursively in sorted
    /// order, joined with a blank line).
    #[arg(required_unless_present = "gutenberg", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Train on Project Gutenberg book ID, downloaded once (see `charrnn fetch gutenberg`).
    #[arg(long, value_name = "ID")]
    pub gutenberg: Option<u32>,
    #[command(flatten)]
    pub source: crate::data::fetch::GutenbergSource,
    /// Folder for checkpoints (last.safetensors, best.safetensors) [default: runs/<file stem>,
    /// or the resumed checkpoint's folder].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue exactly from this checkpoint (same text; model and training settings come from it).
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// The recurrent cell: lstm, gru (nn.GRU) or rnn (tanh) [default: lstm].
    #[arg(long, value_enum)]
    pub cell: Option<crate::model::Cell>,
    /// Hidden size of each recurrent layer [default: chosen for the budget: with --minutes the
    /// largest size (128 to 1024) that a measured probe says passes over the text at least 8
    /// times; else the largest with no more parameters than training characters].
    #[arg(long, allow_negative_numbers = true)]
    pub hidden: Option<usize>,
    /// A learned input embedding of this width instead of one-hot input (for large
    /// vocabularies) [default: 0, one-hot; 128 from 1000 distinct characters up].
    #[arg(long, value_name = "D", allow_negative_numbers = true)]
    pub embed: Option<usize>,
    /// Number of stacked recurrent layers [default: 2].
    #[arg(long, allow_negative_numbers = true)]
    pub layers: Option<usize>,
    /// Number of parallel streams per step (B) [default: 50].
    #[arg(long, allow_negative_numbers = true)]
    pub batch: Option<usize>,
    /// Characters per stream per step, the truncated-BPTT length (T) [default: 50].
    #[arg(long, allow_negative_numbers = true)]
    pub seq: Option<usize>,
    /// Adam learning rate [default: 0.002].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// How the learning rate changes over the run [default: cosine].
    #[arg(long, value_enum)]
    pub lr_schedule: Option<crate::optim::Schedule>,
    /// Ramp the learning rate up linearly over the first N steps [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub warmup: Option<u64>,
    /// With --lr-schedule step: the factor applied after every epoch [default: 0.97].
    #[arg(long, allow_negative_numbers = true)]
    pub lr_decay: Option<f64>,
    /// Decoupled weight decay of the weight matrices (AdamW) [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Inverted dropout with this drop probability on the input of every layer above the first
    /// and on the head's input; off for validation and sampling [default: by the expected
    /// passes over the text: 0 below 5, 0.1 below 10, 0.2 below 15, else 0.25; 0.4 from 10
    /// passes up when the recurrent layers have over 2.5 parameters per training character].
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f64>,
    /// Clip the global gradient norm to this value; 0 turns clipping off [default: 5].
    #[arg(long, allow_negative_numbers = true)]
    pub clip: Option<f64>,
    /// Use the AMSGrad variant of Adam, as the blog post did.
    #[arg(long)]
    pub amsgrad: bool,
    /// Random seed for the initial weights [default: 1].
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Fraction of the text, taken from its end, used for validation [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    pub val_frac: Option<f64>,
    /// Transliterate the text to ASCII first (as the blog post did with unidecode).
    #[arg(long)]
    pub ascii: bool,
    /// Replace invalid UTF-8 with U+FFFD instead of stopping with an error.
    #[arg(long)]
    pub lossy: bool,
    /// Keep at most N distinct characters; rarer ones map to one unknown symbol (U+FFFD).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_vocab: Option<usize>,
    /// Map characters seen fewer than N times to the unknown symbol (U+FFFD).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub min_count: Option<usize>,
    /// Stop after this many passes over the training text (fractions allowed) [default: 10,
    /// when neither --steps nor --minutes is given].
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Stop when the run has taken this many optimiser steps in all (resumed steps count).
    #[arg(long, allow_negative_numbers = true)]
    pub steps: Option<u64>,
    /// Stop after this many minutes of training in this invocation (validation not counted).
    #[arg(long, allow_negative_numbers = true)]
    pub minutes: Option<f64>,
    /// Measure validation loss, print a sample and write checkpoints every N steps.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 500,
        allow_negative_numbers = true
    )]
    pub eval_every: u64,
    /// Worker threads [default: all cores].
    #[arg(long, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Print a short sample (200 characters at temperature 0.8) every this many seconds; 0 turns
    /// it off.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30.0,
        allow_negative_numbers = true
    )]
    pub sample_every: f64,
    /// Keep the N newest step checkpoints (step-NNNNNNN.safetensors) besides best and last; older
    /// ones are deleted.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        allow_negative_numbers = true
    )]
    pub keep: usize,
    /// Also save (last and a step checkpoint) every this many minutes of wall-clock time.
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true)]
    pub save_every_minutes: Option<f64>,
    /// Stop when validation loss has not improved for K validations in a row.
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    pub patience: Option<u64>,
    /// Write a line to metrics.jsonl every N steps (mean training loss over them).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        allow_negative_numbers = true
    )]
    pub log_every: u64,
}
