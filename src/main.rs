//! The `charrnn` binary: parse, run, turn an error into one line and an exit code.

use clap::error::ErrorKind;
use clap::Parser;

fn main() {
    let cli = match charrnn::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version and a bare `charrnn` print clap's own text.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            eprintln!("charrnn: {}", charrnn::cli::clap_line(&e, true));
            std::process::exit(2);
        }
    };
    if let Err(e) = charrnn::cli::run(cli) {
        if e.kind != charrnn::error::Kind::BrokenPipe {
            eprintln!("charrnn: {e}");
        }
        std::process::exit(e.exit_code());
    }
}
