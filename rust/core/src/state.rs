//! The cluster State (`python/clusterstate/models/state.py`), held in persistent maps.
//!
//! Every map is an `imbl::OrdMap`: cloning a State is a handful of reference-count increments, an update copies one
//! path (O(log n)) and shares the rest, and the JSON form is canonical for free (keys written sorted, as the Python
//! State does on dump). Values that are not tiny sit behind an `Arc` so that copying a path never deep-copies them.

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::{de, Deserialize, Deserializer, Serialize};

use crate::ids::{InstanceId, NodeId, RunnerId, TaskId};
use crate::profiling::{
    DiskUsage, MemoryUsage, NodeIdentity, NodeNetworkInfo, NodeRdmaCtlStatus, NodeThunderboltInfo,
    SystemPerformanceProfile, ThunderboltBridgeStatus,
};
use crate::topology::Topology;
use crate::work::{DownloadProgress, Instance, RunnerStatus, Task};

/// Everything the cluster knows, as folded from the indexed event stream. Immutable in spirit: [`crate::apply()`]
/// returns a new State and leaves the old one valid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default)]
    pub instances: OrdMap<InstanceId, Arc<Instance>>,
    #[serde(default)]
    pub runners: OrdMap<RunnerId, Arc<RunnerStatus>>,
    #[serde(default)]
    pub downloads: OrdMap<NodeId, Arc<Vec<DownloadProgress>>>,
    #[serde(default)]
    pub tasks: OrdMap<TaskId, Arc<Task>>,
    /// The global index of the last event each node produced (replaces exo's wall-clock `last_seen`).
    #[serde(default, alias = "lastEventIndexByNode")]
    pub last_event_index_by_node: OrdMap<NodeId, u64>,
    #[serde(default)]
    pub topology: Topology,
    /// The index of the last event applied; -1 for an empty State.
    #[serde(
        default = "minus_one",
        alias = "lastEventAppliedIdx",
        deserialize_with = "at_least_minus_one"
    )]
    pub last_event_applied_idx: i64,
    /// Survives a disconnect, so a node that rejoins keeps its name.
    #[serde(default, alias = "nodeIdentities")]
    pub node_identities: OrdMap<NodeId, Arc<NodeIdentity>>,
    #[serde(default, alias = "nodeMemory")]
    pub node_memory: OrdMap<NodeId, MemoryUsage>,
    #[serde(default, alias = "nodeDisk")]
    pub node_disk: OrdMap<NodeId, DiskUsage>,
    #[serde(default, alias = "nodeSystem")]
    pub node_system: OrdMap<NodeId, SystemPerformanceProfile>,
    #[serde(default, alias = "nodeNetwork")]
    pub node_network: OrdMap<NodeId, Arc<NodeNetworkInfo>>,
    #[serde(default, alias = "nodeThunderbolt")]
    pub node_thunderbolt: OrdMap<NodeId, Arc<NodeThunderboltInfo>>,
    #[serde(default, alias = "nodeThunderboltBridge")]
    pub node_thunderbolt_bridge: OrdMap<NodeId, Arc<ThunderboltBridgeStatus>>,
    #[serde(default, alias = "nodeRdmaCtl")]
    pub node_rdma_ctl: OrdMap<NodeId, NodeRdmaCtlStatus>,
    /// Loops of Macs with Thunderbolt Bridge enabled; canonical (see [`crate::cycles`]).
    #[serde(default, alias = "thunderboltBridgeCycles")]
    pub thunderbolt_bridge_cycles: Arc<Vec<Vec<NodeId>>>,
    /// Caches derived from the fields above, kept by [`crate::apply()`]. Not data: never serialised, ignored by `==`.
    /// The default ("unknown") is always safe; reset it to the default after changing the State's fields by hand.
    #[serde(skip)]
    pub derived: Derived,
}

/// Caches derived from a [`State`]'s data, which let [`crate::apply()`] stay O(log n) per event. Every two `Derived`
/// compare equal: they are not part of the value.
#[derive(Clone, Debug, Default)]
pub struct Derived {
    /// `thunderbolt_bridge_cycles` is known to be what the topology, bridges and networks give, so a change that
    /// cannot alter the cycles skips their recomputation.
    pub cycles_verified: bool,
    /// For each Thunderbolt domain UUID in `node_thunderbolt`, the nodes that report it (the smallest owns it).
    pub uuid_owners: Option<UuidOwners>,
}

impl PartialEq for Derived {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Derived {
    /// The UUID owners of `node_thunderbolt`, built from scratch.
    pub fn build_uuid_owners(node_thunderbolt: &OrdMap<NodeId, Arc<NodeThunderboltInfo>>) -> UuidOwners {
        let mut owners: UuidOwners = OrdMap::new();
        for (node, info) in node_thunderbolt {
            for ident in &info.interfaces {
                owners
                    .entry(Arc::from(ident.domain_uuid.as_str()))
                    .or_default()
                    .insert(node.clone());
            }
        }
        owners
    }
}

/// Thunderbolt domain UUID → the nodes that report it.
pub type UuidOwners = OrdMap<Arc<str>, OrdSet<NodeId>>;

fn minus_one() -> i64 {
    -1
}

fn at_least_minus_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = i64::deserialize(deserializer)?;
    if value < -1 {
        return Err(de::Error::custom(format_args!(
            "last_event_applied_idx must be >= -1, got {value}"
        )));
    }
    Ok(value)
}

/// A global event index: `0..=i64::MAX`, as the Python models bound it.
pub(crate) fn index<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if i64::try_from(value).is_err() {
        return Err(de::Error::custom(format_args!(
            "an event index must be <= {}, got {value}",
            i64::MAX
        )));
    }
    Ok(value)
}

impl Default for State {
    /// The empty State, equal to the Python `State()`.
    fn default() -> Self {
        Self {
            instances: OrdMap::new(),
            runners: OrdMap::new(),
            downloads: OrdMap::new(),
            tasks: OrdMap::new(),
            last_event_index_by_node: OrdMap::new(),
            topology: Topology::new(),
            last_event_applied_idx: -1,
            node_identities: OrdMap::new(),
            node_memory: OrdMap::new(),
            node_disk: OrdMap::new(),
            node_system: OrdMap::new(),
            node_network: OrdMap::new(),
            node_thunderbolt: OrdMap::new(),
            node_thunderbolt_bridge: OrdMap::new(),
            node_rdma_ctl: OrdMap::new(),
            thunderbolt_bridge_cycles: Arc::new(Vec::new()),
            derived: Derived::default(),
        }
    }
}

impl State {
    /// An empty State (`State()` in Python).
    pub fn new() -> Self {
        Self::default()
    }

    /// Every node the State holds anything about: in the topology or with an event index, sorted.
    pub fn known_nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.topology.nodes().cloned().collect();
        nodes.extend(
            self.last_event_index_by_node
                .keys()
                .filter(|n| !self.topology.contains(n.as_str()))
                .cloned(),
        );
        nodes.sort();
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{to_string, Case};

    const EMPTY: &str = r#"{"instances":{},"runners":{},"downloads":{},"tasks":{},"last_event_index_by_node":{},"topology":{"nodes":[],"connections":{}},"last_event_applied_idx":-1,"node_identities":{},"node_memory":{},"node_disk":{},"node_system":{},"node_network":{},"node_thunderbolt":{},"node_thunderbolt_bridge":{},"node_rdma_ctl":{},"thunderbolt_bridge_cycles":[]}"#;
    const EMPTY_CAMEL: &str = r#"{"instances":{},"runners":{},"downloads":{},"tasks":{},"lastEventIndexByNode":{},"topology":{"nodes":[],"connections":{}},"lastEventAppliedIdx":-1,"nodeIdentities":{},"nodeMemory":{},"nodeDisk":{},"nodeSystem":{},"nodeNetwork":{},"nodeThunderbolt":{},"nodeThunderboltBridge":{},"nodeRdmaCtl":{},"thunderboltBridgeCycles":[]}"#;

    #[test]
    fn empty_state_matches_python() {
        assert_eq!(to_string(&State::default(), Case::Snake).unwrap(), EMPTY);
        assert_eq!(to_string(&State::default(), Case::Camel).unwrap(), EMPTY_CAMEL);
        assert_eq!(serde_json::from_str::<State>(EMPTY).unwrap(), State::default());
        assert_eq!(serde_json::from_str::<State>(EMPTY_CAMEL).unwrap(), State::default());
        assert_eq!(serde_json::from_str::<State>("{}").unwrap(), State::default());
        assert!(serde_json::from_str::<State>(r#"{"last_event_applied_idx":-2}"#).is_err());
        assert!(serde_json::from_str::<State>(r#"{"nope":1}"#).is_err());
    }

    #[test]
    fn keys_are_written_sorted() {
        let state: State = serde_json::from_str(r#"{"last_event_index_by_node":{"b":1,"a":2}}"#).unwrap();
        assert!(to_string(&state, Case::Snake)
            .unwrap()
            .contains(r#""last_event_index_by_node":{"a":2,"b":1}"#));
    }
}
