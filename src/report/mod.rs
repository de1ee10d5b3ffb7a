//! Reports on what training produced: a checkpoint's loss on any text (`eval`), what a
//! checkpoint holds (`info`), loss charts of run folders (`plot`), and the metrics file and
//! chart drawing they share with a running training (`metrics`, `chart`).
//!
//! Owns these commands and the metrics format. Does not train or sample.

pub mod chart;
pub mod eval;
pub mod info;
pub mod metrics;
pub mod plot;
