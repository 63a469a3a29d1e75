//! Pure-Rust state core of `clusterstate`, the event-sourced store of a cluster master.
//!
//! This crate knows nothing about Python: the `PyO3` bindings live in the `clusterstate-py` crate, which exposes it as
//! `clusterstate._core`. It holds the event and [`State`] types (the same JSON as the pydantic models, byte for
//! byte), and the reducer [`apply()`], rule for rule the Python reference (`clusterstate.reference.apply`).
//!
//! - [`events`], [`profiling`], [`topology`], [`work`], [`state`]: the types, one module per Python models module;
//!   [`ids`]: the id newtypes (shared `Arc<str>`). [`Event`] is declared from one list of variants, which also
//!   gives [`Event::TAGS`], [`Event::tag`] and [`Event::event_id`].
//! - [`apply()`], [`fold`], [`replay`]: the reducer; [`cycles`]: the Thunderbolt-bridge cycles it derives.
//! - [`codec`]: bytes to types with a [`DecodeError`], types to pydantic's bytes; [`json`]: the float layout and
//!   opaque payloads; [`case`]: the camelCase (`by_alias=True`) form.
//! - [`error`]: [`ApplyError`] (a wrong index), [`DecodeError`]; the other components have their error type in
//!   their module ([`log::LogError`], [`master::MasterError`], [`producer::OutboxError`], [`liveness::TrackerError`]).
//! - [`liveness`]: the [`StalenessTracker`] and its [`NodeStaleness`] decisions (event-index liveness,
//!   `docs/liveness.md`).
//! - [`log`]: the crash-safe event log: checksummed segments, recovery, snapshots, replay (`docs/log-format.md`).
//! - The ingest protocol, shared by master, producers and nodes:
//!   - [`envelope`]: the wire types, a producer's [`envelope::LocalEnvelope`] (with its
//!     [`envelope::ProducerId`]) and the master's [`envelope::Gap`] reports;
//!   - [`resequence`]: the [`resequence::Resequencer`], a bounded buffer releasing items strictly in sequence
//!     (per producer at the master, by global index at a node);
//!   - [`producer`]: the [`ProducerOutbox`], one producer instance's sequencer, kept until acknowledged and
//!     resent when due.
//! - [`master`]: the master's ingest path: envelope bytes resequenced per producer, indexed, logged and applied
//!   by [`master::MasterCore`], its plan cycle and catch-up pages (`docs/master.md`).
//! - [`node`]: the receiving side every node runs: [`NodeCore`] keeps a node's State from the master's broadcast,
//!   resequenced by global index, and says from where to fetch what it missed (`docs/node.md`).
//!
//! The golden traces in `tests/data/golden/` (written by `tests/golden.py` from the Python reference) are replayed
//! by `rust/core/tests/golden.rs`: every event re-encodes byte for byte and every intermediate State matches.
//!
//! ```
//! use clusterstate_core::{apply, codec, json::Case, State};
//!
//! let line = br#"{"idx":0,"origin":null,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","info":{"MiscData":{"friendly_name":"mac"}}}}}"#;
//! let event = codec::decode_indexed_event(line).unwrap();
//! let state = apply(&State::default(), &event).unwrap();
//! assert_eq!(state.node_identities["n"].friendly_name, "mac");
//! assert_eq!(codec::encode(&event, Case::Snake), line); // re-encodes byte for byte
//! ```
#![forbid(unsafe_code)]

pub mod apply;
pub mod case;
pub mod codec;
pub mod cycles;
pub mod envelope;
pub mod error;
pub mod events;
pub mod ids;
pub mod json;
pub mod liveness;
pub mod log;
pub mod master;
pub mod node;
pub mod producer;
pub mod profiling;
pub mod resequence;
pub mod state;
pub mod topology;
pub mod work;

pub use apply::{apply, apply_mut, fold, replay};
pub use error::{ApplyError, DecodeError};
pub use events::{Event, IndexedEvent};
pub use ids::{CommandId, EventId, InstanceId, ModelId, NodeId, RunnerId, TaskId};
pub use liveness::{NodeStaleness, StalenessTracker};
pub use node::NodeCore;
pub use producer::ProducerOutbox;
pub use state::State;
pub use topology::Topology;

/// Version of this crate, which is also the version of the `clusterstate` Python package.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
