//! The `controlplane` command line: see `controlplane --help`.

fn main() -> std::process::ExitCode {
    controlplane::cli::main()
}
