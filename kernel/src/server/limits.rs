//! The limits a document meets before async-graphql parses or validates it, and the schema's own limits.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ObjectType, SchemaBuilder, ServerError, ServerResult, SubscriptionType};

use crate::config::KernelConfig;

/// The executable schema's limits from configuration: depth, complexity (list fields multiply by their
/// page size), directives, parser recursion, selections after fragment expansion, and introspection.
pub fn limits<Q, M, S>(builder: SchemaBuilder<Q, M, S>, cfg: &KernelConfig) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let builder = builder
        .limit_depth(cfg.max_depth)
        .limit_complexity(cfg.max_complexity)
        .limit_directives(cfg.max_directives)
        .limit_recursive_depth(cfg.max_depth.max(32))
        .extension(SelectionLimit { max_selections: cfg.max_selections, max_objects: cfg.max_objects });
    if cfg.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}

/// Refuses operations with more than `.0` field selections once fragments are expanded, before anything
/// else looks at the document: async-graphql's own checks (recursive depth, directives, depth, complexity)
/// walk every fragment again at every spread, which is exponential for a document whose fragments each
/// spread the next one twice. This runs in `prepare_request`, ahead of those, and computes each fragment's
/// size once, so it is linear in the document's length whatever the document would expand to.
///
/// It also gives each operation its [`ObjectBudget`] of `max_objects`.
#[derive(Clone, Copy)]
pub struct SelectionLimit {
    pub max_selections: usize,
    pub max_objects: usize,
}

impl ExtensionFactory for SelectionLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for SelectionLimit {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        // Parsing recurses once per level of nesting: a deeper document is refused before it is parsed.
        if let Err(why) = within_nesting(&request.query) {
            return Err(ServerError::new(why, None));
        }
        let max = self.max_selections;
        let n = expanded_selections(request.parsed_query()?, max);
        if n > max {
            return Err(ServerError::new(
                format!(
                    "the operation selects more than {max} fields once its fragments are expanded (or its fragments \
                     spread each other in a cycle)"
                ),
                None,
            ));
        }
        request.data.insert(ObjectBudget::new(self.max_objects));
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        let mut response = next.run(ctx, operation_name).await;
        if ctx.data_opt::<ObjectBudget>().is_some_and(ObjectBudget::overdrawn) {
            // Refused whole: what was resolved before the budget ran out is not sent.
            response.data = async_graphql::Value::Null;
        }
        response
    }
}

/// Deepest nesting of `{`, `[` and `(` a document may have. GraphQL parsers (async-graphql's pest grammar,
/// and the routers') recurse once or more per level, so a 10 KB document of lists nested 5,000 deep
/// overflows a thread's stack and aborts the process. 64 is far beyond any real operation: selection
/// depth is limited to `MAX_DEPTH` anyway, and an input value nests a few levels.
pub const MAX_NESTING: usize = 64;

/// `Err` with a client-facing reason when `query` nests deeper than [`MAX_NESTING`].
pub fn within_nesting(query: &str) -> Result<(), String> {
    if nesting_depth(query, MAX_NESTING) > MAX_NESTING {
        return Err(format!("the document nests more than {MAX_NESTING} levels of braces, brackets or parentheses"));
    }
    Ok(())
}

/// The deepest nesting of `{`, `[` and `(` in a GraphQL document, found without parsing it: one pass over
/// its bytes that skips strings, block strings and comments as GraphQL's lexer does, and that stops as
/// soon as the depth passes `cap` (answering `cap + 1`). It never recurses, so any input is safe to give it.
/// A document the lexer would refuse (an unterminated string) answers with what was seen before it; the
/// parser refuses the rest.
pub fn nesting_depth(query: &str, cap: usize) -> usize {
    let b = query.as_bytes();
    let (mut i, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                // A block string: ends at the next `"""` not escaped as `\"""`.
                i += 3;
                loop {
                    if i >= b.len() {
                        return deepest;
                    }
                    if b[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if b[i..].starts_with(b"\"\"\"") {
                        i += 2;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                // A string: ends at the next unescaped `"`, and may not span lines.
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\n' || b[i] == b'\r' {
                        return deepest;
                    }
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    if deepest > cap {
                        return cap + 1;
                    }
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// What one operation's answer may still hold of rows whose number static complexity cannot know: lists
/// returned whole (a module's direct dependencies, a transitive traversal, a build order). Complexity
/// charges a paginated list `first` × its selection before anything runs; such a list is charged here once
/// it is read, by [`charge`], against a budget the whole answer shares — so nesting them (dependencies of
/// dependencies of …) cannot multiply past it, whatever the graph.
///
/// An operation that overdraws it is refused whole: its answer is the error, without the data resolved
/// before the budget ran out ([`SelectionLimit`] drops it).
pub struct ObjectBudget {
    left: AtomicUsize,
    max: usize,
    overdrawn: AtomicBool,
}

impl ObjectBudget {
    pub fn new(max: usize) -> Self {
        Self { left: AtomicUsize::new(max), max, overdrawn: AtomicBool::new(false) }
    }

    /// Takes `n` objects, or refuses (and takes everything, so the rest of the answer is refused too).
    fn take(&self, n: usize) -> bool {
        if self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n)).is_ok() {
            return true;
        }
        self.left.store(0, Ordering::Relaxed);
        self.overdrawn.store(true, Ordering::Relaxed);
        false
    }

    pub fn overdrawn(&self) -> bool {
        self.overdrawn.load(Ordering::Relaxed)
    }
}

/// Charges the field being resolved, a list of `rows` rows, to the operation's [`ObjectBudget`]: each row
/// costs one object plus every field selected under it (fragments expanded). `BAD_USER_INPUT` once the
/// answer would pass `GRAPHQL_MAX_OBJECTS`. Call it in the resolver of every list whose length has no
/// `first`, with the rows in hand, before returning them.
pub fn charge(ctx: &async_graphql::Context<'_>, rows: usize) -> crate::Result<()> {
    charge_within(ctx, &[], rows)
}

/// [`charge`] for a list `path` below the field being resolved (`&["affected"]`: the `affected` list of the
/// object this resolver returns), each row costing what is selected under it there.
pub fn charge_within(ctx: &async_graphql::Context<'_>, path: &[&str], rows: usize) -> crate::Result<()> {
    let Some(budget) = ctx.data_opt::<ObjectBudget>() else { return Ok(()) };
    fn fields<'a>(set: impl Iterator<Item = async_graphql::SelectionField<'a>>) -> usize {
        set.map(|f| 1usize.saturating_add(fields(f.selection_set()))).fold(0, usize::saturating_add)
    }
    let list = path.iter().fold(ctx.look_ahead(), |at, name| at.field(name));
    let per_row = 1usize.saturating_add(
        list.selection_fields().iter().map(|f| fields(f.selection_set())).fold(0, usize::saturating_add),
    );
    if budget.take(rows.saturating_mul(per_row)) {
        return Ok(());
    }
    let name = path.last().copied().unwrap_or(ctx.field().name());
    Err(crate::Error::bad_input(
        name,
        format!(
            "the answer would hold more than {} objects (GRAPHQL_MAX_OBJECTS): `{name}` has {rows} rows of \
             {per_row} objects each; select fewer fields under it, narrow it, or ask for less around it",
            budget.max,
        ),
    ))
}

/// Field selections of every operation in `doc` with fragments expanded, counting no further than `cap + 1`.
pub fn expanded_selections(doc: &ExecutableDocument, cap: usize) -> usize {
    use std::collections::HashMap;
    fn set(
        s: &SelectionSet,
        doc: &ExecutableDocument,
        memo: &mut HashMap<String, usize>,
        open: &mut HashSet<String>,
        cap: usize,
    ) -> usize {
        let mut n: usize = 0;
        for item in &s.items {
            let add = match &item.node {
                Selection::Field(f) => 1usize.saturating_add(set(&f.node.selection_set.node, doc, memo, open, cap)),
                Selection::InlineFragment(i) => set(&i.node.selection_set.node, doc, memo, open, cap),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.to_string();
                    if let Some(&known) = memo.get(&name) {
                        known
                    } else if !open.insert(name.clone()) {
                        // A cycle: never valid, and async-graphql's own recursive walk would explore it
                        // exponentially up to its depth limit when fragments spread each other twice.
                        cap + 1
                    } else {
                        let size = doc
                            .fragments
                            .get(&spread.node.fragment_name.node)
                            .map(|f| set(&f.node.selection_set.node, doc, memo, open, cap))
                            .unwrap_or(0);
                        open.remove(&name);
                        memo.insert(name, size);
                        size
                    }
                }
            };
            n = n.saturating_add(add);
            if n > cap {
                return cap + 1;
            }
        }
        n
    }
    let mut memo = HashMap::new();
    let mut open = HashSet::new();
    let mut total: usize = 0;
    for (_, op) in doc.operations.iter() {
        total = total.saturating_add(set(&op.node.selection_set.node, doc, &mut memo, &mut open, cap));
        if total > cap {
            return cap + 1;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn expanded_selections_are_counted_without_expanding() {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..60 {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i + 1, i + 1));
        }
        q.push_str("fragment F60 on Query { a b }\n");
        let doc = async_graphql::parser::parse_query(&q).unwrap();
        let started = Instant::now();
        assert_eq!(expanded_selections(&doc, 2000), 2001);
        assert!(started.elapsed() < Duration::from_millis(100));
        let small = async_graphql::parser::parse_query("{ a b { c d } ...X } fragment X on Q { e }").unwrap();
        assert_eq!(expanded_selections(&small, 2000), 5);
        let cycle =
            async_graphql::parser::parse_query("{ ...A } fragment A on Q { ...B ...B } fragment B on Q { ...A ...A }")
                .unwrap();
        assert_eq!(expanded_selections(&cycle, 2000), 2001, "a fragment cycle is refused outright");
    }

    fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn nesting_is_measured_without_parsing() {
        assert_eq!(nesting_depth("{ a { b(x: [1, {y: 2}]) } }", 100), 5);
        assert_eq!(nesting_depth("", 100), 0);
        // Brackets in strings, block strings and comments are not structure.
        assert_eq!(nesting_depth(r#"{ a(s: "{[(\"{") }"#, 100), 2);
        assert_eq!(nesting_depth("{ a(s: \"\"\"{[ \\\"\"\" ((\"\"\") } # {{{{\n", 100), 2);
        assert_eq!(nesting_depth("{ a(s: \"\") { b { c } } }", 100), 3, "an empty string is not a block string");
        // The finding: 5,000 nested list literals, ~10 KB, without a token.
        let bomb = format!("{{ __type(name: {}) {{ name }} }}", nested("[", "\"Query\"", "]", 5_000));
        let started = Instant::now();
        assert_eq!(nesting_depth(&bomb, MAX_NESTING), MAX_NESTING + 1);
        assert!(within_nesting(&bomb).unwrap_err().contains("nests more than 64"));
        assert!(started.elapsed() < Duration::from_millis(50));
        // Every way to nest counts.
        for (open, close) in [("{ a ", "}"), ("[", "]"), ("{a: ", "}"), ("(", ")")] {
            let doc = nested(open, "1", close, MAX_NESTING + 1);
            assert!(within_nesting(&doc).is_err(), "{open}");
            assert!(within_nesting(&nested(open, "1", close, MAX_NESTING)).is_ok(), "{open}");
        }
        // A string swallowing the rest of a line cannot hide brackets on the next one.
        let hidden = format!("{{ a(s: \"x\n{}) }}", nested("[", "1", "]", 100));
        assert!(nesting_depth(&hidden, 1_000) < 100, "an unterminated string stops the count; the parser refuses it");
    }

    #[test]
    fn a_document_at_the_nesting_limit_parses_on_a_small_stack() {
        // What the limit must guarantee in a debug build: the parser survives the deepest document let in,
        // on a worker thread's default stack (2 MiB), in each way a document nests.
        let docs = [
            format!("{{ __type(name: {}) {{ name }} }}", nested("[", "\"Query\"", "]", MAX_NESTING - 3)),
            format!("{{ a(o: {}) }}", nested("{x: ", "1", "}", MAX_NESTING - 2)),
            nested("{ a ", "b", "}", MAX_NESTING),
            format!("query($v: {}) {{ a }}", nested("[", "Int", "]", MAX_NESTING - 2)),
        ];
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                for doc in docs {
                    assert!(within_nesting(&doc).is_ok(), "{doc}");
                    let _ = async_graphql::parser::parse_query(&doc);
                }
            })
            .unwrap()
            .join()
            .expect("parsing at the limit must not overflow the stack");
    }
}
