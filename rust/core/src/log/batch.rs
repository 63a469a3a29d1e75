//! Framing a batch of events given as JSON before it is appended: decode (validation), re-encode in canonical form,
//! frame with both CRCs. Decoding is most of an append's cost, so a long batch is split into contiguous chunks, one
//! per core (at most 4), each framed into one buffer on its own thread; the appending thread then only copies
//! frames. The result is the same as one thread's.

use super::format::{self, RECORD_HEADER};
use super::{check_size, LogError, LogResult};
use crate::codec;
use crate::error::DecodeError;
use crate::json::{self, Case};

/// Batches at least this long are split across threads; below it, starting threads costs more than it saves.
const PARALLEL_FROM: usize = 2048;

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
        let chunk = payloads.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut parts = payloads.chunks(chunk).enumerate();
            // The calling thread frames the first chunk itself instead of waiting idle.
            let own = parts.next();
            let spawned: Vec<_> = parts
                .map(|(k, part)| scope.spawn(move || frame_chunk(first_idx, k * chunk, part)))
                .collect();
            let mut results = Vec::with_capacity(threads);
            if let Some((_, part)) = own {
                results.push(frame_chunk(first_idx, 0, part));
            }
            for handle in spawned {
                results.push(
                    handle
                        .join()
                        .map_err(|_| LogError::Invalid("a thread framing the batch panicked".to_owned()))?,
                );
            }
            Ok::<_, LogError>(results)
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
