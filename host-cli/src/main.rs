//! The `pkms` command: see `pkms --help`.
#![forbid(unsafe_code)]

mod cli;
mod keyref;
mod serve;

fn main() {
    std::process::exit(cli::main());
}
