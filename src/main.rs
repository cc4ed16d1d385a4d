//! The `controlplane` command line: see `controlplane --help`.

#[global_allocator]
static ALLOCATOR: controlplane::alloc::Allocator = controlplane::alloc::Allocator;

fn main() -> std::process::ExitCode {
    controlplane::cli::main()
}
