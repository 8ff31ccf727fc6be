//! Registers the public API schema (schema/api.graphql, generated from the supergraph and drift-checked in
//! CI), so every operation of this crate is checked against it when it compiles: an operation that no
//! longer matches the supergraph does not build.

fn main() {
    let schema = "../../schema/api.graphql";
    println!("cargo:rerun-if-changed={schema}");
    cynic_codegen::register_schema("controlplane")
        .from_sdl_file(schema)
        .expect("schema/api.graphql is readable")
        .as_default()
        .expect("the schema registers");
}
