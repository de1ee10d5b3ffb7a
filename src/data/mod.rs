//! Text in: reading files as text (with clear errors), the character vocabulary, the
//! train/validation split and the B-stream batcher of truncated BPTT, and downloading a book
//! to train on.
//!
//! Owns everything between a path and the id sequences the engine reads. Does not own the
//! model or the training loop.
//!
//! - `text`: files and folders into one text; `--ascii`; the corpus fingerprint
//! - `vocab`: characters and ids
//! - `batches`: the split and the batches
//! - `fetch`: `charrnn fetch gutenberg`, the download cache

pub mod batches;
pub mod fetch;
pub mod text;
pub mod vocab;

pub use batches::{split, Batches};
pub use text::{decode_text, fingerprint, read_corpus, read_text, sha256_hex, to_ascii, Corpus};
pub use vocab::{Vocab, UNK};
