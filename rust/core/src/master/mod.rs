//! The master's ingest path (issue 6, first slice): local-event envelopes in, indexed and applied global events out.
//!
//! - [`LocalEnvelope`]: what a producer sends the master (documented in `docs/master.md`).
//! - [`Resequencer`]: one producer's bounded, total reordering buffer (exo's `OrderedBuffer`, exo-core.md §6.6).
//! - [`MasterCore`]: session, State, next global index, one buffer per producer, [`Counters`].
//!
//! ```
//! use clusterstate_core::events::SessionId;
//! use clusterstate_core::master::MasterCore;
//!
//! let session = SessionId { master_node_id: "m".into(), election_clock: 1 };
//! let mut master = MasterCore::new(session);
//! let envelope = |idx: u64, id: &str| {
//!     format!(r#"{{"origin":"p","origin_idx":{idx},"session":{{"master_node_id":"m","election_clock":1}},"event":{{"TestEvent":{{"event_id":"{id}"}}}},"node_id":"n"}}"#)
//! };
//! let out = master.ingest(&[envelope(1, "b"), envelope(0, "a"), envelope(0, "a")]); // out of order, a copy
//! assert_eq!(out.broadcast.len(), 2);
//! assert_eq!(out.broadcast[0], br#"{"idx":0,"origin":"n","event":{"TestEvent":{"event_id":"a"}}}"#);
//! assert_eq!(master.counters().duplicates, 1);
//! assert_eq!(master.next_index(), 2);
//! ```
//!
//! Not here yet: the event log (the master does not append what it applies), the staleness tracker's
//! `plan_cycle`, catch-up pages, and the receiving and producing sides.

mod counters;
mod ingest;
mod resequence;

pub use counters::{Counters, RejectReason};
pub use ingest::{IngestOutcome, LocalEnvelope, MasterCore, ProducerId, DEFAULT_CAPACITY};
pub use resequence::{Offer, Resequencer};
