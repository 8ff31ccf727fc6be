//! Breadth-first traversal over a graph kept in SQL — catalogue's dependency graph and lineage's graph
//! use this one engine, each with its own node type and edge source.
//!
//! The search asks its [`EdgeSource`] for one **layer** at a time: the edges leaving the current frontier,
//! in one SQL statement over an index on the edge's near end (`(tenant, from)` or `(tenant, to)`). Each
//! node is visited once — the first layer that reaches it — with the least of its parents in that layer, so
//! the tree, and every path reported from it, is the same however PostgreSQL returned the rows. Only what
//! is reached is ever read: never the whole graph, nothing cached per tenant. The search stops at a depth
//! limit, at a node limit (`truncated`), or at a target. Cycles cost nothing: a node seen is never
//! expanded again.
//!
//! A recursive CTE was measured against this for catalogue and lost: its `UNION` drops only whole rows
//! already produced, so carrying (node, parent, depth) keeps every combination it meets — many times the
//! rows of the answer in a dense graph (BENCHMARKS.md).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;

use crate::Result;

/// Where a traversal's edges come from: one statement per layer.
pub trait EdgeSource {
    type Node: Clone + Eq + Hash + Ord + Send + Sync;

    /// The edges leaving `frontier` in the traversal's direction, as (node reached, node of the frontier
    /// it was reached from), in any order, duplicates allowed.
    fn layer(&mut self, frontier: &[Self::Node]) -> impl Future<Output = Result<Vec<(Self::Node, Self::Node)>>> + Send;
}

/// How far a traversal goes.
#[derive(Clone, Debug)]
pub struct Bounds<N> {
    /// Most edges from the start (at least 1).
    pub max_depth: u32,
    /// Most nodes reached; one more found makes the answer `truncated`.
    pub max_nodes: usize,
    /// Stop as soon as this node is reached.
    pub target: Option<N>,
}

impl<N> Bounds<N> {
    pub fn new(max_depth: u32, max_nodes: usize) -> Self {
        Self { max_depth, max_nodes, target: None }
    }
}

/// One node reached: its parent along a shortest path, and its depth (edges from the start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop<N> {
    pub node: N,
    pub parent: N,
    pub depth: u32,
}

/// What a traversal reached, nearest first (within a depth, in node order).
#[derive(Clone, Debug)]
pub struct Reach<N> {
    pub start: N,
    pub hops: Vec<Hop<N>>,
    /// More nodes lay within the bounds than `max_nodes`.
    pub truncated: bool,
    /// The search met its target.
    pub reached_target: bool,
}

impl<N: Clone + Eq + Hash> Reach<N> {
    /// Each reached node's parent.
    pub fn parents(&self) -> HashMap<N, N> {
        self.hops.iter().map(|h| (h.node.clone(), h.parent.clone())).collect()
    }
}

/// Everything `start` reaches within `bounds`, breadth-first (see the module's documentation).
pub async fn breadth_first<S: EdgeSource>(
    source: &mut S,
    start: S::Node,
    bounds: &Bounds<S::Node>,
) -> Result<Reach<S::Node>> {
    let mut reach = Reach { start: start.clone(), hops: Vec::new(), truncated: false, reached_target: false };
    let mut seen: HashSet<S::Node> = std::iter::once(start.clone()).collect();
    let mut frontier = vec![start];
    for depth in 1..=bounds.max_depth {
        if frontier.is_empty() {
            break;
        }
        let edges = source.layer(&frontier).await?;
        let found = layer(edges, |n| seen.contains(n));
        let mut next = Vec::with_capacity(found.len());
        for (node, parent) in found {
            if reach.hops.len() >= bounds.max_nodes {
                reach.truncated = true;
                return Ok(reach);
            }
            seen.insert(node.clone());
            let hit = bounds.target.as_ref() == Some(&node);
            reach.hops.push(Hop { node: node.clone(), parent, depth });
            if hit {
                reach.reached_target = true;
                return Ok(reach);
            }
            next.push(node);
        }
        frontier = next;
    }
    Ok(reach)
}

/// One layer of a breadth-first search: the nodes of `edges` (node, parent) not `known` yet, in node order,
/// each with the least of its parents in the layer.
pub fn layer<N: Clone + Eq + Hash + Ord>(
    edges: impl IntoIterator<Item = (N, N)>,
    known: impl Fn(&N) -> bool,
) -> Vec<(N, N)> {
    let mut found: HashMap<N, N> = HashMap::new();
    for (node, parent) in edges {
        if known(&node) {
            continue;
        }
        match found.get_mut(&node) {
            Some(p) if parent < *p => *p = parent,
            Some(_) => {}
            None => {
                found.insert(node, parent);
            }
        }
    }
    let mut found: Vec<(N, N)> = found.into_iter().collect();
    found.sort_unstable();
    found
}

/// The path `start ⇝ target` (both included) through the parents a breadth-first search recorded.
pub fn walk_back<N: Clone + Eq + Hash>(parent: &HashMap<N, N>, start: &N, target: &N) -> Vec<N> {
    let mut path = vec![target.clone()];
    let mut at = target.clone();
    while at != *start {
        match parent.get(&at) {
            Some(p) if path.len() <= parent.len() => {
                path.push(p.clone());
                at = p.clone();
            }
            _ => break,
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory edge source, counting its layers.
    struct Edges {
        edges: Vec<(u32, u32)>,
        layers: usize,
    }

    impl EdgeSource for Edges {
        type Node = u32;

        async fn layer(&mut self, frontier: &[u32]) -> Result<Vec<(u32, u32)>> {
            self.layers += 1;
            Ok(self.edges.iter().filter(|(from, _)| frontier.contains(from)).map(|&(from, to)| (to, from)).collect())
        }
    }

    fn edges(list: &[(u32, u32)]) -> Edges {
        Edges { edges: list.to_vec(), layers: 0 }
    }

    #[test]
    fn a_layer_keeps_each_new_node_once_with_its_least_parent() {
        let found = layer([(9, 3), (8, 2), (9, 1), (1, 3), (8, 3)], |n| *n == 1);
        assert_eq!(found, vec![(8, 2), (9, 1)]);
    }

    #[tokio::test]
    async fn nodes_are_reached_once_nearest_first_along_shortest_paths_and_cycles_end() {
        // 1 → 2 → 3 → 1 (a cycle), 1 → 4 → 3, 3 → 5.
        let mut g = edges(&[(1, 2), (2, 3), (3, 1), (1, 4), (4, 3), (3, 5)]);
        let r = breadth_first(&mut g, 1, &Bounds::new(20, 100)).await.unwrap();
        let hops: Vec<(u32, u32, u32)> = r.hops.iter().map(|h| (h.node, h.parent, h.depth)).collect();
        assert_eq!(hops, vec![(2, 1, 1), (4, 1, 1), (3, 2, 2), (5, 3, 3)]);
        assert_eq!(walk_back(&r.parents(), &1, &5), vec![1, 2, 3, 5]);
        assert!(!r.truncated && !r.reached_target);
        assert_eq!(g.layers, 4, "one statement per layer, and one that finds nothing new");
    }

    #[tokio::test]
    async fn depth_nodes_and_target_bound_the_search() {
        let chain: Vec<(u32, u32)> = (0..100).map(|i| (i, i + 1)).collect();
        let mut g = edges(&chain);
        let r = breadth_first(&mut g, 0, &Bounds::new(20, 1000)).await.unwrap();
        assert_eq!((r.hops.len(), r.hops.last().unwrap().depth), (20, 20));
        assert_eq!(g.layers, 20);

        let r = breadth_first(&mut edges(&chain), 0, &Bounds::new(50, 10)).await.unwrap();
        assert_eq!((r.hops.len(), r.truncated), (10, true));

        let bounds = Bounds { target: Some(7), ..Bounds::new(50, 1000) };
        let r = breadth_first(&mut edges(&chain), 0, &bounds).await.unwrap();
        assert!(r.reached_target);
        assert_eq!(r.hops.last().unwrap().node, 7);
        assert_eq!(walk_back(&r.parents(), &0, &7), (0..=7).collect::<Vec<_>>());
    }

    #[test]
    fn a_path_walk_stops_on_a_broken_chain() {
        let parent: HashMap<u32, u32> = [(2, 1), (3, 9)].into_iter().collect();
        assert_eq!(walk_back(&parent, &1, &2), vec![1, 2]);
        assert_eq!(walk_back(&parent, &1, &4), vec![4], "nothing recorded: the node alone");
    }
}
