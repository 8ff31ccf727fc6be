//! The dependency graph: edges module → module ("depends on") with a semver range, kept acyclic.
//!
//! **A topological order, kept incrementally.** Every module has a `build_rank` (table `module_ranks`, beside
//! `modules` so that moving a module rewrites one narrow row, not the wide one), unique in its tenant, with
//! `rank(b) < rank(a)` for every edge a → b. Adding a → b when `rank(b) < rank(a)` cannot close a cycle and
//! changes nothing else — no search at all (a new module takes the next rank, so depending on a module
//! registered earlier is always this case). Otherwise only modules ranked between the two ends can matter
//! (Pearce and Kelly, "A dynamic topological sort algorithm for directed acyclic graphs", 2006): the
//! dependents of `a` ranked up to `rank(b)` (reaching `b` there is the cycle), and what `b` depends on ranked
//! from `rank(a)`; the second set is moved below the first, both keeping their inner order and together
//! reusing exactly the ranks they held ([`reorder`]). Nothing outside that window is read or written.
//! Removing an edge leaves the order valid. A level that had to stay the *longest* chain below each module —
//! this module's first design — made a low-to-high edge raise everything above its source, up to the whole
//! tenant (BENCHMARKS.md). Build stages are computed when read ([`stages`]).
//!
//! **Serialization.** Every change to a tenant's graph takes a transaction-scoped advisory lock on the
//! tenant, so two concurrent inserts that would together close a cycle are checked one after the other and
//! exactly one is refused.
//!
//! **Traversals** that must stop at a target or report each module's depth and parent (the cycle search,
//! transitive queries, impact analysis) are breadth-first over the edge indexes (`(tenant, from)` and
//! `(tenant, to)`), one statement per layer, each module visited once and only what is reached ever read —
//! never the whole graph per request. The engine is the kernel's (`kernel::graph`, which lineage's graph
//! uses too); `store.rs` gives it the edges a layer at a time. A recursive CTE was measured first and lost there: its `UNION` drops
//! only whole rows already produced, so carrying (module, parent, depth) keeps every combination it meets —
//! up to 405,000 rows for 19,500 modules in the benchmark's graph, 7× slower at the median and 35× at p99
//! (BENCHMARKS.md) — and the one measured read its whole window before a cycle check could stop (refused
//! cycles up to 291 ms). Where neither is needed (what the new edge's target depends on inside a reorder's
//! window), one recursive statement over (module, rank) is used: each module is then one row, expanded
//! once, without a round trip per layer.

pub mod schema;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, SimpleObject};
use kernel::graph::walk_back;
use kernel::{Error, Result, TenantId, Work};

use crate::events;
use crate::ids::ModuleId;
use crate::modules::Module;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[graphql(name = "DependencyDirection")]
pub enum Direction {
    /// What a module depends on.
    Dependencies,
    /// What depends on a module.
    Dependents,
}

/// One edge as stored.
#[derive(Clone, Debug)]
pub struct Edge {
    pub from: ModuleId,
    pub to: ModuleId,
    pub version_constraint: String,
}

/// A direct dependency (or dependent) of a module.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Dependency {
    #[graphql(skip)]
    pub other: ModuleId,
    /// The semver range the dependent accepts.
    pub version_constraint: String,
    #[graphql(skip)]
    pub dependency_version: Option<String>,
}

#[ComplexObject]
impl Dependency {
    /// Whether the dependency's current version is in the range.
    async fn satisfied(&self) -> bool {
        self.dependency_version.as_deref().is_some_and(|v| satisfies(&self.version_constraint, v))
    }

    /// The module on the other end of the edge.
    async fn module(&self, ctx: &Context<'_>) -> Result<Option<Module>> {
        Ok(crate::loaders::loader(ctx)?.load_one(crate::modules::schema::ModuleById(self.other)).await?)
    }
}

/// A module reached by a transitive query, with how it was reached.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Reached {
    #[graphql(skip)]
    pub module_id: ModuleId,
    /// Edges from the start (1: direct).
    pub depth: i32,
    /// The search's tree (each module reached and the module it was first reached from), shared by every
    /// module of one answer; a path is walked only when asked for.
    #[graphql(skip)]
    pub tree: Arc<Tree>,
}

/// Where a traversal started and, for each module it reached, the module it was first reached from.
#[derive(Debug)]
pub struct Tree {
    pub start: ModuleId,
    pub parent: HashMap<ModuleId, ModuleId>,
}

#[ComplexObject]
impl Reached {
    /// The module's id (without loading the module).
    async fn module_id(&self) -> async_graphql::ID {
        async_graphql::ID(self.module_id.to_string())
    }

    /// Module ids from the start to this module (both included), along a shortest path.
    async fn path(&self) -> Vec<async_graphql::ID> {
        walk_back(&self.tree.parent, &self.tree.start, &self.module_id)
            .into_iter()
            .map(|id| async_graphql::ID(id.to_string()))
            .collect()
    }

    async fn module(&self, ctx: &Context<'_>) -> Result<Option<Module>> {
        Ok(crate::loaders::loader(ctx)?.load_one(crate::modules::schema::ModuleById(self.module_id)).await?)
    }
}

/// The modules a traversal from `start` reached, as its (node, parent, depth) rows (each along a shortest
/// path), in (depth, id) order.
pub fn reached(start: ModuleId, rows: Vec<(ModuleId, ModuleId, i32)>) -> Vec<Reached> {
    let tree = Arc::new(Tree { start, parent: rows.iter().map(|&(n, p, _)| (n, p)).collect() });
    let mut out: Vec<Reached> =
        rows.into_iter().map(|(module_id, _, depth)| Reached { module_id, depth, tree: tree.clone() }).collect();
    out.sort_unstable_by_key(|r| (r.depth, r.module_id));
    out
}

/// Adds `from → to` (both the tenant's; the caller holds the tenant's graph lock, taken before it read the
/// modules, and checked `from`'s project is writable). `CONFLICT` with the cycle's path (module ids and
/// names) in `extensions.cycle` when the edge would close one.
pub async fn add(
    work: &mut Work,
    lock: &store::GraphLock,
    tenant: &TenantId,
    from: &Module,
    to: &Module,
    constraint: &str,
) -> Result<Edge> {
    if from.module_id == to.module_id {
        return Err(cycle_error(vec![from.clone(), from.clone()]));
    }
    if let Placement::Cycle(ids) = place(work, lock, tenant, from.module_id, to.module_id).await? {
        let named = store::names(work, tenant, &ids).await?;
        return Err(cycle_error_named(&ids, &named));
    }
    let edge = store::insert_edge(work, tenant, from.module_id, to.module_id, constraint).await?;
    let event = events::DependencyAdded {
        from_module_id: from.module_id,
        to_module_id: to.module_id,
        project_id: from.project_id,
        version_constraint: constraint.to_owned(),
    };
    work.emit(tenant, &event).await?;
    Ok(edge)
}

/// What adding an edge did to the order.
#[derive(Debug, PartialEq, Eq)]
pub enum Placement {
    /// The edge agrees with the order: nothing searched, nothing moved.
    InOrder,
    /// It did not: `searched` modules inside the window were reached, `moved` of them took new ranks.
    Reordered { searched: usize, moved: usize },
    /// It would close this cycle: module ids `from → to ⇝ from`. Nothing changed.
    Cycle(Vec<ModuleId>),
}

/// Makes room in the order for a new edge `from → to`, or finds the cycle it would close, under the
/// tenant's graph lock; the edge itself is the caller's to insert.
pub async fn place(
    tx: &mut kernel::db::Tx,
    _lock: &store::GraphLock,
    tenant: &TenantId,
    from: ModuleId,
    to: ModuleId,
) -> Result<Placement> {
    let ranks = store::ranks(tx, tenant, &[from, to]).await?;
    let (Some(&rf), Some(&rt)) = (ranks.get(&from), ranks.get(&to)) else {
        return Err(Error::not_found("no such module"));
    };
    if rt < rf {
        return Ok(Placement::InOrder);
    }
    // What depends on `from`, up to `to`'s rank; reaching `to` means it depends on `from` already.
    let forward = store::dependents_until(tx, tenant, (from, rf), (rf, rt), to).await?;
    if forward.reached_target {
        // The path found runs from ⇝ to along "is depended on by"; reversed, it is to ⇝ from.
        let back = walk_back(&forward.parent, &from, &to);
        return Ok(Placement::Cycle(std::iter::once(from).chain(back.into_iter().rev()).collect()));
    }
    let backward = store::dependencies_within(tx, tenant, (to, rt), (rf, rt)).await?;
    let searched = forward.modules.len() + backward.len();
    let moved = reorder(backward, forward.modules).ok_or_else(|| {
        Error::internal(anyhow::anyhow!("the build order of `{tenant}` is inconsistent around {from} → {to}"))
    })?;
    store::set_ranks(tx, tenant, &moved).await?;
    Ok(Placement::Reordered { searched, moved: moved.len() })
}

/// Pearce–Kelly's reassignment after an edge a → b against the order: `backward` (b and what it depends on
/// inside the window) must rank below `forward` (a and what depends on it inside the window). Each keeps its
/// inner order, and together they take exactly the ranks they held, so nothing outside moves. Returns the
/// modules whose rank changes — or `None` if the ranks held are not distinct (the two sets overlap only if
/// a cycle was missed): ranks stay unique only by this permutation, as no index checks them.
pub fn reorder(mut backward: Vec<(ModuleId, i64)>, mut forward: Vec<(ModuleId, i64)>) -> Option<Vec<(ModuleId, i64)>> {
    backward.sort_unstable_by_key(|&(_, rank)| rank);
    forward.sort_unstable_by_key(|&(_, rank)| rank);
    let mut pool: Vec<i64> = backward.iter().chain(&forward).map(|&(_, rank)| rank).collect();
    pool.sort_unstable();
    if pool.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    Some(
        backward
            .into_iter()
            .chain(forward)
            .zip(pool)
            .filter(|((_, old), new)| old != new)
            .map(|((id, _), new)| (id, new))
            .collect(),
    )
}

/// A project's modules (in the tenant's topological order) grouped into build stages: a module's stage is
/// one more than the highest stage of what it depends on inside the project (0 for none), so each stage
/// builds in parallel once the earlier ones are built; dependencies on other projects' modules are those
/// projects' builds. Stages are ordered by name within.
pub fn stages(modules: Vec<Module>, edges: &[(ModuleId, ModuleId)]) -> Vec<Vec<Module>> {
    let mut deps: HashMap<ModuleId, Vec<ModuleId>> = HashMap::new();
    for &(from, to) in edges {
        deps.entry(from).or_default().push(to);
    }
    let mut stage_of: HashMap<ModuleId, usize> = HashMap::with_capacity(modules.len());
    let mut stages: Vec<Vec<Module>> = Vec::new();
    for m in modules {
        // In rank order every dependency comes first, so its stage is known.
        let stage = deps
            .get(&m.module_id)
            .into_iter()
            .flatten()
            .filter_map(|d| stage_of.get(d))
            .map(|s| s + 1)
            .max()
            .unwrap_or(0);
        stage_of.insert(m.module_id, stage);
        if stages.len() <= stage {
            stages.resize_with(stage + 1, Vec::new);
        }
        stages[stage].push(m);
    }
    for s in &mut stages {
        s.sort_by(|a, b| a.name.cmp(&b.name).then(a.module_id.cmp(&b.module_id)));
    }
    stages
}

fn cycle_error(modules: Vec<Module>) -> Error {
    let ids: Vec<ModuleId> = modules.iter().map(|m| m.module_id).collect();
    let named: HashMap<ModuleId, String> = modules.into_iter().map(|m| (m.module_id, m.name)).collect();
    cycle_error_named(&ids, &named)
}

fn cycle_error_named(ids: &[ModuleId], names: &HashMap<ModuleId, String>) -> Error {
    let name = |id: &ModuleId| names.get(id).cloned();
    let shown: Vec<String> = ids.iter().map(|id| name(id).unwrap_or_else(|| id.to_string())).collect();
    let path: Vec<serde_json::Value> =
        ids.iter().map(|id| serde_json::json!({ "id": id, "name": name(id).unwrap_or_default() })).collect();
    Error::conflict(format!("this dependency would close a cycle: {}", shown.join(" → "))).with("cycle", path)
}

/// Whether `version` satisfies `constraint` (unparsable either way counts as not satisfied).
pub fn satisfies(constraint: &str, version: &str) -> bool {
    match (semver::VersionReq::parse(constraint), semver::Version::parse(version)) {
        (Ok(req), Ok(v)) => req.matches(&v),
        _ => false,
    }
}

/// A semver range from the API.
pub fn constraint(raw: &str) -> Result<String> {
    let s = raw.trim();
    semver::VersionReq::parse(s).map(|_| s.to_owned()).map_err(|e| {
        Error::bad_input("versionConstraint", format!("`{}` is not a semver range: {e}", kernel::error::clip(s, 60)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_walked_back_through_parents() {
        let [a, b, c, d] = [ModuleId::new_v7(), ModuleId::new_v7(), ModuleId::new_v7(), ModuleId::new_v7()];
        // A search from b found c and d (parent b), then a (parent c).
        let parent: HashMap<ModuleId, ModuleId> = [(c, b), (d, b), (a, c)].into_iter().collect();
        assert_eq!(walk_back(&parent, &b, &a), vec![b, c, a]);
        assert_eq!(walk_back(&parent, &b, &b), vec![b]);
    }

    #[test]
    fn transitive_paths_follow_shortest_parents() {
        let [s, x, y, z] = [ModuleId::new_v7(), ModuleId::new_v7(), ModuleId::new_v7(), ModuleId::new_v7()];
        let out = reached(s, vec![(z, y, 2), (x, s, 1), (y, s, 1)]);
        let z = out.iter().find(|r| r.module_id == z).unwrap();
        assert_eq!(walk_back(&z.tree.parent, &s, &z.module_id), vec![s, y, z.module_id]);
        assert_eq!(out.iter().map(|r| r.depth).collect::<Vec<_>>(), vec![1, 1, 2], "nearest first");
    }

    #[test]
    fn a_reorder_moves_the_backward_region_below_the_forward_one_within_their_own_ranks() {
        let [a, x, b, y] = [ModuleId::new_v7(), ModuleId::new_v7(), ModuleId::new_v7(), ModuleId::new_v7()];
        // a (3) depends on nothing yet, x (5) depends on a; b (7) depends on y (4). Adding a → b:
        let moved = reorder(vec![(b, 7), (y, 4)], vec![(a, 3), (x, 5)]).unwrap();
        let ranks: HashMap<ModuleId, i64> = [(a, 3), (x, 5), (b, 7), (y, 4)].into_iter().chain(moved).collect();
        assert!(ranks[&y] < ranks[&b] && ranks[&b] < ranks[&a] && ranks[&a] < ranks[&x]);
        let mut used: Vec<i64> = ranks.values().copied().collect();
        used.sort_unstable();
        assert_eq!(used, vec![3, 4, 5, 7], "the same ranks, reused");
        assert!(reorder(vec![(b, 1)], vec![(a, 2)]).unwrap().is_empty(), "nothing moves when already in order");
        assert_eq!(reorder(vec![(b, 4)], vec![(a, 4)]), None, "ranks held twice are refused, not permuted");
    }

    #[test]
    fn constraints_are_semver_ranges() {
        assert!(constraint("^1.2").is_ok() && constraint(">=1, <2").is_ok());
        assert!(constraint("not a range").is_err());
        assert!(satisfies("^1.2", "1.4.0") && !satisfies("^1.2", "2.0.0"));
    }
}
