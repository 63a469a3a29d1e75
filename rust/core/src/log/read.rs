//! Reading the log: random access through the sparse index, sequential [`Reader`]s, and the pipelined replay.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use super::format::{Cursor, Step, SEGMENT_HEADER};
use super::recover::scan_segment;
use super::{EventLog, LogError, LogResult, SparseIndex};
use crate::apply::apply_mut;
use crate::codec;
use crate::events::IndexedEvent;
use crate::state::State;

/// One segment to read: its first idx, path, and the byte offset to stop at.
#[derive(Clone, Debug)]
struct Span {
    first_idx: u64,
    path: PathBuf,
    end: u64,
}

/// Reads records `[start, end)` in order across segments, verifying each one. Owns everything it needs (paths and
/// offsets), so it can run on another thread; it sees the records written to the OS when it was made.
pub struct Reader {
    spans: Vec<Span>,
    position: usize,
    cursor: Option<Cursor>,
    next_idx: u64,
    end_idx: u64,
}

impl Reader {
    /// The idx of the next record this reader returns.
    pub fn next_index(&self) -> u64 {
        self.next_idx
    }

    /// The next record: its idx, segment, offset, with the payload in `payload`; `None` after the last one.
    pub fn next_record(&mut self, payload: &mut Vec<u8>) -> LogResult<Option<(u64, u64)>> {
        if self.next_idx >= self.end_idx {
            return Ok(None);
        }
        loop {
            let Some(cursor) = self.cursor.as_mut() else {
                return Err(LogError::Invalid(format!(
                    "record {} is past the log's end",
                    self.next_idx
                )));
            };
            let step = cursor
                .next(payload)
                .map_err(|err| LogError::io("read", cursor.path(), err))?;
            match step {
                Step::Record { idx, offset } => {
                    self.next_idx = idx + 1;
                    return Ok(Some((idx, offset)));
                }
                Step::Bad { offset, damage } => {
                    let expected = cursor.next_idx();
                    return Err(LogError::corrupted(cursor.path(), offset, damage.describe(expected)));
                }
                Step::End => {
                    let (ended_at, path, offset) = (cursor.next_idx(), cursor.path().to_owned(), cursor.offset());
                    self.position += 1;
                    let Some(span) = self.spans.get(self.position).cloned() else {
                        self.cursor = None;
                        continue;
                    };
                    if ended_at != span.first_idx {
                        return Err(LogError::corrupted(
                            &path,
                            offset,
                            format!(
                                "segment ends before idx {ended_at} but the next segment starts at idx {}",
                                span.first_idx
                            ),
                        ));
                    }
                    self.cursor = Some(open_cursor(&span, SEGMENT_HEADER, span.first_idx)?);
                }
            }
        }
    }

    /// The current segment file (for error messages).
    pub fn segment(&self) -> Option<PathBuf> {
        self.cursor.as_ref().map(|c| c.path().to_owned())
    }
}

fn open_cursor(span: &Span, offset: u64, idx: u64) -> LogResult<Cursor> {
    let file = File::open(&span.path).map_err(|err| LogError::io("open", &span.path, err))?;
    let end = if span.end == u64::MAX {
        file.metadata()
            .map_err(|err| LogError::io("stat", &span.path, err))?
            .len()
    } else {
        span.end
    };
    Cursor::new(file, &span.path, offset, end, idx).map_err(|err| LogError::io("read", &span.path, err))
}

/// Events decoded per batch handed from the decoding thread to the applying one.
const BATCH: usize = 512;

impl EventLog {
    /// The sparse index of segment `position` (built by reading the segment if not cached).
    fn index_of(&mut self, position: usize) -> LogResult<Arc<SparseIndex>> {
        let segment = self.segments[position].clone();
        if position + 1 == self.segments.len() {
            return Ok(Arc::new(self.writer.index.clone()));
        }
        if let Some((_, index)) = self.cache.iter().find(|(first, _)| *first == segment.first_idx) {
            return Ok(index.clone());
        }
        let scan = scan_segment(&segment.path, segment.first_idx, self.options.index_every)?;
        if let Some((offset, damage)) = scan.damage {
            let expected = segment.first_idx + scan.records;
            return Err(LogError::corrupted(&segment.path, offset, damage.describe(expected)));
        }
        let index = Arc::new(scan.index);
        self.remember_index(segment.first_idx, index.clone());
        Ok(index)
    }

    /// A reader of records `[start, end)`; `end` is clamped to the log's end. Flushes buffered records first.
    pub fn reader(&mut self, start: u64, end: u64) -> LogResult<Reader> {
        self.flush()?;
        let end = end.min(self.next_idx);
        let first = self.first_index();
        if start < first {
            return Err(LogError::Invalid(format!("the log starts at idx {first}, not {start}")));
        }
        let last = self.segments.len() - 1;
        let spans: Vec<Span> = self
            .segments
            .iter()
            .enumerate()
            .map(|(position, s)| Span {
                first_idx: s.first_idx,
                path: s.path.clone(),
                end: if position == last {
                    self.writer.written
                } else {
                    u64::MAX
                },
            })
            .collect();
        if start >= end {
            return Ok(Reader {
                spans,
                position: last,
                cursor: None,
                next_idx: start,
                end_idx: start,
            });
        }
        let position = self
            .segments
            .partition_point(|s| s.first_idx <= start)
            .saturating_sub(1);
        let index = if start == self.segments[position].first_idx {
            None
        } else {
            Some(self.index_of(position)?)
        };
        let (from_idx, from_offset) = index
            .as_ref()
            .and_then(|index| {
                let at = index.partition_point(|&(idx, _)| idx <= start);
                at.checked_sub(1).and_then(|at| index.get(at).copied())
            })
            .unwrap_or((self.segments[position].first_idx, SEGMENT_HEADER));
        let mut cursor = open_cursor(&spans[position], from_offset, from_idx)?;
        while cursor.next_idx() < start {
            match cursor.skip().map_err(|err| LogError::io("read", cursor.path(), err))? {
                Step::Record { .. } => {}
                Step::End => {
                    return Err(LogError::corrupted(
                        cursor.path(),
                        cursor.offset(),
                        format!("segment ends before idx {start}"),
                    ))
                }
                Step::Bad { offset, damage } => {
                    return Err(LogError::corrupted(
                        cursor.path(),
                        offset,
                        damage.describe(cursor.next_idx()),
                    ))
                }
            }
        }
        Ok(Reader {
            spans,
            position,
            cursor: Some(cursor),
            next_idx: start,
            end_idx: end,
        })
    }

    /// The payloads (canonical JSON) of records `[start, end)`, with their idx; `end` is clamped to the log's end.
    pub fn read_raw(&mut self, start: u64, end: u64) -> LogResult<Vec<(u64, Vec<u8>)>> {
        let mut reader = self.reader(start, end)?;
        let mut out = Vec::new();
        let mut payload = Vec::new();
        while let Some((idx, _)) = reader.next_record(&mut payload)? {
            out.push((idx, payload.clone()));
        }
        Ok(out)
    }

    /// The events `[start, end)`, decoded; `end` is clamped to the log's end.
    pub fn read_range(&mut self, start: u64, end: u64) -> LogResult<Vec<IndexedEvent>> {
        let mut reader = self.reader(start, end)?;
        let mut out = Vec::new();
        let mut payload = Vec::new();
        while let Some((idx, offset)) = reader.next_record(&mut payload)? {
            out.push(decode_record(&reader, idx, offset, &payload)?);
        }
        Ok(out)
    }

    /// Fold the records after `state.last_event_applied_idx` into `state`, up to the log's end. One thread reads,
    /// verifies and decodes records while the calling thread applies them.
    pub fn replay(&mut self, state: &State) -> LogResult<State> {
        let start = u64::try_from(state.last_event_applied_idx + 1).unwrap_or(0);
        if start > self.next_idx {
            return Err(LogError::Invalid(format!(
                "the State is at idx {}, past the log's end (next idx {})",
                state.last_event_applied_idx, self.next_idx
            )));
        }
        if start == self.next_idx {
            return Ok(state.clone());
        }
        let reader = self.reader(start, self.next_idx)?;
        replay_reader(reader, state)
    }
}

fn decode_record(reader: &Reader, idx: u64, offset: u64, payload: &[u8]) -> LogResult<IndexedEvent> {
    decode_payload(|| reader.segment().unwrap_or_default(), idx, offset, payload)
}

/// Decode the record at `offset` of `segment()`, which must hold the event `idx`.
fn decode_payload(segment: impl Fn() -> PathBuf, idx: u64, offset: u64, payload: &[u8]) -> LogResult<IndexedEvent> {
    let event = codec::decode_indexed_event(payload)
        .map_err(|err| LogError::corrupted(&segment(), offset, format!("record {idx} does not decode: {err}")))?;
    if event.idx != idx {
        return Err(LogError::corrupted(
            &segment(),
            offset,
            format!("record {idx} holds an event with idx {}", event.idx),
        ));
    }
    Ok(event)
}

/// Records read and verified, not decoded yet: `(idx, offset, end of its payload in data)`.
#[derive(Default)]
struct RawBatch {
    records: Vec<(u64, u64, usize)>,
    data: Vec<u8>,
}

/// The segment file holding each idx, for the decoders' error messages.
#[derive(Clone)]
struct Segments(Vec<(u64, PathBuf)>);

impl Segments {
    fn of(&self, idx: u64) -> PathBuf {
        let position = self.0.partition_point(|(first, _)| *first <= idx);
        position
            .checked_sub(1)
            .and_then(|position| self.0.get(position))
            .map(|(_, path)| path.clone())
            .unwrap_or_default()
    }
}

fn decode_batch(raw: &RawBatch, segments: &Segments) -> LogResult<Vec<IndexedEvent>> {
    let mut events = Vec::with_capacity(raw.records.len());
    let mut start = 0;
    for &(idx, offset, end) in &raw.records {
        let payload = raw.data.get(start..end).unwrap_or_default();
        start = end;
        events.push(decode_payload(|| segments.of(idx), idx, offset, payload)?);
    }
    Ok(events)
}

/// Read the next [`BATCH`] records; an empty batch at the end.
fn read_batch(reader: &mut Reader, payload: &mut Vec<u8>) -> LogResult<RawBatch> {
    let mut batch = RawBatch::default();
    while batch.records.len() < BATCH {
        let Some((idx, offset)) = reader.next_record(payload)? else {
            break;
        };
        batch.data.extend_from_slice(payload);
        batch.records.push((idx, offset, batch.data.len()));
    }
    Ok(batch)
}

/// The replay pipeline: one thread reads and verifies records, `decoders` threads decode batches in turn (decoding
/// costs several times what applying does), and this thread applies them in order. Batch `k` goes to decoder
/// `k % decoders` and comes back from it, so order is kept without sorting.
fn replay_reader(mut reader: Reader, state: &State) -> LogResult<State> {
    let decoders = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, 4);
    let segments = Segments(
        reader
            .spans
            .iter()
            .map(|span| (span.first_idx, span.path.clone()))
            .collect(),
    );
    std::thread::scope(|scope| {
        let mut to_decoders = Vec::with_capacity(decoders);
        let mut from_decoders = Vec::with_capacity(decoders);
        let mut back_to_decoders = Vec::with_capacity(decoders);
        for _ in 0..decoders {
            let (raw_sender, raw_receiver) = mpsc::sync_channel::<LogResult<RawBatch>>(4);
            let (sender, receiver) = mpsc::sync_channel::<LogResult<Vec<IndexedEvent>>>(4);
            // Applied batches go back to the thread that allocated them to be freed there: freeing another
            // thread's allocations is slow in the system allocator, and would be on the applying thread's path.
            let (used_sender, used_receiver) = mpsc::channel::<Vec<IndexedEvent>>();
            let segments = segments.clone();
            scope.spawn(move || {
                for raw in raw_receiver {
                    drop(used_receiver.try_iter().collect::<Vec<_>>());
                    let decoded = raw.and_then(|raw| decode_batch(&raw, &segments));
                    let failed = decoded.is_err();
                    if sender.send(decoded).is_err() || failed {
                        return;
                    }
                }
            });
            to_decoders.push(raw_sender);
            from_decoders.push(receiver);
            back_to_decoders.push(used_sender);
        }
        scope.spawn(move || {
            let mut payload = Vec::new();
            for turn in 0.. {
                let Some(decoder) = to_decoders.get(turn % to_decoders.len()) else {
                    return;
                };
                let batch = read_batch(&mut reader, &mut payload);
                let last = batch.as_ref().map_or(true, |batch| batch.records.len() < BATCH);
                if decoder.send(batch).is_err() || last {
                    return;
                }
            }
        });
        let mut state = state.clone();
        for turn in 0.. {
            let Some(decoded) = from_decoders
                .get(turn % decoders)
                .and_then(|receiver| receiver.recv().ok())
            else {
                break;
            };
            let decoded = decoded?;
            for event in &decoded {
                apply_mut(&mut state, event)?;
            }
            if let Some(back) = back_to_decoders.get(turn % decoders) {
                // A decoder that has finished is gone: then the batch is freed here.
                let _ = back.send(decoded);
            }
        }
        Ok(state)
    })
}
