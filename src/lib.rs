//! charrnn: a character-level LSTM/GRU/RNN language model with a hand-written CPU engine.
//!
//! `main.rs` is a thin shell over this library. The modules follow the pipeline, and imports
//! flow one way down it:
//!
//! `error`, `rng`, `atomic` (foundations) → `data` (text, vocabulary, batches) → `model`
//! (cells, parameter layout, init) → `engine` (forward, loss, backward) → `optim` (Adam, the
//! training step) → `checkpoint` (the file format) → `sample` (generation) → `report` (eval,
//! info, plot) → `train` (the run) → `bench` → `cli` (commands).

pub mod atomic;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod engine;
pub mod error;
pub mod model;
pub mod optim;
pub mod report;
pub mod rng;
pub mod sample;
pub mod train;
