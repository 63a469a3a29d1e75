//! The reducer: `apply(state, indexed_event) -> State`, rule for rule as `python/clusterstate/reference.py`.
//!
//! Pure and total: the input State is never changed, a wrong index is an [`ApplyError`], an event about an unknown
//! task, instance or runner is a no-op. One event costs O(log n) map operations (plus the Thunderbolt-bridge cycle
//! recomputation when one of its inputs changed, and a scan of the Thunderbolt identifiers for a cable report).

use std::sync::Arc;

use imbl::OrdMap;

use crate::cycles::thunderbolt_bridge_cycles;
use crate::error::ApplyError;
use crate::events::{
    Event, IndexedEvent, NodeDisconnected, NodeDownloadProgress, NodeGatheredInfo, NodeTimedOut, TaskFailed,
    TaskStatusUpdated, TopologyEdgeCreated, TopologyEdgeDeleted,
};
use crate::ids::NodeId;
use crate::json::py_eq_objects;
use crate::profiling::{
    GatheredInfo, InterfaceType, NodeIdentity, NodeNetworkInfo, NodeRdmaCtlStatus, NodeThunderboltInfo,
    ThunderboltBridgeStatus,
};
use crate::state::{Derived, State};
use crate::topology::{Edge, RdmaConnection, Topology};
use crate::work::TaskStatus;

/// Fold one indexed event into `state` and return the new State; `state` stays valid and unchanged.
///
/// ```
/// use clusterstate_core::{apply, IndexedEvent, State};
/// let event: IndexedEvent = serde_json::from_str(r#"{"idx":0,"event":{"TestEvent":{"event_id":"e"}}}"#).unwrap();
/// let state = apply(&State::default(), &event).unwrap();
/// assert_eq!(state.last_event_applied_idx, 0);
/// assert!(apply(&state, &event).is_err()); // a duplicate
/// ```
pub fn apply(state: &State, indexed: &IndexedEvent) -> Result<State, ApplyError> {
    // The clone shares every map with `state`, so the changes below copy the paths they touch and nothing else.
    let mut next = state.clone();
    apply_mut(&mut next, indexed)?;
    Ok(next)
}

/// Fold one indexed event into `state` in place: the same rules and result as [`apply`], without the path copies
/// when `state` shares no storage with another State (a fold, a replay, the master's own State). On an error
/// `state` is unchanged.
///
/// ```
/// use clusterstate_core::{apply_mut, IndexedEvent, State};
/// let event: IndexedEvent = serde_json::from_str(r#"{"idx":0,"event":{"TestEvent":{"event_id":"e"}}}"#).unwrap();
/// let mut state = State::default();
/// apply_mut(&mut state, &event).unwrap();
/// assert!(apply_mut(&mut state, &event).is_err()); // a duplicate
/// assert_eq!(state.last_event_applied_idx, 0);
/// ```
pub fn apply_mut(state: &mut State, indexed: &IndexedEvent) -> Result<(), ApplyError> {
    // `last_event_applied_idx` is in -1..=i64::MAX, so the next index always fits a u64.
    let expected = u64::try_from(i128::from(state.last_event_applied_idx) + 1).unwrap_or(u64::MAX);
    let idx = indexed.idx;
    let index_error = || ApplyError::EventIndex { expected, got: idx };
    if idx != expected {
        return Err(index_error());
    }
    let new_idx = i64::try_from(idx).map_err(|_| index_error())?;

    // The cycles' inputs as they were. Holding these handles makes a change to an input copy its path instead of
    // writing in place, so `before` stays the old value and identity still tells what changed. Only events that
    // can change an input pay for it (a heartbeat of a known node cannot).
    let before = touches_cycle_inputs(state, &indexed.event).then(|| CycleInputs::of(state));
    // Tests check the claim of `touches_cycle_inputs`: an event it lets through leaves every input untouched.
    #[cfg(debug_assertions)]
    let unchecked = before.is_none().then(|| CycleInputs::of(state));
    if let Some(producer) = indexed.origin_node() {
        set_node(&mut state.last_event_index_by_node, &state.topology, producer, idx);
    }
    apply_event(state, &indexed.event);
    if let Some(before) = before {
        update_cycles(state, &before, &indexed.event);
    }
    #[cfg(debug_assertions)]
    debug_assert!(
        unchecked.is_none_or(|inputs| inputs.unchanged_in(state)),
        "{} changed a cycle input unannounced",
        indexed.event.tag()
    );
    state.last_event_applied_idx = new_idx;
    Ok(())
}

/// The inputs of the Thunderbolt-bridge cycles, borrowed from a State or held from before an event.
#[derive(Clone)]
struct CycleInputs {
    topology: Topology,
    bridges: OrdMap<NodeId, Arc<ThunderboltBridgeStatus>>,
    networks: OrdMap<NodeId, Arc<NodeNetworkInfo>>,
    verified: bool,
}

impl CycleInputs {
    fn of(state: &State) -> Self {
        Self {
            topology: state.topology.clone(),
            bridges: state.node_thunderbolt_bridge.clone(),
            networks: state.node_network.clone(),
            verified: state.derived.cycles_verified,
        }
    }

    fn unchanged_in(&self, state: &State) -> bool {
        self.topology.ptr_eq(&state.topology)
            && self.bridges.ptr_eq(&state.node_thunderbolt_bridge)
            && self.networks.ptr_eq(&state.node_network)
    }
}

/// Whether `event` may change the topology, a bridge status or a network: every event that has a rule for one of
/// them, and a sample of a node not yet in the topology (it adds the node). Anything else leaves the cycles as
/// they are without looking.
fn touches_cycle_inputs(state: &State, event: &Event) -> bool {
    match event {
        Event::NodeGatheredInfo(e) => {
            !state.topology.contains_id(&e.node_id)
                || matches!(
                    e.info,
                    GatheredInfo::NodeNetworkInterfaces(_)
                        | GatheredInfo::MacThunderboltConnections(_)
                        | GatheredInfo::ThunderboltBridgeInfo(_)
                )
        }
        Event::TopologyEdgeCreated(_)
        | Event::TopologyEdgeDeleted(_)
        | Event::NodeDisconnected(_)
        | Event::NodeTimedOut(_) => true,
        _ => false,
    }
}

/// Python recomputes the cycles whenever one of their inputs changed (every rule here leaves an unchanged input
/// untouched, so identity tells). When the stored cycles are known to match the old inputs and the change provably
/// cannot alter the result, the recomputation is skipped: same result, O(log n) instead of O(edges).
fn update_cycles(state: &mut State, before: &CycleInputs, event: &Event) {
    if before.unchanged_in(state) {
        return;
    }
    if !(before.verified && cycles_unaffected(before, state, event)) {
        let cycles = thunderbolt_bridge_cycles(&state.topology, &state.node_thunderbolt_bridge, &state.node_network);
        if cycles != *state.thunderbolt_bridge_cycles {
            state.thunderbolt_bridge_cycles = Arc::new(cycles);
        }
    }
    state.derived.cycles_verified = true;
}

/// Apply `events` in order, starting from `state`; stops at the first error (the State before it is lost: use
/// [`replay`] to keep it).
pub fn fold<'a>(state: &State, events: impl IntoIterator<Item = &'a IndexedEvent>) -> Result<State, ApplyError> {
    let mut result = state.clone();
    for event in events {
        apply_mut(&mut result, event)?;
    }
    Ok(result)
}

/// Apply `events` in order, starting from `state`. Returns the State after the last event that applied and the
/// error that stopped the replay, if any.
pub fn replay(state: &State, events: &[IndexedEvent]) -> (State, Option<ApplyError>) {
    let mut result = state.clone();
    for event in events {
        if let Err(err) = apply_mut(&mut result, event) {
            return (result, Some(err));
        }
    }
    (result, None)
}

fn apply_event(state: &mut State, event: &Event) {
    match event {
        Event::TaskCreated(e) => {
            put(&mut state.tasks, e.task_id.clone(), Arc::new(e.task.clone()));
        }
        Event::TaskDeleted(e) => {
            if state.tasks.contains_key(e.task_id.as_str()) {
                state.tasks.remove(e.task_id.as_str());
            }
        }
        Event::TaskStatusUpdated(e) => task_status_updated(state, e),
        Event::TaskFailed(e) => task_failed(state, e),
        Event::InstanceCreated(e) => {
            put(
                &mut state.instances,
                e.instance.instance_id().clone(),
                Arc::new(e.instance.clone()),
            );
        }
        Event::InstanceDeleted(e) => {
            if state.instances.contains_key(e.instance_id.as_str()) {
                state.instances.remove(e.instance_id.as_str());
            }
        }
        Event::RunnerStatusUpdated(e) => {
            put(
                &mut state.runners,
                e.runner_id.clone(),
                Arc::new(e.runner_status.clone()),
            );
        }
        Event::RunnerDeleted(e) => {
            if state.runners.contains_key(e.runner_id.as_str()) {
                state.runners.remove(e.runner_id.as_str());
            }
        }
        Event::NodeDisconnected(e) => node_disconnected(state, &e.node_id),
        Event::NodeTimedOut(e) => node_disconnected(state, &e.node_id),
        Event::NodeGatheredInfo(e) => node_gathered_info(state, e),
        Event::NodeDownloadProgress(e) => node_download_progress(state, e),
        Event::TopologyEdgeCreated(e) => {
            state.topology.add_connection(&e.conn);
        }
        Event::TopologyEdgeDeleted(e) => {
            state.topology.remove_connection(&e.conn);
        }
        // Pass-through: streamed to clients, never part of State (they still prove liveness).
        Event::TestEvent(_)
        | Event::TaskAcknowledged(_)
        | Event::ChunkGenerated(_)
        | Event::InputChunkReceived(_)
        | Event::TracesCollected(_)
        | Event::TracesMerged(_) => {}
    }
}

/// Set `map[key] = value` unless it already holds an equal value, in which case the map (and its identity, which
/// decides whether the cycles are recomputed) stays as it is: the reference's `_with`.
fn put<K: Ord + Clone, V: PartialEq + Clone>(map: &mut OrdMap<K, V>, key: K, value: V) {
    if map.get(&key) != Some(&value) {
        map.insert(key, value);
    }
}

/// Set `map[node] = value` in one descent when the node is already a key (a heartbeat's case), storing a new key as
/// the topology's copy of the id (see [`Topology::canonical`]). For maps whose identity nobody checks: unlike
/// [`put`], an equal value still copies the path of a shared map.
fn set_node<V: Clone>(map: &mut OrdMap<NodeId, V>, topology: &Topology, node: &NodeId, value: V) {
    if let Some(slot) = map.get_mut(node) {
        *slot = value;
    } else {
        map.insert(topology.canonical(node), value);
    }
}

/// The inputs of the Thunderbolt-bridge cycles, borrowed from a State or from [`CycleInputs`].
#[derive(Clone, Copy)]
struct Inputs<'a> {
    topology: &'a Topology,
    bridges: &'a OrdMap<NodeId, Arc<ThunderboltBridgeStatus>>,
    networks: &'a OrdMap<NodeId, Arc<NodeNetworkInfo>>,
}

impl<'a> From<&'a State> for Inputs<'a> {
    fn from(state: &'a State) -> Self {
        Self {
            topology: &state.topology,
            bridges: &state.node_thunderbolt_bridge,
            networks: &state.node_network,
        }
    }
}

impl<'a> From<&'a CycleInputs> for Inputs<'a> {
    fn from(inputs: &'a CycleInputs) -> Self {
        Self {
            topology: &inputs.topology,
            bridges: &inputs.bridges,
            networks: &inputs.networks,
        }
    }
}

impl<'a> Inputs<'a> {
    /// Whether a node counts for the cycles: its bridge is enabled and it is in the topology.
    fn enabled(self, node: &str) -> bool {
        self.topology.contains(node) && self.bridges.get(node).is_some_and(|status| status.enabled)
    }

    /// The Thunderbolt interface addresses a node contributes (when it is enabled), sorted.
    fn thunderbolt_ips(self, node: &str) -> Vec<&'a str> {
        let mut ips: Vec<&str> = self
            .networks
            .get(node)
            .into_iter()
            .flat_map(|network| network.interfaces.iter())
            .filter(|iface| iface.interface_type == InterfaceType::Thunderbolt)
            .map(|iface| iface.ip_address.as_str())
            .collect();
        ips.sort_unstable();
        ips.dedup();
        ips
    }
}

/// `true` if the cycles computed from `after`'s inputs are certainly those computed from `before`'s.
///
/// The cycle graph holds the enabled nodes (bridge enabled, in the topology), their edges to each other that are
/// RDMA or go to a Thunderbolt address of an enabled node. A change that touches none of that cannot change it.
fn cycles_unaffected(before: &CycleInputs, after: &State, event: &Event) -> bool {
    let (before, after) = (Inputs::from(before), Inputs::from(after));
    let newly_enabled = |node: &str| !before.topology.contains(node) && after.enabled(node);
    match event {
        Event::NodeGatheredInfo(e) => {
            let node = e.node_id.as_str();
            let (was, is) = (before.enabled(node), after.enabled(node));
            if was != is {
                return false;
            }
            if !is {
                // Its edges, addresses and bridge do not count; only RDMA sinks it pulled into the topology might.
                return !after.topology.successors(node).any(|sink| newly_enabled(sink));
            }
            let same_edges = match (before.topology.out_map(node), after.topology.out_map(node)) {
                (Some(old), Some(new)) => old.ptr_eq(new),
                (None, None) => true,
                _ => false,
            };
            same_edges && before.thunderbolt_ips(node) == after.thunderbolt_ips(node)
        }
        Event::TopologyEdgeCreated(TopologyEdgeCreated { conn, .. })
        | Event::TopologyEdgeDeleted(TopologyEdgeDeleted { conn, .. }) => {
            let (source, sink) = (conn.source.as_str(), conn.sink.as_str());
            !(newly_enabled(source) || newly_enabled(sink) || (after.enabled(source) && after.enabled(sink)))
        }
        Event::NodeDisconnected(NodeDisconnected { node_id, .. })
        | Event::NodeTimedOut(NodeTimedOut { node_id, .. }) => !before.enabled(node_id),
        // No other event changes an input; if one ever does, recompute.
        _ => false,
    }
}

// --- tasks ---

fn task_status_updated(state: &mut State, event: &TaskStatusUpdated) {
    // In place (the task is copied only if another State shares it).
    let Some(task) = state.tasks.get_mut(event.task_id.as_str()) else {
        return;
    };
    let task = Arc::make_mut(task);
    *task.task_status_mut() = event.task_status;
    if event.task_status != TaskStatus::Failed {
        // Leaving the Failed state clears the error (exo: only generation tasks carry one).
        if let Some(generation) = task.as_generation_mut() {
            generation.error_type = None;
            generation.error_message = None;
        }
    }
}

fn task_failed(state: &mut State, event: &TaskFailed) {
    let Some(task) = state.tasks.get_mut(event.task_id.as_str()) else {
        return;
    };
    // exo leaves the status unchanged; a TaskStatusUpdated(Failed) usually accompanies it.
    if task.is_generation() {
        if let Some(generation) = Arc::make_mut(task).as_generation_mut() {
            generation.error_type = Some(event.error_type.clone());
            generation.error_message = Some(event.error_message.clone());
        }
    }
}

// --- nodes ---

/// Drop the node's topology vertex, event index and per-node data; keep its identity.
fn node_disconnected(state: &mut State, node_id: &NodeId) {
    let node = node_id.as_str();
    state.topology.remove_node(node);
    if let Some(old) = state.node_thunderbolt.get(node).cloned() {
        unindex_uuids(state, node_id, &old);
    }
    // Remove only present keys, so an untouched map keeps its identity (the cycle check relies on it).
    macro_rules! drop_from {
        ($($map:ident),*) => {$(
            if state.$map.contains_key(node) {
                state.$map.remove(node);
            }
        )*};
    }
    drop_from!(
        last_event_index_by_node,
        downloads,
        node_memory,
        node_disk,
        node_system,
        node_network,
        node_thunderbolt,
        node_thunderbolt_bridge,
        node_rdma_ctl
    );
}

fn node_download_progress(state: &mut State, event: &NodeDownloadProgress) {
    let progress = &event.download_progress;
    let node_id = progress.node_id();
    let shard = progress.shard_metadata();
    // Python compares the decoded dicts: key order is ignored and 1 == 1.0.
    let same_shard = |existing: &crate::work::DownloadProgress| {
        let other = existing.shard_metadata();
        other.tag == shard.tag && py_eq_objects(&other.body, &shard.body)
    };
    let Some(entries) = state.downloads.get_mut(node_id) else {
        let key = state.topology.canonical(node_id);
        state.downloads.insert(key, Arc::new(vec![progress.clone()]));
        return;
    };
    // In place unless another State shares the list.
    let entries = Arc::make_mut(entries);
    if let Some(position) = entries.iter().position(same_shard) {
        entries[position] = progress.clone();
    } else {
        entries.push(progress.clone());
    }
}

fn node_gathered_info(state: &mut State, event: &NodeGatheredInfo) {
    let node_id = &state.topology.add_node_canonical(&event.node_id);
    match &event.info {
        GatheredInfo::MacmonMetrics(info) => {
            set_node(&mut state.node_system, &state.topology, node_id, info.system_profile);
            set_node(&mut state.node_memory, &state.topology, node_id, info.memory);
        }
        GatheredInfo::MemoryUsage(info) => {
            set_node(&mut state.node_memory, &state.topology, node_id, *info);
        }
        GatheredInfo::NodeDiskUsage(info) => {
            set_node(&mut state.node_disk, &state.topology, node_id, info.disk_usage);
        }
        GatheredInfo::NodeConfig(_) => {}
        GatheredInfo::MiscData(info) => {
            merge_identity(state, node_id, |identity| {
                identity.friendly_name.clone_from(&info.friendly_name);
            });
        }
        GatheredInfo::StaticNodeInformation(info) => merge_identity(state, node_id, |identity| {
            identity.model_id.clone_from(&info.model);
            identity.chip_id.clone_from(&info.chip);
            identity.os_version.clone_from(&info.os_version);
            identity.os_build_version.clone_from(&info.os_build_version);
        }),
        GatheredInfo::NodeNetworkInterfaces(info) => {
            let network = NodeNetworkInfo {
                interfaces: info.ifaces.clone(),
            };
            put(&mut state.node_network, node_id.clone(), Arc::new(network));
        }
        GatheredInfo::MacThunderboltIdentifiers(info) => {
            let old = state.node_thunderbolt.get(node_id.as_str()).cloned();
            if old.as_ref().is_some_and(|old| old.interfaces == info.idents) {
                return; // the usual case: the same identifiers again
            }
            if let Some(old) = old {
                unindex_uuids(state, node_id, &old);
            }
            if let Some(owners) = &mut state.derived.uuid_owners {
                for ident in &info.idents {
                    owners
                        .entry(Arc::from(ident.domain_uuid.as_str()))
                        .or_default()
                        .insert(node_id.clone());
                }
            }
            let thunderbolt = NodeThunderboltInfo {
                interfaces: info.idents.clone(),
            };
            put(&mut state.node_thunderbolt, node_id.clone(), Arc::new(thunderbolt));
        }
        GatheredInfo::MacThunderboltConnections(info) => {
            let edges = rdma_links(state, &info.conns);
            state.topology.set_rdma_out_edges(node_id, &edges);
        }
        GatheredInfo::ThunderboltBridgeInfo(info) => {
            put(
                &mut state.node_thunderbolt_bridge,
                node_id.clone(),
                Arc::new(info.status.clone()),
            );
        }
        GatheredInfo::RdmaCtlStatus(info) => {
            put(
                &mut state.node_rdma_ctl,
                node_id.clone(),
                NodeRdmaCtlStatus { enabled: info.enabled },
            );
        }
    }
}

fn merge_identity(state: &mut State, node_id: &NodeId, update: impl FnOnce(&mut NodeIdentity)) {
    let mut identity = state
        .node_identities
        .get(node_id.as_str())
        .map(|i| (**i).clone())
        .unwrap_or_default();
    update(&mut identity);
    put(&mut state.node_identities, node_id.clone(), Arc::new(identity));
}

/// Forget `node`'s UUIDs (its `old` identifiers) in the UUID index, if there is one.
fn unindex_uuids(state: &mut State, node: &NodeId, old: &NodeThunderboltInfo) {
    let Some(owners) = &mut state.derived.uuid_owners else {
        return;
    };
    for ident in &old.interfaces {
        let uuid = ident.domain_uuid.as_str();
        if let Some(set) = owners.get_mut(uuid) {
            set.remove(node.as_str());
            if set.is_empty() {
                owners.remove(uuid);
            }
        }
    }
}

/// exo's RDMA mapping: the cables a node reports become its RDMA out-edges, as `(sink, edge)`.
///
/// A cable is known by the controllers' domain UUIDs at both ends; it becomes an edge only once both UUIDs appear in
/// some node's identifiers. If two nodes claim one UUID, the smaller node id owns it (and within a node, its first
/// identifier with that UUID), as the Python reference's `setdefault` over the sorted nodes does.
fn rdma_links(state: &mut State, links: &[crate::profiling::ThunderboltConnection]) -> Vec<(NodeId, Edge)> {
    if links.is_empty() {
        return Vec::new();
    }
    let owners = state
        .derived
        .uuid_owners
        .get_or_insert_with(|| Derived::build_uuid_owners(&state.node_thunderbolt));
    let owner = |uuid: &str| -> Option<(NodeId, String)> {
        let node = owners.get(uuid)?.get_min()?;
        let info = state.node_thunderbolt.get(node.as_str())?;
        let ident = info.interfaces.iter().find(|ident| ident.domain_uuid == uuid)?;
        Some((node.clone(), ident.rdma_interface.clone()))
    };
    links
        .iter()
        .filter_map(|link| {
            let (_, source_iface) = owner(&link.source_uuid)?;
            let (sink, sink_iface) = owner(&link.sink_uuid)?;
            let edge = Edge::Rdma(RdmaConnection {
                source_rdma_iface: source_iface,
                sink_rdma_iface: sink_iface,
            });
            Some((sink, edge))
        })
        .collect()
}
