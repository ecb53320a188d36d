//! The `pkms` command: see `pkms --help`.

fn main() {
    std::process::exit(pkms_lib::cli::main());
}
