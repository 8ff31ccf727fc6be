//! `identity serve | print-schema | provision | bootstrap` (`--help` lists every setting).

fn main() -> std::process::ExitCode {
    kernel::service::main::<identity::State>()
}
