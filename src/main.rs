//! The `charrnn` binary: parse, run, turn an error into one line and an exit code.

use clap::Parser;

fn main() {
    let cli = charrnn::cli::Cli::parse();
    if let Err(e) = charrnn::cli::run(cli) {
        if e.kind != charrnn::error::Kind::BrokenPipe {
            eprintln!("charrnn: {e}");
        }
        std::process::exit(e.exit_code());
    }
}
