use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hookrelay::cli::run(hookrelay::cli::Cli::parse())
}
