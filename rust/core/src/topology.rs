//! The cluster topology: which node can reach which, and how (`python/clusterstate/models/topology.py`).
//!
//! A directed multigraph over node ids whose edges are socket reachability ([`SocketConnection`]) or Thunderbolt
//! RDMA links ([`RdmaConnection`]). Parallel edges between one ordered pair are kept sorted (socket edges by
//! address, then RDMA edges by interface names: `edge_order` in Python, `Ord` on [`Edge`] here), equal ones once. [`Topology`] is persistent: nodes, out-edges and in-edges are `imbl` maps, so a change costs O(log n) and
//! shares everything else with the old value. It serialises as exo's `TopologySnapshot`: nodes sorted, connections
//! sorted by source then sink.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use indexmap::IndexMap;
use serde::de;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::NodeId;

/// An address a node is reachable at, such as `/ip4/10.0.0.2/tcp/52415`.
///
/// Serialises its parts (`address_type`, `ip_address` in its canonical text form, `port`) next to `address` and
/// ignores them on input, as exo does. Only `/ip4|/ip6/<address>/tcp/<port>[/p2p/<id>]` is accepted, with a valid
/// address of that family (the Python model's rules, which use Python 3.11's `ipaddress`). Equality and order are
/// those of the address (the other fields are computed from it).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Multiaddr {
    address: String,
    ip_address: String,
    port: u16,
}

impl Multiaddr {
    /// Parse and validate an address.
    pub fn new(address: impl Into<String>) -> Result<Self, String> {
        let address = address.into();
        match parse_multiaddr(&address) {
            Ok((ip_address, port)) => Ok(Self {
                address,
                ip_address,
                port,
            }),
            Err(why) => Err(format!("{why} in {address:?}")),
        }
    }

    /// The whole address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `ip4` or `ip6`.
    pub fn address_type(&self) -> &str {
        self.address.split('/').nth(1).unwrap_or_default()
    }

    /// The IP address in canonical text form (Python's `str(ipaddress.ip_address(host))`).
    pub fn ip_address(&self) -> &str {
        &self.ip_address
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// The canonical IP text and port of a valid address. Python's regex is
/// `^/(ip4|ip6)/([^/]+)/tcp/(\d{1,5})(?:/p2p/[A-Za-z0-9]+)?$`, whose `$` also matches before one final newline.
fn parse_multiaddr(address: &str) -> Result<(String, u16), &'static str> {
    const FORMAT: &str = "not a supported multiaddr (/ip4|/ip6/<address>/tcp/<port>)";
    let text = address.strip_suffix('\n').unwrap_or(address);
    let parts: Vec<&str> = text.split('/').collect();
    let (kind, host, port) = match parts.as_slice() {
        ["", kind, host, "tcp", port] => (*kind, *host, *port),
        ["", kind, host, "tcp", port, "p2p", id] if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            (*kind, *host, *port)
        }
        _ => return Err(FORMAT),
    };
    if host.is_empty() || !(1..=5).contains(&port.len()) || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FORMAT);
    }
    let ip = match kind {
        "ip4" => host
            .parse::<Ipv4Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| "not an IPv4 address")?,
        "ip6" => ipv6_text(host).ok_or("not an IPv6 address")?,
        _ => return Err(FORMAT),
    };
    let port = port.parse::<u16>().map_err(|_| "port out of range")?;
    Ok((ip, port))
}

/// Python 3.11's `str(ipaddress.IPv6Address(text))`: hextets in lower-case hex, the first longest run of two or
/// more zero hextets written `::`, no dotted form for embedded IPv4, and the `%scope` kept.
fn ipv6_text(text: &str) -> Option<String> {
    let (address, scope) = match text.split_once('%') {
        Some((address, scope)) if !scope.is_empty() && !scope.contains('%') => (address, Some(scope)),
        Some(_) => return None,
        None => (text, None),
    };
    let segments = address.parse::<Ipv6Addr>().ok()?.segments();
    let (mut best_start, mut best_len, mut run_start, mut run_len) = (0, 0, 0, 0);
    for (index, segment) in segments.iter().enumerate() {
        if *segment == 0 {
            if run_len == 0 {
                run_start = index;
            }
            run_len += 1;
            if run_len > best_len {
                (best_start, best_len) = (run_start, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let hex = |segments: &[u16]| segments.iter().map(|s| format!("{s:x}")).collect::<Vec<_>>().join(":");
    let mut out = if best_len > 1 {
        format!(
            "{}::{}",
            hex(&segments[..best_start]),
            hex(&segments[best_start + best_len..])
        )
    } else {
        hex(&segments)
    };
    if let Some(scope) = scope {
        out.push('%');
        out.push_str(scope);
    }
    Some(out)
}

impl fmt::Debug for Multiaddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Multiaddr({:?})", self.address)
    }
}

impl Serialize for Multiaddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A map, not a struct: pydantic never camelCases these keys.
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("address", &self.address)?;
        map.serialize_entry("address_type", self.address_type())?;
        map.serialize_entry("ip_address", &self.ip_address)?;
        map.serialize_entry("port", &self.port)?;
        map.end()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MultiaddrInput {
    address: String,
    // Computed on output; on input, any JSON (read under the payload rules, `crate::json::payload`), ignored.
    #[serde(default, deserialize_with = "crate::json::payload::ignored")]
    #[allow(dead_code)]
    address_type: (),
    #[serde(default, deserialize_with = "crate::json::payload::ignored")]
    #[allow(dead_code)]
    ip_address: (),
    #[serde(default, deserialize_with = "crate::json::payload::ignored")]
    #[allow(dead_code)]
    port: (),
}

impl<'de> Deserialize<'de> for Multiaddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let input = MultiaddrInput::deserialize(deserializer)?;
        Self::new(input.address).map_err(de::Error::custom)
    }
}

/// The source can reach the sink at this address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SocketConnection {
    pub sink_multiaddr: Multiaddr,
}

/// A Thunderbolt RDMA link between two controllers' interfaces.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RdmaConnection {
    pub source_rdma_iface: String,
    pub sink_rdma_iface: String,
}

/// An edge of the topology; untagged on the wire and told apart by its fields.
///
/// The order is the canonical order of parallel edges (Python's `edge_order`): socket edges by address, then RDMA
/// edges by source then sink interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Edge {
    /// `SocketConnection`.
    Socket(SocketConnection),
    /// `RDMAConnection`.
    Rdma(RdmaConnection),
}

impl Edge {
    /// `true` for an RDMA edge.
    pub fn is_rdma(&self) -> bool {
        matches!(self, Self::Rdma(_))
    }
}

/// Deserialises a field that, when present, must hold a `T` (not `null`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeFields {
    #[serde(default, deserialize_with = "present", alias = "sinkMultiaddr")]
    sink_multiaddr: Option<Multiaddr>,
    #[serde(default, deserialize_with = "present", alias = "sourceRdmaIface")]
    source_rdma_iface: Option<String>,
    #[serde(default, deserialize_with = "present", alias = "sinkRdmaIface")]
    sink_rdma_iface: Option<String>,
}

impl<'de> Deserialize<'de> for Edge {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // pydantic: a `sink_multiaddr` key makes a SocketConnection, else an RDMA key makes an RDMAConnection.
        let fields = EdgeFields::deserialize(deserializer)?;
        match fields {
            EdgeFields { sink_multiaddr: Some(sink_multiaddr), source_rdma_iface: None, sink_rdma_iface: None } => {
                Ok(Self::Socket(SocketConnection { sink_multiaddr }))
            }
            EdgeFields { sink_multiaddr: Some(_), .. } => {
                Err(de::Error::custom("SocketConnection: extra inputs are not permitted (RDMA fields)"))
            }
            EdgeFields { sink_multiaddr: None, source_rdma_iface: Some(source), sink_rdma_iface: Some(sink) } => {
                Ok(Self::Rdma(RdmaConnection { source_rdma_iface: source, sink_rdma_iface: sink }))
            }
            EdgeFields { source_rdma_iface: None, sink_rdma_iface: Some(_), .. } => {
                Err(de::Error::missing_field("source_rdma_iface"))
            }
            EdgeFields { source_rdma_iface: Some(_), sink_rdma_iface: None, .. } => {
                Err(de::Error::missing_field("sink_rdma_iface"))
            }
            EdgeFields { .. } => Err(de::Error::custom(
                "unable to tell the edge kind: expected sink_multiaddr (SocketConnection) or *_rdma_iface (RDMAConnection)",
            )),
        }
    }
}

/// One directed edge of the topology.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub source: NodeId,
    pub sink: NodeId,
    pub edge: Edge,
}

/// A directed multigraph of node ids; persistent (see the module docs).
///
/// Invariants: every endpoint of an edge is a node; no empty edge lists or sink maps are stored; `incoming` is
/// exactly the reverse of `outgoing` (it makes removing a node O(degree · log n)).
#[derive(Clone, Debug, Default)]
pub struct Topology {
    nodes: OrdSet<NodeId>,
    outgoing: OrdMap<NodeId, OrdMap<NodeId, Arc<[Edge]>>>,
    incoming: OrdMap<NodeId, OrdSet<NodeId>>,
}

impl PartialEq for Topology {
    fn eq(&self, other: &Self) -> bool {
        // `incoming` is derived from `outgoing`.
        self.ptr_eq(other) || (self.nodes == other.nodes && self.outgoing == other.outgoing)
    }
}

impl Eq for Topology {}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` if both share all their storage (a cheap "unchanged" test; equal contents may still differ).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.nodes.ptr_eq(&other.nodes)
            && self.outgoing.ptr_eq(&other.outgoing)
            && self.incoming.ptr_eq(&other.incoming)
    }

    /// The stored id equal to `node_id`, if it is a node. Using it as a key elsewhere shares one allocation per node
    /// (and its reference count) across all maps, which keeps persistent-map path copies cache-friendly.
    pub fn node(&self, node_id: &str) -> Option<&NodeId> {
        self.nodes.get(node_id)
    }

    /// `node_id`, or the equal stored id if it is a node (see [`Topology::node`]).
    pub fn canonical(&self, node_id: &NodeId) -> NodeId {
        self.nodes.get(node_id.as_str()).unwrap_or(node_id).clone()
    }

    /// Whether `node_id` is a node.
    pub fn contains(&self, node_id: &str) -> bool {
        self.nodes.contains(node_id)
    }

    /// Whether `node_id` is a node: [`Topology::contains`] for an id at hand, which compares faster than text.
    pub fn contains_id(&self, node_id: &NodeId) -> bool {
        self.nodes.contains(node_id)
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `true` if there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node, sorted by id.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeId> {
        self.nodes.iter()
    }

    /// The edges leaving `node_id`, by sink (sorted), parallel edges in canonical order.
    pub fn out_edges(&self, node_id: &str) -> impl Iterator<Item = (&NodeId, &Edge)> {
        self.outgoing.get(node_id).into_iter().flat_map(|sinks| {
            sinks
                .iter()
                .flat_map(|(sink, edges)| edges.iter().map(move |edge| (sink, edge)))
        })
    }

    /// Every edge, sorted by source then sink; parallel edges in canonical order.
    pub fn connections(&self) -> impl Iterator<Item = Connection> + '_ {
        self.outgoing.iter().flat_map(|(source, sinks)| {
            sinks.iter().flat_map(move |(sink, edges)| {
                edges.iter().map(move |edge| Connection {
                    source: source.clone(),
                    sink: sink.clone(),
                    edge: edge.clone(),
                })
            })
        })
    }

    /// The out-edges of `node_id` by sink (`None` if it has none); shared storage, so `ptr_eq` tells "unchanged".
    pub fn out_map(&self, node_id: &str) -> Option<&OrdMap<NodeId, Arc<[Edge]>>> {
        self.outgoing.get(node_id)
    }

    /// Distinct nodes that `node_id` has an edge to, sorted.
    pub fn successors(&self, node_id: &str) -> impl Iterator<Item = &NodeId> {
        self.outgoing.get(node_id).into_iter().flat_map(OrdMap::keys)
    }

    /// Whether the edge `source → sink` equal to `edge` exists.
    pub fn has_edge(&self, source: &str, sink: &str, edge: &Edge) -> bool {
        self.outgoing
            .get(source)
            .and_then(|sinks| sinks.get(sink))
            .is_some_and(|edges| edges.contains(edge))
    }

    /// Add a node; `false` (and nothing changes) if it was there.
    pub fn add_node(&mut self, node_id: &NodeId) -> bool {
        if self.nodes.contains(node_id) {
            return false;
        }
        self.nodes.insert(node_id.clone());
        true
    }

    /// Add a node unless it is there, and return the stored id (see [`Topology::canonical`]), in one lookup.
    pub fn add_node_canonical(&mut self, node_id: &NodeId) -> NodeId {
        if let Some(stored) = self.nodes.get(node_id) {
            return stored.clone();
        }
        self.nodes.insert(node_id.clone());
        node_id.clone()
    }

    /// Remove a node and every edge touching it; `false` if it was not there.
    pub fn remove_node(&mut self, node_id: &str) -> bool {
        if !self.nodes.contains(node_id) {
            return false;
        }
        self.nodes.remove(node_id);
        if let Some(sinks) = self.outgoing.remove(node_id) {
            for sink in sinks.keys() {
                self.unlink_incoming(sink, node_id);
            }
        }
        if let Some(sources) = self.incoming.remove(node_id) {
            for source in &sources {
                if let Some(sinks) = self.outgoing.get_mut(source.as_str()) {
                    sinks.remove(node_id);
                    if sinks.is_empty() {
                        self.outgoing.remove(source.as_str());
                    }
                }
            }
        }
        true
    }

    /// Add an edge (and its endpoints); `false` if an equal edge was there.
    pub fn add_connection(&mut self, conn: &Connection) -> bool {
        self.add_edge(&conn.source, &conn.sink, &conn.edge)
    }

    fn add_edge(&mut self, source: &NodeId, sink: &NodeId, edge: &Edge) -> bool {
        if self.has_edge(source, sink, edge) {
            return false;
        }
        self.add_node(source);
        self.add_node(sink);
        let (source, sink) = (self.canonical(source), self.canonical(sink));
        let sinks = self.outgoing.entry(source.clone()).or_default();
        let mut edges = sinks.get(sink.as_str()).map_or_else(Vec::new, |edges| edges.to_vec());
        let position = edges.binary_search(edge).unwrap_or_else(|position| position);
        edges.insert(position, edge.clone());
        sinks.insert(sink.clone(), Arc::from(edges));
        self.incoming.entry(sink).or_default().insert(source);
        true
    }

    /// Remove the edge equal to `conn` in that direction only; `false` if there was none.
    pub fn remove_connection(&mut self, conn: &Connection) -> bool {
        if !self.has_edge(&conn.source, &conn.sink, &conn.edge) {
            return false;
        }
        let Some(sinks) = self.outgoing.get_mut(conn.source.as_str()) else {
            return false;
        };
        let kept: Vec<Edge> = sinks
            .get(conn.sink.as_str())
            .into_iter()
            .flat_map(|edges| edges.iter())
            .filter(|e| **e != conn.edge)
            .cloned()
            .collect();
        if kept.is_empty() {
            sinks.remove(conn.sink.as_str());
            if sinks.is_empty() {
                self.outgoing.remove(conn.source.as_str());
            }
            self.unlink_incoming(&conn.sink, &conn.source);
        } else {
            sinks.insert(conn.sink.clone(), Arc::from(kept));
        }
        true
    }

    /// Replace every RDMA edge leaving `source` by `edges` (sink, edge), after adding `source`; socket edges stay.
    /// Returns `false`, leaving `self` untouched, when the result equals the old topology.
    pub fn set_rdma_out_edges(&mut self, source: &NodeId, edges: &[(NodeId, Edge)]) -> bool {
        let added_node = self.add_node(source);
        let old = self.outgoing.get(source.as_str()).cloned().unwrap_or_default();
        // Only sinks that hold an RDMA edge now or get one can change: rebuild just their lists.
        let mut lists: BTreeMap<NodeId, Vec<Edge>> = BTreeMap::new();
        for (sink, list) in &old {
            if list.iter().any(Edge::is_rdma) {
                lists.insert(
                    sink.clone(),
                    list.iter().filter(|edge| !edge.is_rdma()).cloned().collect(),
                );
            }
        }
        for (sink, edge) in edges {
            let list = lists
                .entry(sink.clone())
                .or_insert_with(|| old.get(sink.as_str()).map(|list| list.to_vec()).unwrap_or_default());
            if let Err(position) = list.binary_search(edge) {
                list.insert(position, edge.clone());
            }
        }
        let changed: Vec<(NodeId, Vec<Edge>)> = lists
            .into_iter()
            .filter(|(sink, list)| old.get(sink.as_str()).map_or(!list.is_empty(), |old| **old != **list))
            .collect();
        if changed.is_empty() {
            return added_node;
        }
        let mut sinks = old;
        for (sink, list) in changed {
            let existed = sinks.contains_key(sink.as_str());
            if list.is_empty() {
                sinks.remove(sink.as_str());
                self.unlink_incoming(&sink, source);
            } else {
                sinks.insert(sink.clone(), Arc::from(list));
                if !existed {
                    self.add_node(&sink);
                    self.incoming.entry(sink.clone()).or_default().insert(source.clone());
                }
            }
        }
        if sinks.is_empty() {
            self.outgoing.remove(source.as_str());
        } else {
            self.outgoing.insert(source.clone(), sinks);
        }
        true
    }

    fn unlink_incoming(&mut self, sink: &str, source: &str) {
        if let Some(sources) = self.incoming.get_mut(sink) {
            sources.remove(source);
            if sources.is_empty() {
                self.incoming.remove(sink);
            }
        }
    }
}

struct Connections<'a>(&'a OrdMap<NodeId, OrdMap<NodeId, Arc<[Edge]>>>);

impl Serialize for Connections<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (source, sinks) in self.0 {
            map.serialize_entry(source, &Sinks(sinks))?;
        }
        map.end()
    }
}

struct Sinks<'a>(&'a OrdMap<NodeId, Arc<[Edge]>>);

impl Serialize for Sinks<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (sink, edges) in self.0 {
            map.serialize_entry(sink, &**edges)?;
        }
        map.end()
    }
}

impl Serialize for Topology {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // exo's TopologySnapshot, a map so that camelCase dumps keep these keys (pydantic does not alias them).
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("nodes", &self.nodes)?;
        map.serialize_entry("connections", &Connections(&self.outgoing))?;
        map.end()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologySnapshot {
    nodes: Vec<NodeId>,
    connections: IndexMap<NodeId, IndexMap<NodeId, Vec<Edge>>>,
}

impl<'de> Deserialize<'de> for Topology {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let snapshot = TopologySnapshot::deserialize(deserializer)?;
        let mut topology = Self::new();
        for node in &snapshot.nodes {
            topology.add_node(node);
        }
        for (source, sinks) in &snapshot.connections {
            for (sink, edges) in sinks {
                for edge in edges {
                    topology.add_edge(source, sink, edge);
                }
            }
        }
        Ok(topology)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(address: &str) -> Edge {
        Edge::Socket(SocketConnection {
            sink_multiaddr: Multiaddr::new(address).unwrap(),
        })
    }

    fn rdma(a: &str, b: &str) -> Edge {
        Edge::Rdma(RdmaConnection {
            source_rdma_iface: a.into(),
            sink_rdma_iface: b.into(),
        })
    }

    fn conn(source: &str, sink: &str, edge: Edge) -> Connection {
        Connection {
            source: source.into(),
            sink: sink.into(),
            edge,
        }
    }

    fn json(topology: &Topology) -> String {
        serde_json::to_string(topology).unwrap()
    }

    #[test]
    fn multiaddr_validation() {
        // (address, Python's ip_address and port), checked against clusterstate.models.Multiaddr on Python 3.11.
        for (ok, ip, port) in [
            ("/ip4/1.2.3.4/tcp/80", "1.2.3.4", 80),
            ("/ip4/1.2.3.4/tcp/80\n", "1.2.3.4", 80),
            ("/ip4/0.0.0.0/tcp/00080", "0.0.0.0", 80),
            ("/ip6/::ffff:1.2.3.4/tcp/1", "::ffff:102:304", 1),
            ("/ip6/::1.2.3.4/tcp/1", "::102:304", 1),
            ("/ip6/FE80:0:0:0::1/tcp/1", "fe80::1", 1),
            ("/ip6/fe80::1%en0/tcp/1", "fe80::1%en0", 1),
            ("/ip6/1:0:0:2:0:0:0:3/tcp/1", "1:0:0:2::3", 1),
            ("/ip6/1:0:0:2:0:0:3:4/tcp/1", "1::2:0:0:3:4", 1),
            ("/ip6/0:0:0:0:0:0:0:0/tcp/1", "::", 1),
            ("/ip6/1:2:3:4:5:6:7::/tcp/1", "1:2:3:4:5:6:7:0", 1),
            ("/ip6/::1/tcp/1/p2p/Qm", "::1", 1),
            ("/ip6/0001:02::/tcp/1", "1:2::", 1),
            ("/ip6/1:2:3:4:5:6:1.2.3.4/tcp/1", "1:2:3:4:5:6:102:304", 1),
            ("/ip6/::ffff:0.0.0.0/tcp/1", "::ffff:0:0", 1),
            ("/ip4/10.0.0.2/tcp/65535", "10.0.0.2", 65535),
        ] {
            let addr = Multiaddr::new(ok).unwrap_or_else(|err| panic!("{err}"));
            assert_eq!((addr.ip_address(), addr.port()), (ip, port), "{ok:?}");
        }
        for bad in [
            "/ip4/01.2.3.4/tcp/80",
            "/ip6/1::2::3/tcp/1",
            "/ip4/256.1.1.1/tcp/1",
            "/ip6/fe80::1%/tcp/1",
            "/ip6/fe80::1%a%b/tcp/1",
            "/ip6/::ffff:1.2.3/tcp/1",
            "/ip6/12345::/tcp/1",
            "/ip6/1:2:3:4:5:6:7:8:9/tcp/1",
            "/dns/x/tcp/1",
            "/ip4/1.2.3/tcp/80",
            "/ip4/1.2.3.4/udp/80",
            "/ip4/1.2.3.4/tcp/65536",
            "/ip4/1.2.3.4/tcp/123456",
            "/ip4/1.2.3.4/tcp/",
            "/ip4/1.2.3.4/tcp/80/p2p/",
            "/ip4/1.2.3.4/tcp/80/p2p/a/b",
            "/ip4/1.2.3.4/tcp/80\n\n",
            "ip4/1.2.3.4/tcp/80",
            "/ip6/1.2.3.4/tcp/80",
            "/ip4/::1/tcp/80",
            "/ip6//tcp/80",
        ] {
            assert!(Multiaddr::new(bad).is_err(), "{bad:?}");
        }
        let addr: Multiaddr =
            serde_json::from_str(r#"{"address":"/ip4/1.2.3.4/tcp/80","port":7,"ip_address":null}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&addr).unwrap(),
            r#"{"address":"/ip4/1.2.3.4/tcp/80","address_type":"ip4","ip_address":"1.2.3.4","port":80}"#
        );
        assert!(serde_json::from_str::<Multiaddr>(r#"{"address":"/ip4/1.2.3.4/tcp/80","x":1}"#).is_err());
    }

    #[test]
    fn edges_are_told_apart_by_shape() {
        let edge: Edge = serde_json::from_str(r#"{"sinkMultiaddr":{"address":"/ip4/1.2.3.4/tcp/80"}}"#).unwrap();
        assert_eq!(edge, socket("/ip4/1.2.3.4/tcp/80"));
        let edge: Edge = serde_json::from_str(r#"{"source_rdma_iface":"a","sinkRdmaIface":"b"}"#).unwrap();
        assert_eq!(edge, rdma("a", "b"));
        assert_eq!(
            serde_json::to_string(&edge).unwrap(),
            r#"{"source_rdma_iface":"a","sink_rdma_iface":"b"}"#
        );
        for bad in [
            "{}",
            r#"{"source_rdma_iface":"a"}"#,
            r#"{"sink_multiaddr":null,"source_rdma_iface":"a","sink_rdma_iface":"b"}"#,
            r#"{"sink_multiaddr":{"address":"/ip4/1.2.3.4/tcp/80"},"sink_rdma_iface":"b"}"#,
            r#"{"SocketConnection":{"sink_multiaddr":{"address":"/ip4/1.2.3.4/tcp/80"}}}"#,
        ] {
            assert!(serde_json::from_str::<Edge>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn add_and_remove() {
        let mut t = Topology::new();
        assert!(t.add_connection(&conn("b", "a", rdma("x", "y"))));
        assert!(t.add_connection(&conn("b", "a", socket("/ip4/1.1.1.1/tcp/1"))));
        assert!(!t.add_connection(&conn("b", "a", socket("/ip4/1.1.1.1/tcp/1"))));
        assert!(t.add_connection(&conn("a", "c", rdma("x", "y"))));
        assert_eq!(
            json(&t),
            r#"{"nodes":["a","b","c"],"connections":{"a":{"c":[{"source_rdma_iface":"x","sink_rdma_iface":"y"}]},"b":{"a":[{"sink_multiaddr":{"address":"/ip4/1.1.1.1/tcp/1","address_type":"ip4","ip_address":"1.1.1.1","port":1}},{"source_rdma_iface":"x","sink_rdma_iface":"y"}]}}}"#
        );
        let before = t.clone();
        assert!(!t.remove_connection(&conn("a", "b", rdma("x", "y"))));
        assert!(t.ptr_eq(&before));
        assert!(t.remove_node("a"));
        assert_eq!(json(&t), r#"{"nodes":["b","c"],"connections":{}}"#);
        assert!(!t.remove_node("a"));
        // The old value is untouched.
        assert_eq!(before.len(), 3);
        let back: Topology = serde_json::from_str(&json(&before)).unwrap();
        assert_eq!(back, before);
        assert_eq!(json(&back), json(&before));
    }

    #[test]
    fn rdma_out_edges_are_replaced() {
        let mut t = Topology::new();
        t.add_connection(&conn("a", "b", rdma("1", "2")));
        t.add_connection(&conn("a", "b", socket("/ip4/1.1.1.1/tcp/1")));
        t.add_connection(&conn("a", "c", rdma("3", "4")));
        let before = t.clone();
        // The same RDMA edges again: no change, and the storage is still shared.
        assert!(!t.set_rdma_out_edges(
            &"a".into(),
            &[("c".into(), rdma("3", "4")), ("b".into(), rdma("1", "2"))]
        ));
        assert!(t.ptr_eq(&before));
        assert!(t.set_rdma_out_edges(
            &"a".into(),
            &[("b".into(), rdma("0", "2")), ("c".into(), rdma("3", "4"))]
        ));
        assert_ne!(t, before);
        assert_eq!(
            serde_json::to_string(&t.out_edges("a").map(|(_, e)| e.clone()).collect::<Vec<_>>()).unwrap(),
            r#"[{"sink_multiaddr":{"address":"/ip4/1.1.1.1/tcp/1","address_type":"ip4","ip_address":"1.1.1.1","port":1}},{"source_rdma_iface":"0","sink_rdma_iface":"2"},{"source_rdma_iface":"3","sink_rdma_iface":"4"}]"#
        );
        assert!(t.set_rdma_out_edges(&"a".into(), &[]));
        assert_eq!(t.successors("a").map(NodeId::as_str).collect::<Vec<_>>(), ["b"]);
        assert!(t.remove_node("b"));
        assert_eq!(t.out_edges("a").count(), 0);
    }
}
