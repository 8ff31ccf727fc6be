// `sqlx::migrate!` embeds the migrations when the crate compiles: a new or changed file must recompile it.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/workflow");
}
