//! The `hookrelay` binary: parses the command line and hands it to `cli::run`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hookrelay::cli::run(hookrelay::cli::Cli::parse())
}
