//! The federation SDL a subgraph exports for composition.

use async_graphql::{ObjectType, Schema, SubscriptionType};

/// A subgraph's federation SDL for composition, minus two things async-graphql exports that routers refuse:
/// the imports of Apollo's licensed security directives (`@authenticated`, `@requiresScopes`, `@policy`;
/// an unlicensed Apollo Router will not start with them linked, and permissions are enforced in the
/// subgraphs anyway), and definitions of GraphQL's built-in directives (`@skip`, `@include`, …), which
/// Apollo Router's query planner rejects as duplicates.
pub fn federation_sdl<Q, M, S>(schema: &Schema<Q, M, S>) -> String
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let sdl = schema.sdl_with_options(async_graphql::SDLExportOptions::new().federation());
    let sdl = ["\"@authenticated\"", "\"@requiresScopes\"", "\"@policy\""]
        .iter()
        .fold(sdl, |sdl, directive| sdl.replace(&format!(", {directive}"), "").replace(&format!("{directive}, "), ""));
    without_builtin_directives(&sdl)
}

/// Drops definitions of the built-in directives, with the docstrings just above them.
fn without_builtin_directives(sdl: &str) -> String {
    const BUILTIN: [&str; 5] = ["@skip(", "@include(", "@deprecated(", "@specifiedBy(", "@oneOf "];
    const QUOTES: &str = "\"\"\"";
    let mut out: Vec<&str> = Vec::new();
    for line in sdl.lines() {
        let builtin = line.strip_prefix("directive ").is_some_and(|rest| BUILTIN.iter().any(|b| rest.starts_with(b)));
        if !builtin {
            out.push(line);
            continue;
        }
        match out.last().map(|l| l.trim()) {
            // A multi-line docstring: drop back to its opening quotes.
            Some(QUOTES) => {
                out.pop();
                while let Some(l) = out.pop() {
                    if l.trim_start().starts_with(QUOTES) {
                        break;
                    }
                }
            }
            Some(l) if l.len() > 6 && l.starts_with(QUOTES) && l.ends_with(QUOTES) => {
                out.pop();
            }
            _ => {}
        }
    }
    let mut sdl = out.join("\n");
    sdl.push('\n');
    sdl
}
