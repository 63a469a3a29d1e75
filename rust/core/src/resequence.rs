//! [`Resequencer`]: one producer's reordering buffer, exo's `OrderedBuffer` (`src/exo/utils/event_buffer.py`) made total.
//!
//! Items arrive with the producer's sequence number (`0, 1, 2, ...`) in any order, possibly duplicated; they are
//! released strictly in sequence, each exactly once. Where exo drops stale items silently, asserts on a conflicting
//! duplicate and grows without bound, this buffer reports every case as an [`Offer`] and never panics:
//!
//! - an index below the next one to release is [`Offer::Stale`] (already released: a resend or a replay);
//! - an index already buffered with an equal item is [`Offer::Duplicate`]; with a *different* item it is
//!   [`Offer::Conflict`] and the buffered item is kept;
//! - an index `capacity` or more ahead of the next one is [`Offer::Full`]: the buffer never holds more than
//!   `capacity` items, and the producer has to resend it once the gap is filled.

use std::collections::BTreeMap;

/// How many items a [`Resequencer`] holds at most, by default: the master's bound per producer and the node's
/// bound on events ahead of its next index.
pub const DEFAULT_CAPACITY: usize = 4096;

/// What [`Resequencer::offer`] did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Stored; [`Resequencer::pop_ready`] releases it once every earlier index is released.
    Accepted,
    /// The index was already released: dropped.
    Stale,
    /// The same item is already buffered at this index: dropped.
    Duplicate,
    /// A different item is already buffered at this index: dropped, the buffered one is kept.
    Conflict,
    /// The index is `capacity` or more ahead of the next one to release: dropped.
    Full,
}

/// One producer's resequencing buffer (see the module documentation).
#[derive(Clone, Debug)]
pub struct Resequencer<T> {
    next: u64,
    capacity: u64,
    store: BTreeMap<u64, T>,
}

impl<T: PartialEq> Resequencer<T> {
    /// An empty buffer expecting index 0 that holds at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self::starting_at(0, capacity)
    }

    /// An empty buffer expecting `next` (e.g. a producer whose earlier items are known to be released).
    pub fn starting_at(next: u64, capacity: usize) -> Self {
        Self {
            next,
            capacity: u64::try_from(capacity.max(1)).unwrap_or(u64::MAX),
            store: BTreeMap::new(),
        }
    }

    /// Offer `item` at sequence number `idx`.
    pub fn offer(&mut self, idx: u64, item: T) -> Offer {
        if idx < self.next {
            return Offer::Stale;
        }
        if idx - self.next >= self.capacity {
            return Offer::Full;
        }
        match self.store.get(&idx) {
            Some(held) if *held == item => Offer::Duplicate,
            Some(_) => Offer::Conflict,
            None => {
                self.store.insert(idx, item);
                Offer::Accepted
            }
        }
    }

    /// Release the next item if it is buffered.
    pub fn pop_ready(&mut self) -> Option<(u64, T)> {
        let item = self.store.remove(&self.next)?;
        let idx = self.next;
        self.next += 1;
        Some((idx, item))
    }

    /// Release every item that is ready, in order.
    pub fn drain(&mut self) -> Vec<(u64, T)> {
        std::iter::from_fn(|| self.pop_ready()).collect()
    }

    /// The next index to release (every index below it has been released).
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// How many items wait for an earlier one.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// `true` when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The lowest missing index when items wait behind a gap (the one to ask the producer for).
    pub fn gap(&self) -> Option<u64> {
        (!self.store.is_empty() && !self.store.contains_key(&self.next)).then_some(self.next)
    }

    /// The highest index buffered (`None` when nothing waits).
    pub fn highest(&self) -> Option<u64> {
        self.store.last_key_value().map(|(idx, _)| *idx)
    }

    /// Move back to `next` because the items released from `next` on could not be used (the master's event log
    /// refused them): they count as never received, so the producer's resend is accepted again instead of being
    /// taken for a stale copy. Buffered items are kept. A `next` at or above the current one changes nothing.
    pub fn rewind_to(&mut self, next: u64) {
        self.next = self.next.min(next);
    }

    /// Skip ahead to `next` because every index below it was released by other means (a node adopting a snapshot
    /// State): the buffered items below `next` are dropped, and their count returned. A `next` at or below the
    /// current one changes nothing (the buffer never moves back).
    pub fn advance_to(&mut self, next: u64) -> usize {
        if next <= self.next {
            return 0;
        }
        let kept = self.store.split_off(&next);
        let dropped = std::mem::replace(&mut self.store, kept).len();
        self.next = next;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(buffer: &mut Resequencer<&'static str>) -> Vec<(u64, &'static str)> {
        buffer.drain()
    }

    #[test]
    fn in_order() {
        let mut buffer = Resequencer::new(8);
        for (idx, item) in [(0, "a"), (1, "b"), (2, "c")] {
            assert_eq!(buffer.offer(idx, item), Offer::Accepted);
            assert_eq!(buffer.pop_ready(), Some((idx, item)));
        }
        assert_eq!(buffer.next_index(), 3);
        assert!(buffer.is_empty());
    }

    #[test]
    fn out_of_order() {
        let mut buffer = Resequencer::new(8);
        assert_eq!(buffer.offer(2, "c"), Offer::Accepted);
        assert_eq!(buffer.offer(1, "b"), Offer::Accepted);
        assert!(released(&mut buffer).is_empty());
        assert_eq!(buffer.len(), 2);
        assert_eq!(buffer.offer(0, "a"), Offer::Accepted);
        assert_eq!(released(&mut buffer), vec![(0, "a"), (1, "b"), (2, "c")]);
        assert!(buffer.is_empty());
    }

    #[test]
    fn gap_then_fill() {
        let mut buffer = Resequencer::new(8);
        buffer.offer(0, "a");
        buffer.offer(2, "c");
        buffer.offer(3, "d");
        assert_eq!(released(&mut buffer), vec![(0, "a")]);
        assert_eq!((buffer.gap(), buffer.highest()), (Some(1), Some(3)));
        buffer.offer(1, "b");
        assert_eq!(buffer.gap(), None);
        assert_eq!(released(&mut buffer), vec![(1, "b"), (2, "c"), (3, "d")]);
        assert_eq!(buffer.next_index(), 4);
    }

    #[test]
    fn stale_is_dropped() {
        let mut buffer = Resequencer::new(8);
        buffer.offer(0, "a");
        released(&mut buffer);
        assert_eq!(buffer.offer(0, "a"), Offer::Stale);
        assert_eq!(buffer.offer(0, "other"), Offer::Stale);
        assert!(buffer.is_empty());
        assert_eq!(buffer.next_index(), 1);
    }

    #[test]
    fn duplicate_same_and_different() {
        let mut buffer = Resequencer::new(8);
        assert_eq!(buffer.offer(1, "b"), Offer::Accepted);
        assert_eq!(buffer.offer(1, "b"), Offer::Duplicate);
        assert_eq!(buffer.offer(1, "x"), Offer::Conflict);
        assert_eq!(buffer.len(), 1);
        buffer.offer(0, "a");
        assert_eq!(released(&mut buffer), vec![(0, "a"), (1, "b")]); // the first item is kept
    }

    #[test]
    fn bound() {
        let mut buffer = Resequencer::new(3);
        assert_eq!(buffer.offer(3, "d"), Offer::Full);
        assert_eq!(buffer.offer(u64::MAX, "z"), Offer::Full);
        assert_eq!(buffer.offer(2, "c"), Offer::Accepted);
        assert_eq!(buffer.offer(1, "b"), Offer::Accepted);
        assert_eq!(buffer.len(), 2);
        assert_eq!(buffer.offer(0, "a"), Offer::Accepted);
        assert_eq!(buffer.len(), 3);
        assert_eq!(released(&mut buffer).len(), 3);
        assert_eq!(buffer.offer(3, "d"), Offer::Accepted); // the window moved
        assert_eq!(buffer.offer(5, "f"), Offer::Accepted);
        assert_eq!(buffer.offer(6, "g"), Offer::Full);
        let mut zero = Resequencer::new(0); // a capacity of 0 is 1
        assert_eq!(zero.offer(1, "b"), Offer::Full);
        assert_eq!(zero.offer(0, "a"), Offer::Accepted);
    }

    #[test]
    fn advance_to_drops_below_and_keeps_above() {
        let mut buffer = Resequencer::new(8);
        for (idx, item) in [(1, "b"), (3, "d"), (5, "f"), (6, "g")] {
            buffer.offer(idx, item);
        }
        assert_eq!(buffer.advance_to(4), 2); // 1 and 3 dropped
        assert_eq!(buffer.next_index(), 4);
        assert_eq!(buffer.advance_to(2), 0); // never back
        assert_eq!(buffer.next_index(), 4);
        assert_eq!(buffer.offer(3, "d"), Offer::Stale);
        assert_eq!(buffer.gap(), Some(4));
        assert_eq!(buffer.advance_to(5), 0);
        assert_eq!(released(&mut buffer), vec![(5, "f"), (6, "g")]);
        assert_eq!(buffer.advance_to(u64::MAX), 0);
        assert_eq!(buffer.offer(u64::MAX - 1, "z"), Offer::Stale);
    }

    #[test]
    fn rewind_to_accepts_the_released_items_again() {
        let mut buffer = Resequencer::new(8);
        for (idx, item) in [(0, "a"), (1, "b"), (3, "d")] {
            buffer.offer(idx, item);
        }
        assert_eq!(released(&mut buffer), vec![(0, "a"), (1, "b")]);
        buffer.rewind_to(1);
        buffer.rewind_to(5); // never forward
        assert_eq!(buffer.next_index(), 1);
        assert_eq!(buffer.offer(0, "a"), Offer::Stale);
        assert_eq!(buffer.offer(1, "b"), Offer::Accepted);
        assert_eq!(released(&mut buffer), vec![(1, "b")]);
        assert_eq!(buffer.offer(2, "c"), Offer::Accepted);
        assert_eq!(released(&mut buffer), vec![(2, "c"), (3, "d")]); // the buffered item was kept
    }

    #[test]
    fn starting_at() {
        let mut buffer = Resequencer::starting_at(5, 4);
        assert_eq!(buffer.offer(4, "x"), Offer::Stale);
        assert_eq!(buffer.offer(5, "a"), Offer::Accepted);
        assert_eq!(released(&mut buffer), vec![(5, "a")]);
    }
}
