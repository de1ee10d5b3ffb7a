//! The flags of `charrnn train`: their doc comments are `--help`, the flags a first run needs
//! first, the rest under headings.
//!
//! Owns the flag definitions. Does not check or apply them (see `config`, `setup`).

use clap::Args;
use std::path::PathBuf;

/// Examples at the end of `charrnn train --help`.
pub const EXAMPLES: &str = "\
Examples:
  charrnn train data/tinyshakespeare.txt --minutes 5              # sized for 5 minutes, into runs/tinyshakespeare
  charrnn train --gutenberg 27200 --out runs/fairy               # the blog post's fairy tales, 10 epochs
  charrnn train notes/ --epochs 20 --out runs/notes              # every text file of a folder
  charrnn train data/tinyshakespeare.txt --resume runs/tinyshakespeare/last.safetensors   # continue the same run
  charrnn train old.txt --encoding windows-1252 --minutes 2      # a text in a legacy encoding
  charrnn train names.txt --init-from models/base.safetensors --minutes 1   # fine-tune a model on a small text";

const INPUT: &str = "Input";
const MODEL: &str = "Model (chosen for the budget when not given)";
const OPTIM: &str = "Optimisation";
const VALID: &str = "Validation and checkpoints";
const OUTPUT: &str = "Progress and machine";

// The doc comments are --help text, written for a terminal, not rustdoc.
#[allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The text to train on: a file, several files, or folders (read recursively in sorted
    /// order, joined with a blank line). UTF-8, or any encoding with a byte-order mark (UTF-16,
    /// UTF-32), or --encoding.
    #[arg(required_unless_present = "gutenberg", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Stop after this many minutes of training (the steps only: validation and saving are
    /// extra, as for the peers); the model is sized for it.
    #[arg(long, allow_negative_numbers = true)]
    pub minutes: Option<f64>,
    /// Stop after this many passes over the training text (fractions allowed) [default: 10,
    /// when neither --steps nor --minutes is given].
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Stop when the run has taken this many optimiser steps in all (resumed steps count). With
    /// --init-from, 0 validates and saves the starting point without training.
    #[arg(long, allow_negative_numbers = true)]
    pub steps: Option<u64>,
    /// Folder for checkpoints (last.safetensors, best.safetensors) [default: runs/<file stem>,
    /// or the resumed checkpoint's folder]. A folder that already holds a trained model is
    /// refused (unless this run resumes its newest checkpoint, or with --overwrite), and so is
    /// one that holds files that are not a run's.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue exactly from this checkpoint: the same text; the model, the settings and the
    /// budget come from it (a budget flag re-plans the rest of the run).
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Start from a trained model (fine-tuning): its architecture and weights, its vocabulary
    /// matched to the text's by character (characters both have keep their rows, new ones get
    /// new rows, the base's others stay); fresh optimiser state, and a learning rate, warm-up
    /// and dropout for fine-tuning unless given. A file of `charrnn train` or `charrnn export`.
    #[arg(long, value_name = "CKPT")]
    pub init_from: Option<PathBuf>,
    /// Replace the run the output folder holds: its checkpoints, metrics.jsonl, loss.svg and
    /// config.json are removed before this run writes its own (other files are kept). With
    /// --resume of an older checkpoint of the same folder: only what came after it is removed.
    #[arg(long)]
    pub overwrite: bool,

    /// Train on Project Gutenberg book ID, downloaded once (see `charrnn fetch gutenberg`).
    #[arg(long, value_name = "ID", help_heading = INPUT)]
    pub gutenberg: Option<u32>,
    #[command(flatten, next_help_heading = INPUT)]
    pub source: crate::data::fetch::GutenbergSource,
    /// The encoding of texts without a byte-order mark, e.g. windows-1252, latin1, shift_jis,
    /// gbk [default: UTF-8].
    #[arg(long, value_name = "NAME", help_heading = INPUT)]
    pub encoding: Option<String>,
    /// Replace invalid bytes with U+FFFD instead of stopping with an error.
    #[arg(long, help_heading = INPUT)]
    pub lossy: bool,
    /// Transliterate the text to ASCII first (as the blog post did with unidecode).
    #[arg(long, help_heading = INPUT)]
    pub ascii: bool,
    /// Keep at most N distinct characters; rarer ones map to one unknown symbol (U+FFFD).
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = INPUT)]
    pub max_vocab: Option<usize>,
    /// Map characters seen fewer than N times to the unknown symbol (U+FFFD).
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = INPUT)]
    pub min_count: Option<usize>,

    /// The recurrent cell: lstm, gru (nn.GRU) or rnn (tanh) [default: lstm].
    #[arg(long, value_enum, help_heading = MODEL)]
    pub cell: Option<crate::model::Cell>,
    /// Hidden size of each recurrent layer [default: chosen for the budget: with --minutes the
    /// largest size (32 to 1024) that a measured probe says the budget shows about 12
    /// characters per parameter; else the largest with no more parameters than training
    /// characters; never more than 3 parameters per training character].
    #[arg(long, allow_negative_numbers = true, help_heading = MODEL)]
    pub hidden: Option<usize>,
    /// Number of stacked recurrent layers [default: 2].
    #[arg(long, allow_negative_numbers = true, help_heading = MODEL)]
    pub layers: Option<usize>,
    /// A learned input embedding of this width instead of one-hot input (for large
    /// vocabularies) [default: 0, one-hot; 128 from 1000 distinct characters up].
    #[arg(long, value_name = "D", allow_negative_numbers = true, help_heading = MODEL)]
    pub embed: Option<usize>,
    /// Inverted dropout with this drop probability on the input of every layer above the first
    /// and on the head's input; off for validation and sampling [default: by the expected
    /// passes over the text: 0 below 5, 0.1 below 10, 0.2 below 15, else 0.25; 0.4 from 10
    /// passes up when the recurrent layers have over 2.5 parameters per training character].
    #[arg(long, allow_negative_numbers = true, help_heading = MODEL)]
    pub dropout: Option<f64>,

    /// Number of parallel streams per step (B) [default: 32].
    #[arg(long, allow_negative_numbers = true, help_heading = OPTIM)]
    pub batch: Option<usize>,
    /// Characters per stream per step, the truncated-BPTT length (T) [default: 32].
    #[arg(long, allow_negative_numbers = true, help_heading = OPTIM)]
    pub seq: Option<usize>,
    /// Adam learning rate [default: 0.004 for the LSTM, 0.002 for the GRU and RNN].
    #[arg(long, allow_negative_numbers = true, help_heading = OPTIM)]
    pub lr: Option<f64>,
    /// How the learning rate changes over the run [default: cosine].
    #[arg(long, value_enum, help_heading = OPTIM)]
    pub lr_schedule: Option<crate::optim::Schedule>,
    /// Ramp the learning rate up linearly over the first N steps [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = OPTIM)]
    pub warmup: Option<u64>,
    /// With --lr-schedule step: the factor applied after every epoch [default: 0.97].
    #[arg(long, allow_negative_numbers = true, help_heading = OPTIM)]
    pub lr_decay: Option<f64>,
    /// Decoupled weight decay of the weight matrices (AdamW) [default: 0].
    #[arg(long, allow_negative_numbers = true, help_heading = OPTIM)]
    pub weight_decay: Option<f64>,
    /// Clip the global gradient norm to this value; 0 turns clipping off [default: 5].
    #[arg(long, allow_negative_numbers = true, help_heading = OPTIM)]
    pub clip: Option<f64>,
    /// Use the AMSGrad variant of Adam, as the blog post did.
    #[arg(long, help_heading = OPTIM)]
    pub amsgrad: bool,
    /// Random seed for the initial weights and the dropout masks [default: 1].
    #[arg(long, allow_negative_numbers = true, help_heading = OPTIM)]
    pub seed: Option<u64>,

    /// Fraction of the text, taken from its end, used for validation [default: 0.1].
    #[arg(long, allow_negative_numbers = true, help_heading = VALID)]
    pub val_frac: Option<f64>,
    /// Validation during training scores the first N characters of the validation part (all
    /// of it when shorter), so its cost does not grow with the corpus; 0 scores all of it
    /// [default: 1000000].
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = VALID)]
    pub val_chars: Option<u64>,
    /// At the end of the run, also score the whole validation part (as `charrnn eval` does).
    #[arg(long, help_heading = VALID)]
    pub full_val: bool,
    /// Measure validation loss and write checkpoints every N steps [default: after 800,000
    /// characters of training (781 steps of the default 32 × 32), a pass over the text or a
    /// minute of training since the last validation, whichever comes first; short of a pass,
    /// not before four times the last validation's seconds].
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = VALID)]
    pub eval_every: Option<u64>,
    /// Keep the N newest step checkpoints (step-NNNNNNN.safetensors) besides best and last; older
    /// ones are deleted.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        allow_negative_numbers = true,
        help_heading = VALID
    )]
    pub keep: usize,
    /// Also save (last and a step checkpoint) every this many minutes of wall-clock time.
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true, help_heading = VALID)]
    pub save_every_minutes: Option<f64>,
    /// Stop when validation loss has not improved for K validations in a row [default: 10, with
    /// a note on what it means; a resumed run keeps its own].
    #[arg(long, value_name = "K", allow_negative_numbers = true, help_heading = VALID)]
    pub patience: Option<u64>,

    /// The operands of the matrix products: bf16 (rounded, with f32 accumulation; weights,
    /// gradients, optimiser and cell state stay f32) or f32. A run may resume in either
    /// [default: the faster on this machine where the CPU multiplies bf16 itself (timed by a
    /// sizing probe, or this machine's stored probes; else bf16 on AMX), else f32].
    #[arg(long, value_enum, help_heading = OUTPUT)]
    pub precision: Option<crate::engine::MatmulPrecision>,
    #[command(flatten, next_help_heading = OUTPUT)]
    pub threads: crate::args::Threads,
    /// Print a short sample (200 characters at temperature 0.8) every this many seconds; 0 turns
    /// it off.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30.0,
        allow_negative_numbers = true,
        help_heading = OUTPUT
    )]
    pub sample_every: f64,
    /// Write a line to metrics.jsonl every N steps (mean training loss over them).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        allow_negative_numbers = true,
        help_heading = OUTPUT
    )]
    pub log_every: u64,
}
