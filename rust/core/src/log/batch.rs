//! Framing a batch of events given as JSON before it is appended: decode (validation), re-encode in canonical form,
//! frame with both CRCs. Decoding is most of an append's cost, so a long batch is cut into contiguous chunks that one
//! thread per core (at most 4, the calling thread among them) takes in turn, each framed into one buffer; the
//! appending thread then only copies frames. The result is the same as one thread's.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::format::{self, RECORD_HEADER};
use super::{check_size, LogError, LogResult};
use crate::codec;
use crate::error::DecodeError;
use crate::json::{self, Case};

/// Batches at least this long are split across threads; below it, starting threads costs more than it saves.
const PARALLEL_FROM: usize = 2048;
/// A long batch is cut into about this many chunks per thread, of at least `MIN_CHUNK` payloads.
const CHUNKS_PER_THREAD: usize = 3;
const MIN_CHUNK: usize = 256;

/// A run of framed records, back to back, ready to be copied into a segment.
pub(super) struct Frames {
    /// The idx of the first record.
    pub first_idx: u64,
    /// The records' frames (header + canonical payload each).
    pub bytes: Vec<u8>,
    /// The length of each frame, in order.
    pub lengths: Vec<usize>,
}

impl Frames {
    /// Each record's idx and frame, in order.
    pub fn records(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut rest = self.bytes.as_slice();
        self.lengths.iter().zip(self.first_idx..).map(move |(&length, idx)| {
            let (frame, tail) = rest.split_at(length);
            rest = tail;
            (idx, frame)
        })
    }
}

/// The first failure of each kind in a chunk. A batch fails on its first payload that does not decode; failing
/// that, on its first idx out of sequence; failing that, on its first record over the size limit (what
/// [`super::EventLog::append_encoded`] checks): the same error whichever chunk a payload lands in.
#[derive(Default)]
struct Failures {
    decode: Option<LogError>,
    index: Option<LogError>,
    size: Option<LogError>,
}

/// Frame `payloads`, whose idx must run from `first_idx`; all or none.
pub(super) fn frame<P: AsRef<[u8]> + Sync>(first_idx: u64, payloads: &[P]) -> LogResult<Vec<Frames>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, 4);
    let results = if threads == 1 || payloads.len() < PARALLEL_FROM {
        vec![frame_chunk(first_idx, 0, payloads)]
    } else {
        // Chunks are handed out as threads come for them rather than split evenly up front: on a shared machine one
        // core can run at half speed, and an even split would leave the whole batch waiting for it.
        let size = payloads.len().div_ceil(threads * CHUNKS_PER_THREAD).max(MIN_CHUNK);
        let chunks: Vec<&[P]> = payloads.chunks(size).collect();
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(part) = chunks.get(k) else {
                    return done;
                };
                done.push((k, frame_chunk(first_idx, k * size, part)));
            }
        };
        std::thread::scope(|scope| {
            let spawned: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
            // The calling thread takes chunks too instead of waiting idle.
            let mut results = work();
            for handle in spawned {
                results.extend(
                    handle
                        .join()
                        .map_err(|_| LogError::Invalid("a thread framing the batch panicked".to_owned()))?,
                );
            }
            results.sort_unstable_by_key(|(k, _)| *k);
            Ok::<_, LogError>(results.into_iter().map(|(_, result)| result).collect::<Vec<_>>())
        })?
    };
    let mut frames = Vec::with_capacity(results.len());
    let mut failures = Failures::default();
    for (chunk, chunk_failures) in results {
        frames.push(chunk);
        failures.decode = failures.decode.or(chunk_failures.decode);
        failures.index = failures.index.or(chunk_failures.index);
        failures.size = failures.size.or(chunk_failures.size);
    }
    match failures {
        Failures { decode: Some(err), .. } | Failures { index: Some(err), .. } | Failures { size: Some(err), .. } => {
            Err(err)
        }
        Failures { .. } => Ok(frames),
    }
}

/// Frame the chunk that starts at `offset` in the batch, and say what failed in it. After a failure the rest is
/// still checked for what outranks it (see [`Failures`]) but no longer encoded.
fn frame_chunk<P: AsRef<[u8]>>(first_idx: u64, offset: usize, payloads: &[P]) -> (Frames, Failures) {
    let capacity = payloads
        .iter()
        .map(|payload| RECORD_HEADER + payload.as_ref().len())
        .sum();
    let mut frames = Frames {
        first_idx: first_idx + offset as u64,
        bytes: Vec::with_capacity(capacity),
        lengths: Vec::with_capacity(payloads.len()),
    };
    let mut failures = Failures::default();
    for ((position, payload), expected) in (offset..).zip(payloads).zip(frames.first_idx..) {
        let event = match codec::decode_indexed_event(payload.as_ref()) {
            Ok(event) => event,
            Err(err) => {
                failures.decode = Some(in_batch(position, err));
                break;
            }
        };
        if failures.index.is_some() {
            continue;
        }
        if event.idx != expected {
            failures.index = Some(LogError::EventIndex {
                expected,
                got: event.idx,
            });
            continue;
        }
        if failures.size.is_some() {
            continue;
        }
        let start = frames.bytes.len();
        format::begin_frame(&mut frames.bytes);
        // Encoding the core's types into a Vec cannot fail (see `codec::encode`).
        let _ = json::write(&mut frames.bytes, &event, Case::Snake);
        if let Err(err) = check_size(expected, &frames.bytes[start + RECORD_HEADER..]) {
            failures.size = Some(err);
            continue;
        }
        format::end_frame(&mut frames.bytes, start, expected);
        frames.lengths.push(frames.bytes.len() - start);
    }
    (frames, failures)
}

fn in_batch(position: usize, mut err: DecodeError) -> LogError {
    err.message = format!("event {position} of the batch: {}", err.message);
    LogError::Decode(err)
}
