//! charrnn: a character-level LSTM/GRU/RNN language model with a hand-written CPU engine.
//!
//! `main.rs` is a thin shell over this library: `cli` parses, `train` and `sample` run the two
//! commands, `engine` is the batched forward/backward, `checkpoint` the file format.

pub mod autosize;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod float;
pub mod inspect;
pub mod linalg;
pub mod model;
pub mod optim;
pub mod plot;
pub mod raster;
pub mod rng;
pub mod runlog;
pub mod sample;
pub mod sha256;
pub mod simd;
pub mod team;
pub mod train;

use error::Result;

/// Runs one parsed command line.
pub fn run(cli: cli::Cli) -> Result<()> {
    match cli.command {
        cli::Command::Train(mut a) => {
            if let Some(id) = a.gutenberg {
                a.files.push(fetch::gutenberg(
                    id,
                    a.source.cache.as_deref(),
                    a.source.mirror.as_deref(),
                )?);
            }
            train::train(&a)
        }
        cli::Command::Sample(a) => sample::run(&a),
        cli::Command::Bench(a) => bench::run(&a),
        cli::Command::Eval(a) => inspect::eval(&a),
        cli::Command::Info(a) => inspect::info(&a),
        cli::Command::Plot(a) => runlog::plot_runs(&a.runs, &a.out),
        cli::Command::Fetch(cli::FetchCommand::Gutenberg(a)) => {
            let path =
                fetch::gutenberg(a.id, a.source.cache.as_deref(), a.source.mirror.as_deref())?;
            println!("{}", path.display());
            Ok(())
        }
    }
}
