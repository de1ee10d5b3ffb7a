//! Text in: reading files as text (with clear errors), the character vocabulary, the
//! train/validation split and the B-stream batcher of truncated BPTT, and downloading a book
//! to train on. A training run reads its text with one call, `TrainingText::read`.
//!
//! Owns everything between a path and the id sequences the engine reads. Does not own the
//! model or the training loop.
//!
//! - `text`: bytes into text (encodings), `--ascii`, the fingerprint
//! - `corpus`: the files of a corpus and the passes over them (counting, encoding)
//! - `ids`: the corpus as ids, in the narrowest integer, in memory or a temporary file
//! - `vocab`: characters and ids
//! - `training`: a training text read and split (the one call a run makes)
//! - `batches`: the batches over the training part
//! - `fetch`: `charrnn fetch gutenberg`, the download cache

pub mod batches;
pub mod corpus;
pub mod fetch;
pub mod ids;
pub mod text;
pub mod training;
pub mod vocab;

pub use batches::Batches;
pub use corpus::Corpus;
pub use ids::{Ids, Width};
pub use text::{decode_text, fingerprint, read_text, sha256_hex, to_ascii, Decoding};
pub use training::{split, Split, TextSpec, TrainedOn, TrainingText, VocabFrom};
pub use vocab::{Vocab, UNK};
