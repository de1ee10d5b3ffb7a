//! charrnn: a character-level LSTM/GRU/RNN language model with a hand-written CPU engine.
//!
//! `main.rs` is a thin shell over this library. The modules follow the pipeline, and imports
//! flow one way down it:
//!
//! `error`, `rng`, `atomic`, `memory` (foundations) → `data` (text, vocabulary, batches) →
//! `model` (cells, parameter layout, init) → `engine` (forward, loss, backward) → `args` (what
//! the values of flags several commands share mean) → `optim` (Adam, the training step) →
//! `checkpoint` (the file format) → `sample` (generation) → `report` (eval, info, plot) →
//! `train` (the run) → `bench`, `serve` (HTTP) → `cli` (commands) → `python` (the Python
//! package's native module, with the `python` feature).
//!
//! # Using a trained model from Rust
//!
//! Load a checkpoint written by `charrnn train`, generate text as an iterator of characters,
//! and score a text:
//!
//! ```
//! use charrnn::{Model, Settings};
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1-lstm-2x16.safetensors");
//! let model = Model::load(path)?; // e.g. "runs/shakespeare/best.safetensors"
//! let settings = Settings {
//!     seed: 7,
//!     temperature: 0.8,
//!     top_p: Some(0.95),
//!     max_chars: Some(100),
//!     stop: vec!["\n\n".into()],
//!     ..Settings::default()
//! };
//! let text: String = model.generate("the ", &settings)?.collect();
//! assert!(text.chars().count() <= 100);
//! let score = model.score("the lazy dog.\n", 1)?;
//! println!("{text}\n{:.3} bits/char", score.bits_per_char());
//! # Ok::<(), charrnn::error::Error>(())
//! ```

pub mod args;
pub mod atomic;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod engine;
pub mod error;
pub mod memory;
pub mod model;
pub mod optim;
#[cfg(feature = "python")]
mod python;
pub mod report;
pub mod rng;
pub mod sample;
pub mod serve;
pub mod train;

pub use sample::{Finish, Generation, Model, Score, Settings};
