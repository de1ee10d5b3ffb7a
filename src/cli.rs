//! The command line: every subcommand and flag, with the doc comments that `--help` shows.
//!
//! Owns the subcommands and the dispatch; each command's flags live beside the code that runs
//! it (`train::TrainArgs`, `sample::command::SampleArgs`, …), and that code does the work.

use crate::bench::BenchArgs;
use crate::data::fetch::GutenbergArgs;
use crate::error::Result;
use crate::report::{eval::EvalArgs, info::InfoArgs, plot::PlotArgs};
use crate::sample::command::SampleArgs;
use crate::train::TrainArgs;
use clap::{Parser, Subcommand};

/// Character-level LSTM (or GRU, RNN) language model: train on any UTF-8 text on a CPU, then
/// sample text in its style.
#[derive(Parser, Debug)]
#[command(name = "charrnn", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model on a text file (or resume training from a checkpoint).
    #[command(after_help = crate::train::args::EXAMPLES)]
    Train(Box<TrainArgs>),
    /// Generate text from a trained checkpoint, streaming to stdout.
    Sample(SampleArgs),
    /// Measure training and sampling speed on random data (no corpus needed).
    Bench(BenchArgs),
    /// Loss of a checkpoint on texts (nats and bits per character, perplexity), exactly as
    /// validation loss is measured.
    Eval(EvalArgs),
    /// Show what a checkpoint holds: model, vocabulary, training state, corpus.
    Info(InfoArgs),
    /// Write a checkpoint's weights alone (no optimiser state), in f32 or bf16: a file to
    /// share, sample from or fine-tune from, not to resume.
    Export(crate::checkpoint::export::ExportArgs),
    /// Draw the loss curves of one or more runs (folders written by train --out) on one chart.
    Plot(PlotArgs),
    /// Serve models over HTTP: the OpenAI Completions API (many users stepped as one batch)
    /// and a page to try them at /.
    #[command(after_help = crate::serve::EXAMPLES)]
    Serve(crate::serve::ServeArgs),
    /// Download a text to train on into a cache folder and print its path.
    #[command(subcommand)]
    Fetch(FetchCommand),
}

#[derive(Subcommand, Debug)]
pub enum FetchCommand {
    /// A Project Gutenberg book by number (27200 is the blog post's Andersen fairy tales),
    /// without Gutenberg's licence header and footer.
    Gutenberg(GutenbergArgs),
}

/// Runs one parsed command line.
///
/// # Errors
/// Whatever the command fails with (see `error::Error` for the exit codes).
pub fn run(cli: Cli) -> Result<()> {
    // CHARRNN_KERNELS naming kernels this machine lacks: one line, exit 2, before any work.
    crate::engine::isa::init()?;
    match cli.command {
        Command::Train(a) => crate::train::train(&a),
        Command::Sample(a) => crate::sample::command::run(&a),
        Command::Bench(a) => crate::bench::run(&a),
        Command::Eval(a) => crate::report::eval::eval(&a),
        Command::Info(a) => crate::report::info::info(&a),
        Command::Export(a) => crate::checkpoint::export::export(&a),
        Command::Plot(a) => crate::report::plot::plot_runs(&a.runs, a.out.as_deref()),
        Command::Serve(a) => crate::serve::run(&a),
        Command::Fetch(FetchCommand::Gutenberg(a)) => crate::data::fetch::run(&a),
    }
}

/// clap's message in one line: "unexpected argument '--hiden' found; tip: a similar argument
/// exists: '--hidden'", and with `usage` clap's usage line after it (`…; usage: charrnn sample
/// [OPTIONS] <CHECKPOINT>`). The binary prints it as every other bad input (`charrnn: …`,
/// exit 2); the Python package raises it as a ValueError.
pub fn clap_line(e: &clap::Error, usage: bool) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    let mut tail = String::new();
    for l in lines {
        if l.starts_with("tip:") {
            tail = format!("{tail}; {l}");
        } else if let Some(u) = l.strip_prefix("Usage: ") {
            if usage {
                tail = format!("{tail}; usage: {u}");
            }
        } else if !l.starts_with("For more information") {
            // What the first line announces, e.g. the required arguments not provided.
            line = format!("{line} {l}");
        }
    }
    line + &tail
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
