//! The master's ingest path: local-event envelopes in, indexed and applied global events out.
//!
//! - [`MasterCore`]: session, State, next global index, one [`Resequencer`](crate::resequence::Resequencer) per
//!   producer, [`Counters`], the staleness tracker, optionally the event log. Its input is
//!   [`LocalEnvelope`](crate::envelope::LocalEnvelope) bytes (documented in `docs/master.md`); the producer side
//!   that sends them is [`ProducerOutbox`](crate::producer::ProducerOutbox).
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
//! With an [`EventLog`](crate::log::EventLog) ([`MasterCore::open`]) every applied event is logged first
//! ([`LogFailure`] when the log refuses), [`MasterCore::plan_cycle`] turns the staleness tracker's decisions into
//! `NodeDisconnected` events through the same path, and [`MasterCore::events_since`] serves catch-up pages.
//! A reopened master remembers the `event_id`s of the log's last records ([`RecentIds`]) to stay exactly once
//! across the restart.

mod counters;
mod error;
mod ingest;
pub(crate) mod log_slot;
mod recent;

pub use counters::{Counters, RejectReason};
pub use error::{LogFailure, MasterError};
pub use ingest::{CycleResult, IngestResult, MasterCore, MasterOptions, MAX_PAGE};
pub use recent::{RecentIds, DEFAULT_DEDUP_WINDOW};
