//! Thunderbolt-bridge cycles: loops of Macs with Thunderbolt Bridge enabled (they cause broadcast storms).
//!
//! The graph holds the bridge-enabled nodes of the topology and their edges that run over Thunderbolt: RDMA edges,
//! and socket edges whose address is a Thunderbolt interface of an enabled node. Every simple cycle of two or more
//! nodes is returned, rotated to start at its smallest node id, the list sorted: the canonical form the Python
//! reference computes with `networkx.simple_cycles`.

use std::collections::HashSet;
use std::sync::Arc;

use imbl::OrdMap;

use crate::ids::NodeId;
use crate::profiling::{InterfaceType, NodeNetworkInfo, ThunderboltBridgeStatus};
use crate::topology::{Edge, Topology};

/// The canonical Thunderbolt-bridge cycles of a topology (see the module docs).
pub fn thunderbolt_bridge_cycles(
    topology: &Topology,
    bridges: &OrdMap<NodeId, Arc<ThunderboltBridgeStatus>>,
    networks: &OrdMap<NodeId, Arc<NodeNetworkInfo>>,
) -> Vec<Vec<NodeId>> {
    // Sorted, because the map is.
    let enabled: Vec<&NodeId> = bridges
        .iter()
        .filter(|(node, status)| status.enabled && topology.contains(node.as_str()))
        .map(|(n, _)| n)
        .collect();
    if enabled.len() < 2 {
        return Vec::new();
    }
    let tb_ips: HashSet<&str> = enabled
        .iter()
        .filter_map(|node| networks.get(node.as_str()))
        .flat_map(|network| network.interfaces.iter())
        .filter(|iface| iface.interface_type == InterfaceType::Thunderbolt)
        .map(|iface| iface.ip_address.as_str())
        .collect();
    let position = |node: &str| enabled.binary_search_by(|probe| probe.as_str().cmp(node)).ok();
    let over_thunderbolt = |edge: &Edge| match edge {
        Edge::Rdma(_) => true,
        Edge::Socket(socket) => tb_ips.contains(socket.sink_multiaddr.ip_address()),
    };
    let successors: Vec<Vec<usize>> = enabled
        .iter()
        .enumerate()
        .map(|(from, node)| {
            let Some(sinks) = topology.out_map(node.as_str()) else {
                return Vec::new();
            };
            // Look the enabled nodes up, or scan the out-edges: whichever is fewer (the same edges either way).
            if enabled.len() < sinks.len() {
                (0..enabled.len())
                    .filter(|&to| to != from)
                    .filter(|&to| {
                        sinks
                            .get(enabled[to].as_str())
                            .is_some_and(|edges| edges.iter().any(over_thunderbolt))
                    })
                    .collect()
            } else {
                sinks
                    .iter()
                    .filter(|(_, edges)| edges.iter().any(over_thunderbolt))
                    .filter_map(|(sink, _)| position(sink.as_str()))
                    .filter(|&to| to != from)
                    .collect()
            }
        })
        .collect();
    let mut cycles: Vec<Vec<NodeId>> = simple_cycles(&successors)
        .into_iter()
        .map(|cycle| cycle.into_iter().map(|i| enabled[i].clone()).collect())
        .collect();
    cycles.sort();
    cycles
}

/// Every simple cycle of two or more vertices of a digraph without self-loops, each listed once, starting at its
/// smallest vertex. `successors[v]` lists the vertices `v` has an edge to.
pub fn simple_cycles(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut cycles = Vec::new();
    let mut on_path = vec![false; successors.len()];
    for start in 0..successors.len() {
        // Only vertices above `start`: a cycle is found once, from its smallest vertex.
        let mut path = vec![start];
        on_path[start] = true;
        // Explicit stack of (vertex, next successor to try), so deep graphs cannot overflow the call stack.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(top) = stack.last_mut() {
            let (vertex, next) = *top;
            let Some(&to) = successors.get(vertex).and_then(|list| list.get(next)) else {
                stack.pop();
                if let Some(done) = path.pop() {
                    on_path[done] = false;
                }
                continue;
            };
            top.1 += 1;
            if to == start {
                if path.len() >= 2 {
                    cycles.push(path.clone());
                }
            } else if to > start && !on_path[to] {
                on_path[to] = true;
                path.push(to);
                stack.push((to, 0));
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_cycle_once() {
        // 0 <-> 1, 1 -> 2 -> 0, 2 -> 1.
        let graph = vec![vec![1], vec![0, 2], vec![0, 1]];
        let mut cycles = simple_cycles(&graph);
        cycles.sort();
        assert_eq!(cycles, vec![vec![0, 1], vec![0, 1, 2], vec![1, 2]]);
    }

    #[test]
    fn complete_graph_counts() {
        // K4 has 6 two-cycles, 8 three-cycles and 6 four-cycles.
        let graph: Vec<Vec<usize>> = (0..4).map(|v| (0..4).filter(|&w| w != v).collect()).collect();
        assert_eq!(simple_cycles(&graph).len(), 20);
        assert!(simple_cycles(&[vec![], vec![]]).is_empty());
        assert!(simple_cycles(&[]).is_empty());
    }
}
