//! Events and their envelopes (`python/clusterstate/models/events.py`).
//!
//! Changes from exo, as in the Python models: `NodeGatheredInfo` has no `when` (a legacy `when` is accepted and
//! dropped); `NodeDisconnected{node_id, last_index, stale_cycles}` replaces `NodeTimedOut` (which still decodes);
//! `IndexedEvent{idx, origin, event}` records which node produced the event.

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{CommandId, EventId, InstanceId, NodeId, RunnerId, TaskId};
use crate::json::{TagSet, TaggedJson};
use crate::profiling::GatheredInfo;
use crate::topology::Connection;
use crate::work::{DownloadProgress, Instance, RunnerStatus, Task, TaskStatus};

/// The tags of [`GenerationChunk`].
#[derive(Debug)]
pub enum GenerationChunkTags {}

impl TagSet for GenerationChunkTags {
    const TAGS: &'static [&'static str] = &["TokenChunk", "ImageChunk", "ToolCallChunk", "ErrorChunk"];
}

/// A generated token, tool call, image piece or error; opaque to the reducer.
pub type GenerationChunk = TaggedJson<GenerationChunkTags>;

/// The tag of [`InputImageChunk`].
#[derive(Debug)]
pub enum InputImageChunkTags {}

impl TagSet for InputImageChunkTags {
    const TAGS: &'static [&'static str] = &["InputImageChunk"];
}

/// A piece of an input image for an edit request; opaque to the reducer.
pub type InputImageChunk = TaggedJson<InputImageChunkTags>;

/// Declares an event struct: `event_id` (a fresh uuid4 when absent) first, then the given fields.
macro_rules! event_struct {
    ($(#[$doc:meta])* $name:ident { $($(#[$fattr:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(default = "EventId::new_random", alias = "eventId")]
            pub event_id: EventId,
            $($(#[$fattr])* pub $field: $ty,)*
        }
    };
}

event_struct!(
    /// `TestEvent`: carries nothing.
    TestEvent {}
);
event_struct!(
    /// `TaskCreated`.
    TaskCreated {
        #[serde(alias = "taskId")]
        task_id: TaskId,
        task: Task,
    }
);
event_struct!(
    /// `TaskStatusUpdated`.
    TaskStatusUpdated {
        #[serde(alias = "taskId")]
        task_id: TaskId,
        #[serde(alias = "taskStatus")]
        task_status: TaskStatus,
    }
);
event_struct!(
    /// `TaskFailed`.
    TaskFailed {
        #[serde(alias = "taskId")]
        task_id: TaskId,
        #[serde(alias = "errorType")]
        error_type: String,
        #[serde(alias = "errorMessage")]
        error_message: String,
    }
);
event_struct!(
    /// `TaskDeleted`.
    TaskDeleted {
        #[serde(alias = "taskId")]
        task_id: TaskId,
    }
);
event_struct!(
    /// `TaskAcknowledged`.
    TaskAcknowledged {
        #[serde(alias = "taskId")]
        task_id: TaskId,
    }
);
event_struct!(
    /// `InstanceCreated`.
    InstanceCreated {
        instance: Instance,
    }
);
event_struct!(
    /// `InstanceDeleted`.
    InstanceDeleted {
        #[serde(alias = "instanceId")]
        instance_id: InstanceId,
    }
);
event_struct!(
    /// `RunnerStatusUpdated`.
    RunnerStatusUpdated {
        #[serde(alias = "runnerId")]
        runner_id: RunnerId,
        #[serde(alias = "runnerStatus")]
        runner_status: RunnerStatus,
    }
);
event_struct!(
    /// `RunnerDeleted`.
    RunnerDeleted {
        #[serde(alias = "runnerId")]
        runner_id: RunnerId,
    }
);
event_struct!(
    /// Legacy exo event: decodes and applies like [`NodeDisconnected`] without evidence.
    NodeTimedOut {
        #[serde(alias = "nodeId")]
        node_id: NodeId,
    }
);

/// Deserialises a required event index that may be `null` (serde would otherwise default a missing `Option` to
/// `None`), in `0..=i64::MAX` like every index.
fn required_index<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct Index(u64);
    impl<'de> Deserialize<'de> for Index {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            crate::state::index(deserializer).map(Index)
        }
    }
    Ok(Option::<Index>::deserialize(deserializer)?.map(|index| index.0))
}

event_struct!(
    /// The master declared a node gone because its event index stopped advancing.
    ///
    /// `last_index` is the global index of the node's last event (`None` for a node never heard from);
    /// `stale_cycles` is how many consecutive plan cycles saw no progress.
    NodeDisconnected {
        #[serde(alias = "nodeId")]
        node_id: NodeId,
        #[serde(alias = "lastIndex", deserialize_with = "required_index")]
        last_index: Option<u64>,
        #[serde(alias = "staleCycles")]
        stale_cycles: u64,
    }
);

/// One hardware sample from a node's gatherer. No `when` (no wall clock in events); a legacy `when` is dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "NodeGatheredInfoInput")]
pub struct NodeGatheredInfo {
    pub event_id: EventId,
    pub node_id: NodeId,
    pub info: GatheredInfo,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeGatheredInfoInput {
    #[serde(default = "EventId::new_random", alias = "eventId")]
    event_id: EventId,
    #[serde(alias = "nodeId")]
    node_id: NodeId,
    info: GatheredInfo,
    /// Read under the payload rules (`crate::json::payload`) and dropped.
    #[serde(default, deserialize_with = "crate::json::payload::ignored")]
    #[allow(dead_code)]
    when: (),
}

impl From<NodeGatheredInfoInput> for NodeGatheredInfo {
    fn from(input: NodeGatheredInfoInput) -> Self {
        Self {
            event_id: input.event_id,
            node_id: input.node_id,
            info: input.info,
        }
    }
}

event_struct!(
    /// `NodeDownloadProgress`.
    NodeDownloadProgress {
        #[serde(alias = "downloadProgress")]
        download_progress: DownloadProgress,
    }
);
event_struct!(
    /// `ChunkGenerated`: streamed to clients, never part of State.
    ChunkGenerated {
        #[serde(alias = "commandId")]
        command_id: CommandId,
        chunk: GenerationChunk,
    }
);
event_struct!(
    /// `InputChunkReceived`: streamed, never part of State.
    InputChunkReceived {
        #[serde(alias = "commandId")]
        command_id: CommandId,
        chunk: InputImageChunk,
    }
);
event_struct!(
    /// `TopologyEdgeCreated`.
    TopologyEdgeCreated {
        conn: Connection,
    }
);
event_struct!(
    /// `TopologyEdgeDeleted`.
    TopologyEdgeDeleted {
        conn: Connection,
    }
);

/// One trace span of a runner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEventData {
    pub name: String,
    #[serde(alias = "startUs")]
    pub start_us: i64,
    #[serde(alias = "durationUs")]
    pub duration_us: i64,
    pub rank: i64,
    pub category: String,
}

event_struct!(
    /// `TracesCollected`.
    TracesCollected {
        #[serde(alias = "taskId")]
        task_id: TaskId,
        rank: i64,
        traces: Vec<TraceEventData>,
    }
);
event_struct!(
    /// `TracesMerged`.
    TracesMerged {
        #[serde(alias = "taskId")]
        task_id: TaskId,
        traces: Vec<TraceEventData>,
    }
);

/// Declares [`Event`] from one list of `Tag(payload)` variants, and with it [`Event::TAGS`], [`Event::tag`] and
/// [`Event::event_id`]: adding an event kind touches only the `events!` list below (every payload has an
/// `event_id`: declare it with `event_struct!`).
macro_rules! events {
    ($(#[$meta:meta])* $($tag:ident($payload:ty),)+) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum Event {
            $($tag($payload),)+
        }

        impl Event {
            /// Every event tag, in the union's order (`tag()` gives one event's).
            pub const TAGS: &'static [&'static str] = &[$(stringify!($tag)),+];

            /// The event's tag, e.g. `"NodeGatheredInfo"`.
            pub fn tag(&self) -> &'static str {
                match self {
                    $(Self::$tag(_) => stringify!($tag),)+
                }
            }

            /// The `event_id` every event carries.
            pub fn event_id(&self) -> &EventId {
                match self {
                    $(Self::$tag(event) => &event.event_id,)+
                }
            }
        }
    };
}

events! {
    /// Any event. Externally tagged: `{"NodeGatheredInfo": {...}}`. The three large, rare payloads are boxed, so an
    /// `Event` is 160 bytes rather than 288: every decode and apply moves events around, and heartbeats are most of
    /// them.
    TestEvent(TestEvent),
    TaskCreated(Box<TaskCreated>),
    TaskStatusUpdated(TaskStatusUpdated),
    TaskFailed(TaskFailed),
    TaskDeleted(TaskDeleted),
    TaskAcknowledged(TaskAcknowledged),
    InstanceCreated(Box<InstanceCreated>),
    InstanceDeleted(InstanceDeleted),
    RunnerStatusUpdated(RunnerStatusUpdated),
    RunnerDeleted(RunnerDeleted),
    NodeTimedOut(NodeTimedOut),
    NodeDisconnected(NodeDisconnected),
    NodeGatheredInfo(NodeGatheredInfo),
    NodeDownloadProgress(Box<NodeDownloadProgress>),
    ChunkGenerated(ChunkGenerated),
    InputChunkReceived(InputChunkReceived),
    TopologyEdgeCreated(TopologyEdgeCreated),
    TopologyEdgeDeleted(TopologyEdgeDeleted),
    TracesCollected(TracesCollected),
    TracesMerged(TracesMerged),
}

impl Event {
    /// The node a node-scoped event is about, which is also the node that produced it: the sampled node, the
    /// downloading node, the source of a reachability edge. `None` for the other events (`NodeDisconnected` is
    /// about a node but made by the master).
    pub fn scoped_node(&self) -> Option<&NodeId> {
        match self {
            Self::NodeGatheredInfo(event) => Some(&event.node_id),
            Self::NodeDownloadProgress(event) => Some(event.download_progress.node_id()),
            Self::TopologyEdgeCreated(TopologyEdgeCreated { conn, .. })
            | Self::TopologyEdgeDeleted(TopologyEdgeDeleted { conn, .. }) => Some(&conn.source),
            _ => None,
        }
    }
}

/// An event with its global index and the node that produced it (`None` if unknown).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexedEvent {
    /// The global index, in `0..=i64::MAX` (the State counts applied events in an `i64`).
    #[serde(deserialize_with = "crate::state::index")]
    pub idx: u64,
    #[serde(default)]
    pub origin: Option<NodeId>,
    pub event: Event,
}

impl IndexedEvent {
    /// The node whose liveness this event proves (`origin_node` in the Python models).
    ///
    /// The envelope's `origin` when present; otherwise (exo-shaped input) the producer named inside the event: the
    /// sampled node, the downloading node, or the source of a reachability edge. An event *about* a node that the
    /// node did not produce (`NodeDisconnected`) names no producer.
    pub fn origin_node(&self) -> Option<&NodeId> {
        self.origin.as_ref().or_else(|| self.event.scoped_node())
    }
}

/// A master's term: the elected node and the election clock it won at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionId {
    #[serde(alias = "masterNodeId")]
    pub master_node_id: NodeId,
    #[serde(alias = "electionClock")]
    pub election_clock: u64,
}

/// exo's envelope on the wire: a producer's counter (`local_events`) or the global index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwarderEvent {
    #[serde(alias = "originIdx")]
    pub origin_idx: u64,
    pub origin: NodeId,
    pub session: SessionId,
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stays_small() {
        // Large, rare payloads are boxed (see `Event`); a new large variant should be boxed too.
        assert!(
            std::mem::size_of::<Event>() <= 160,
            "{} bytes",
            std::mem::size_of::<Event>()
        );
    }

    fn decode(text: &str) -> Result<IndexedEvent, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn tags_are_exactly_the_variants() {
        for tag in Event::TAGS {
            let err = serde_json::from_str::<Event>(&format!(r#"{{"{tag}":{{"x":1}}}}"#)).unwrap_err();
            assert!(!err.to_string().contains("unknown variant"), "{tag}: {err}");
        }
        let err = serde_json::from_str::<Event>(r#"{"Nope":{}}"#).unwrap_err().to_string();
        let listed = Event::TAGS.iter().all(|tag| err.contains(&format!("`{tag}`")));
        assert!(err.contains("unknown variant") && listed, "{err}");
    }

    #[test]
    fn legacy_when_is_dropped() {
        let event = decode(
            r#"{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","when":"2024","info":{"NodeConfig":{}}}}}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"idx":0,"origin":null,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","info":{"NodeConfig":{}}}}}"#
        );
        assert_eq!(event.origin_node().map(NodeId::as_str), Some("n"));
    }

    #[test]
    fn node_disconnected_needs_last_index() {
        assert!(
            decode(r#"{"idx":0,"event":{"NodeDisconnected":{"event_id":"e","node_id":"n","stale_cycles":1}}}"#)
                .is_err()
        );
        let event = decode(
            r#"{"idx":0,"event":{"NodeDisconnected":{"event_id":"e","node_id":"n","last_index":null,"staleCycles":1}}}"#,
        )
        .unwrap();
        assert_eq!(event.origin_node(), None);
        assert!(decode(r#"{"idx":0,"event":{"NodeTimedOut":{"event_id":"e","nodeId":"n"}}}"#).is_ok());
        let last = |index: u64| {
            decode(&format!(
                r#"{{"idx":0,"event":{{"NodeDisconnected":{{"event_id":"e","node_id":"n","last_index":{index},"stale_cycles":1}}}}}}"#
            ))
        };
        assert!(last(i64::MAX.unsigned_abs()).is_ok());
        assert!(last(i64::MAX.unsigned_abs() + 1).is_err());
    }

    #[test]
    fn bad_events_are_refused() {
        for bad in [
            r#"{"idx":-1,"event":{"TestEvent":{}}}"#,
            r#"{"idx":1.0,"event":{"TestEvent":{}}}"#,
            r#"{"idx":0,"event":{"Nope":{}}}"#,
            r#"{"idx":0,"event":{"TestEvent":{"TestEvent":{}}}}"#,
            r#"{"idx":0,"event":{"TestEvent":{},"TaskDeleted":{}}}"#,
            r#"{"idx":0,"event":{"TestEvent":{}},"x":1}"#,
            r#"{"idx":0,"event":{"TaskStatusUpdated":{"task_id":"t","task_status":"Pending","taskStatus":"Failed"}}}"#,
            r#"{"idx":0}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
