//! [`RecentIds`]: the `event_id`s of the last records of the log a master was reopened from, so that an event
//! applied and logged just before a crash, whose acknowledgement was lost, is not applied a second time when its
//! producer resends it to the new master (under the new session, with a new sequence number).

use std::collections::HashSet;

use crate::codec;
use crate::events::Event;
use crate::ids::EventId;
use crate::log::{EventLog, LogError, LogResult};

/// How many of the log's last records a reopened master remembers the `event_id` of, by default.
pub const DEFAULT_DEDUP_WINDOW: usize = 65_536;

/// A fixed set of `event_id`s, loaded once when a master is reopened and never grown: memory is bounded by the
/// window (about 100 bytes an id), and a fresh master (no log, or an empty one) pays one empty-set check per event.
///
/// Why only at reopen: within one master's life the producers' sequence numbers already make delivery exactly
/// once; the ids only bridge the restart, where the producers renumber their pending events under the new session.
#[derive(Clone, Debug, Default)]
pub struct RecentIds {
    ids: HashSet<EventId>,
}

impl RecentIds {
    /// The ids of the last `window` records of `log` (fewer if the log is shorter).
    pub fn load(log: &mut EventLog, window: usize) -> LogResult<Self> {
        let next = log.next_index();
        let window = u64::try_from(window).unwrap_or(u64::MAX);
        let start = next.saturating_sub(window).max(log.first_index());
        let mut ids = HashSet::with_capacity(usize::try_from(next - start).unwrap_or(0));
        let mut reader = log.reader(start, next)?;
        let mut payload = Vec::new();
        while let Some((idx, offset)) = reader.next_record(&mut payload)? {
            let event = codec::decode_indexed_event(&payload).map_err(|err| {
                LogError::corrupted(
                    &reader.segment().unwrap_or_default(),
                    offset,
                    format!("record {idx} does not decode: {err}"),
                )
            })?;
            ids.insert(event.event.event_id().clone());
        }
        Ok(Self { ids })
    }

    /// Whether `event` was in the window.
    pub fn contains(&self, event: &Event) -> bool {
        !self.ids.is_empty() && self.ids.contains(event.event_id())
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// `true` when no id is remembered (a master that was not reopened from a log).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}
