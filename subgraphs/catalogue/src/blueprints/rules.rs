//! The validation rules that need nothing but the definition: its structure, and what it refers to (module
//! names, agent and skill keys, planned dependencies) for the rules that look those up. Also the cycle search
//! over planned and existing edges, and the parse the context-map projection reads a validated definition with.
//!
//! Every finding carries a JSON path into the definition (`$.contexts[1].aggregates[0].name`); a problem
//! found here is a finding, never an error, so a run always records what is wrong with a draft.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::{RelationshipKind, Severity};
use crate::ids::ModuleId;

/// The definition's shape (unknown keys, types, names, duplicates).
pub const STRUCTURE: &str = "structure";
/// Module names must be modules of the blueprint's project.
pub const MODULE_REFERENCE: &str = "module-reference";
/// Agent keys must have a published version the tenant can use.
pub const AGENT_REFERENCE: &str = "agent-reference";
/// Skill keys must have a published version the tenant can use.
pub const SKILL_REFERENCE: &str = "skill-reference";
/// Planned dependencies, together with the existing edges, must stay acyclic.
pub const DEPENDENCY_CYCLE: &str = "dependency-cycle";
/// A planned dependency's range should accept the dependency's current version.
pub const DEPENDENCY_CONSTRAINT: &str = "dependency-constraint";
/// Relationships must join two declared contexts with a known kind.
pub const RELATIONSHIP: &str = "relationship";

/// The definition's top-level keys.
pub const KEYS: [&str; 6] = ["modules", "dependencies", "agents", "skills", "contexts", "relationships"];
/// Longest context, aggregate or entity name.
pub const MAX_NAME_CHARS: usize = 128;

/// One finding of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    /// JSON path into the definition.
    pub location: String,
}

/// A dependency the definition plans (well-formed ones only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedDependency {
    /// Its index in `$.dependencies`.
    pub index: usize,
    pub from: String,
    pub to: String,
    pub version_constraint: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextDef {
    pub name: String,
    pub modules: Vec<String>,
    pub aggregates: Vec<AggregateDef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateDef {
    pub name: String,
    pub entities: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationshipDef {
    pub upstream: String,
    pub downstream: String,
    pub kind: RelationshipKind,
}

/// What the structural rules found, and what the definition refers to (each reference with its location).
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub findings: Vec<Finding>,
    pub module_refs: Vec<(String, String)>,
    pub agent_refs: Vec<(String, String)>,
    pub skill_refs: Vec<(String, String)>,
    pub dependencies: Vec<PlannedDependency>,
    pub contexts: Vec<ContextDef>,
    pub relationships: Vec<RelationshipDef>,
}

impl Parsed {
    fn push(&mut self, rule: &'static str, severity: Severity, location: &str, message: impl Into<String>) {
        self.findings.push(Finding { rule, severity, message: message.into(), location: location.to_owned() });
    }

    fn error(&mut self, rule: &'static str, location: &str, message: impl Into<String>) {
        self.push(rule, Severity::Error, location, message);
    }

    fn warning(&mut self, rule: &'static str, location: &str, message: impl Into<String>) {
        self.push(rule, Severity::Warning, location, message);
    }

    fn info(&mut self, rule: &'static str, location: &str, message: impl Into<String>) {
        self.push(rule, Severity::Info, location, message);
    }

    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// `parent.key`, or `parent['key']` for a key that is not a plain identifier.
pub fn key_path(parent: &str, key: &str) -> String {
    let plain = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}['{}']", key.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

fn shown(s: &str) -> String {
    kernel::error::clip(s, 60)
}

/// `obj[key]` as an array (missing: empty; anything else: an error and empty).
fn array<'a>(p: &mut Parsed, obj: &'a Map<String, Value>, key: &str, at: &str) -> &'a [Value] {
    match obj.get(key) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            p.error(STRUCTURE, &key_path(at, key), format!("`{key}` must be an array"));
            &[]
        }
    }
}

/// A name: a non-empty string of at most [`MAX_NAME_CHARS`] characters without control characters.
fn name(p: &mut Parsed, v: Option<&Value>, at: &str, what: &str) -> Option<String> {
    match v {
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                p.error(STRUCTURE, at, format!("{what} must not be empty"));
                None
            } else if s.chars().count() > MAX_NAME_CHARS || s.chars().any(char::is_control) {
                p.error(
                    STRUCTURE,
                    at,
                    format!("{what} must be at most {MAX_NAME_CHARS} characters without control characters"),
                );
                None
            } else {
                Some(s.to_owned())
            }
        }
        None | Some(Value::Null) => {
            p.error(STRUCTURE, at, format!("{what} is required"));
            None
        }
        Some(_) => {
            p.error(STRUCTURE, at, format!("{what} must be a string"));
            None
        }
    }
}

/// The names of an array of strings, each with its location; duplicates reported with `severity`.
fn names(p: &mut Parsed, items: &[Value], at: &str, what: &str, duplicate: Severity) -> Vec<(String, String)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let loc = format!("{at}[{i}]");
        let Some(n) = name(p, Some(v), &loc, what) else { continue };
        if !seen.insert(n.clone()) {
            p.push(STRUCTURE, duplicate, &loc, format!("{what} `{}` is listed twice", shown(&n)));
            continue;
        }
        out.push((n, loc));
    }
    out
}

/// Runs the structural rules over a definition and collects what it refers to: every problem is
/// reported with its JSON path, and what is well formed is kept for the checks against the catalogue.
/// One function per section, in the order they are read.
pub fn parse(def: &Value) -> Parsed {
    let mut p = Parsed::default();
    let Some(obj) = def.as_object() else {
        p.error(STRUCTURE, "$", "the definition must be a JSON object");
        return p;
    };
    unknown_keys(&mut p, obj);
    let listed = listed(&mut p, obj);
    dependencies(&mut p, obj);
    contexts(&mut p, obj, &listed);
    relationships(&mut p, obj);
    p
}

/// Keys the definition format does not know: warned about, ignored.
fn unknown_keys(p: &mut Parsed, obj: &Map<String, Value>) {
    for k in obj.keys() {
        if !KEYS.contains(&k.as_str()) {
            p.warning(
                STRUCTURE,
                &key_path("$", k),
                format!("unknown key `{}` is ignored (known: {})", shown(k), KEYS.join(", ")),
            );
        }
    }
}

/// `modules`, `agents` and `skills`: the names the definition lists. Returns the modules listed.
fn listed(p: &mut Parsed, obj: &Map<String, Value>) -> Vec<(String, String)> {
    let items = array(p, obj, "modules", "$");
    let listed = names(p, items, "$.modules", "a module name", Severity::Warning);
    p.module_refs.extend(listed.iter().cloned());
    let items = array(p, obj, "agents", "$");
    p.agent_refs = names(p, items, "$.agents", "an agent key", Severity::Warning);
    let items = array(p, obj, "skills", "$");
    p.skill_refs = names(p, items, "$.skills", "a skill key", Severity::Warning);
    listed
}

/// `dependencies`: the planned edges between modules.
fn dependencies(p: &mut Parsed, obj: &Map<String, Value>) {
    for (i, d) in array(p, obj, "dependencies", "$").iter().enumerate() {
        let at = format!("$.dependencies[{i}]");
        let Some(d) = d.as_object() else {
            p.error(STRUCTURE, &at, "a dependency must be an object {from, to, versionConstraint}");
            continue;
        };
        let from = name(p, d.get("from"), &format!("{at}.from"), "`from`");
        let to = name(p, d.get("to"), &format!("{at}.to"), "`to`");
        let constraint = match d.get("versionConstraint") {
            None | Some(Value::Null) => Some("*".to_owned()),
            Some(Value::String(s)) if semver::VersionReq::parse(s.trim()).is_ok() => Some(s.trim().to_owned()),
            Some(other) => {
                let s = other.as_str().map(shown).unwrap_or_else(|| other.to_string());
                p.error(STRUCTURE, &format!("{at}.versionConstraint"), format!("`{s}` is not a semver range"));
                None
            }
        };
        if let Some(f) = &from {
            p.module_refs.push((f.clone(), format!("{at}.from")));
        }
        if let Some(t) = &to {
            p.module_refs.push((t.clone(), format!("{at}.to")));
        }
        match (from, to, constraint) {
            (Some(f), Some(t), _) if f == t => {
                p.error(DEPENDENCY_CYCLE, &at, format!("module `{}` cannot depend on itself", shown(&f)));
            }
            (Some(from), Some(to), Some(version_constraint)) => {
                if p.dependencies.iter().any(|o| o.from == from && o.to == to) {
                    p.warning(STRUCTURE, &at, format!("`{}` → `{}` is planned twice", shown(&from), shown(&to)));
                } else {
                    p.dependencies.push(PlannedDependency { index: i, from, to, version_constraint });
                }
            }
            _ => {}
        }
    }
}

/// `contexts`: bounded contexts, their modules and aggregates (checked against the modules `listed`).
fn contexts(p: &mut Parsed, obj: &Map<String, Value>, listed: &[(String, String)]) {
    let contexts = array(p, obj, "contexts", "$");
    if contexts.is_empty() {
        p.info(STRUCTURE, "$.contexts", "no bounded contexts: the context map will be empty");
    }
    let mut in_contexts: HashSet<String> = HashSet::new();
    for (i, c) in contexts.iter().enumerate() {
        let at = format!("$.contexts[{i}]");
        let Some(c) = c.as_object() else {
            p.error(STRUCTURE, &at, "a context must be an object {name, modules, aggregates}");
            continue;
        };
        let cname = name(p, c.get("name"), &format!("{at}.name"), "a context name");
        if let Some(n) = &cname {
            if p.contexts.iter().any(|o| &o.name == n) {
                p.error(STRUCTURE, &format!("{at}.name"), format!("context `{}` is declared twice", shown(n)));
            }
        }
        let items = array(p, c, "modules", &at);
        let modules = names(p, items, &format!("{at}.modules"), "a module name", Severity::Warning);
        for (m, loc) in &modules {
            in_contexts.insert(m.clone());
            if !listed.is_empty() && !listed.iter().any(|(l, _)| l == m) {
                p.warning(STRUCTURE, loc, format!("module `{}` is not listed in $.modules", shown(m)));
            }
        }
        p.module_refs.extend(modules.iter().cloned());
        let mut aggregates: Vec<AggregateDef> = Vec::new();
        let items = array(p, c, "aggregates", &at);
        if items.is_empty() {
            p.info(STRUCTURE, &format!("{at}.aggregates"), "the context declares no aggregates");
        }
        for (j, a) in items.iter().enumerate() {
            let aat = format!("{at}.aggregates[{j}]");
            let Some(a) = a.as_object() else {
                p.error(STRUCTURE, &aat, "an aggregate must be an object {name, entities}");
                continue;
            };
            let Some(aname) = name(p, a.get("name"), &format!("{aat}.name"), "an aggregate name") else {
                continue;
            };
            if aggregates.iter().any(|o| o.name == aname) {
                p.error(
                    STRUCTURE,
                    &format!("{aat}.name"),
                    format!("aggregate `{}` is declared twice in this context", shown(&aname)),
                );
                continue;
            }
            let items = array(p, a, "entities", &aat);
            let entities = names(p, items, &format!("{aat}.entities"), "an entity name", Severity::Warning);
            aggregates.push(AggregateDef { name: aname, entities: entities.into_iter().map(|(n, _)| n).collect() });
        }
        if let Some(n) = cname.filter(|n| !p.contexts.iter().any(|o| &o.name == n)) {
            p.contexts.push(ContextDef { name: n, modules: modules.into_iter().map(|(m, _)| m).collect(), aggregates });
        }
    }
    if !p.contexts.is_empty() {
        for (m, loc) in listed {
            if !in_contexts.contains(m) {
                p.info(STRUCTURE, loc, format!("module `{}` belongs to no context", shown(m)));
            }
        }
    }
}

/// `relationships`: how declared contexts relate.
fn relationships(p: &mut Parsed, obj: &Map<String, Value>) {
    for (i, r) in array(p, obj, "relationships", "$").iter().enumerate() {
        let at = format!("$.relationships[{i}]");
        let Some(r) = r.as_object() else {
            p.error(STRUCTURE, &at, "a relationship must be an object {upstream, downstream, kind}");
            continue;
        };
        let side = |p: &mut Parsed, key: &str| {
            let loc = format!("{at}.{key}");
            let n = name(p, r.get(key), &loc, &format!("`{key}`"))?;
            if p.contexts.iter().any(|c| c.name == n) {
                Some(n)
            } else {
                p.error(RELATIONSHIP, &loc, format!("no context `{}` is declared in $.contexts", shown(&n)));
                None
            }
        };
        let upstream = side(p, "upstream");
        let downstream = side(p, "downstream");
        let kind = match r.get("kind") {
            Some(Value::String(s)) => match RelationshipKind::parse_loose(s) {
                Some(k) => Some(k),
                None => {
                    p.error(
                        RELATIONSHIP,
                        &format!("{at}.kind"),
                        format!("`{}` is not a relationship kind (one of {})", shown(s), RelationshipKind::NAMES),
                    );
                    None
                }
            },
            _ => {
                p.error(RELATIONSHIP, &format!("{at}.kind"), "`kind` is required: a relationship kind string");
                None
            }
        };
        let (Some(upstream), Some(downstream), Some(kind)) = (upstream, downstream, kind) else { continue };
        if upstream == downstream {
            p.error(RELATIONSHIP, &at, "a relationship joins two different contexts");
            continue;
        }
        let rel = RelationshipDef { upstream, downstream, kind };
        if p.relationships.contains(&rel) {
            p.warning(RELATIONSHIP, &at, "this relationship is declared twice");
            continue;
        }
        p.relationships.push(rel);
    }
}

/// For a planned edge `from → to`, a path `to ⇝ from` over `edges` (planned and existing), if there is one:
/// the cycle the edge would close, as `from, to, …, from`.
pub fn cycle_through(from: ModuleId, to: ModuleId, edges: &HashMap<ModuleId, Vec<ModuleId>>) -> Option<Vec<ModuleId>> {
    let mut parent: HashMap<ModuleId, ModuleId> = HashMap::new();
    let mut queue = VecDeque::from([to]);
    let mut seen = HashSet::from([to]);
    while let Some(at) = queue.pop_front() {
        if at == from {
            let mut back = vec![from];
            let mut n = from;
            while n != to {
                n = parent[&n];
                back.push(n);
            }
            back.reverse();
            let mut cycle = vec![from];
            cycle.extend(back);
            return Some(cycle);
        }
        for next in edges.get(&at).into_iter().flatten() {
            if seen.insert(*next) {
                parent.insert(*next, at);
                queue.push_back(*next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(p: &Parsed, rule: &str) -> Vec<(Severity, String)> {
        p.findings.iter().filter(|f| f.rule == rule).map(|f| (f.severity, f.location.clone())).collect()
    }

    #[test]
    fn a_well_formed_definition_has_no_errors() {
        let p = parse(&json!({
            "modules": ["billing", "ledger"],
            "dependencies": [{ "from": "billing", "to": "ledger", "versionConstraint": "^1" }],
            "contexts": [
                { "name": "Billing", "modules": ["billing"], "aggregates": [{ "name": "Invoice", "entities": ["Line"] }] },
                { "name": "Ledger", "modules": ["ledger"], "aggregates": [{ "name": "Account" }] }
            ],
            "relationships": [{ "upstream": "Ledger", "downstream": "Billing", "kind": "customer-supplier" }]
        }));
        assert!(!p.has_errors(), "{:?}", p.findings);
        assert_eq!(p.contexts.len(), 2);
        assert_eq!(p.contexts[0].aggregates[0].entities, vec!["Line"]);
        assert_eq!(p.relationships[0].kind, RelationshipKind::CustomerSupplier);
        assert_eq!(p.dependencies[0].version_constraint, "^1");
        let refs: Vec<&str> = p.module_refs.iter().map(|(_, l)| l.as_str()).collect();
        assert!(refs.contains(&"$.dependencies[0].to") && refs.contains(&"$.contexts[1].modules[0]"));
    }

    #[test]
    fn structural_problems_are_findings_with_locations() {
        let p = parse(&json!({
            "modules": "billing",
            "extra": 1,
            "dependencies": [{ "from": "a", "to": "a" }, { "from": "a", "to": "b", "versionConstraint": "nope" }],
            "contexts": [
                { "name": "A", "aggregates": [{ "name": "" }, { "name": "X" }, { "name": "X" }] },
                { "name": "A" },
                7
            ],
            "relationships": [{ "upstream": "A", "downstream": "Z", "kind": "friends" }]
        }));
        let s = at(&p, STRUCTURE);
        for loc in [
            "$.modules",
            "$.dependencies[1].versionConstraint",
            "$.contexts[0].aggregates[0].name",
            "$.contexts[0].aggregates[2].name",
            "$.contexts[1].name",
            "$.contexts[2]",
        ] {
            assert!(s.contains(&(Severity::Error, loc.to_owned())), "{loc}: {s:?}");
        }
        assert!(s.contains(&(Severity::Warning, "$.extra".to_owned())));
        assert_eq!(at(&p, DEPENDENCY_CYCLE), vec![(Severity::Error, "$.dependencies[0]".to_owned())]);
        let r = at(&p, RELATIONSHIP);
        assert!(r.contains(&(Severity::Error, "$.relationships[0].downstream".to_owned())));
        assert!(r.contains(&(Severity::Error, "$.relationships[0].kind".to_owned())));
        assert!(parse(&json!([1])).has_errors());
    }

    #[test]
    fn odd_keys_get_bracketed_paths() {
        assert_eq!(key_path("$", "modules"), "$.modules");
        assert_eq!(key_path("$", "a b'c"), "$['a b\\'c']");
    }

    #[test]
    fn cycles_through_planned_edges_are_found() {
        let [a, b, c, d] = [ModuleId::new_v7(), ModuleId::new_v7(), ModuleId::new_v7(), ModuleId::new_v7()];
        // Existing b → c → a; planned a → b closes a → b → c → a.
        let edges = HashMap::from([(b, vec![c]), (c, vec![a, d]), (a, vec![b])]);
        assert_eq!(cycle_through(a, b, &edges), Some(vec![a, b, c, a]));
        let edges = HashMap::from([(b, vec![c]), (c, vec![d])]);
        assert_eq!(cycle_through(a, b, &edges), None);
    }
}
