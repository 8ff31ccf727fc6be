//! `lineage serve | print-schema | provision` (`--help` lists every setting).

fn main() -> std::process::ExitCode {
    kernel::service::main::<lineage::State>()
}
