//! Canonicalising a batch of events given as JSON before it is appended: decode (validation), re-encode.

use super::{LogError, LogResult};
use crate::codec;
use crate::json::Case;

/// Batches at least this long are split across threads; below it, starting threads costs more than it saves.
const PARALLEL_FROM: usize = 2048;

/// Each payload's idx and canonical JSON, in order; the first payload that does not decode fails the batch with
/// its position. Decoding is most of an append's cost, so a long batch is decoded on one thread per core (at most
/// 4), in contiguous chunks whose results are joined in order: the same result as one thread.
pub(super) fn canonicalize<P: AsRef<[u8]> + Sync>(payloads: &[P]) -> LogResult<Vec<(u64, Vec<u8>)>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, 4);
    if threads == 1 || payloads.len() < PARALLEL_FROM {
        return canonicalize_from(0, payloads);
    }
    let chunk = payloads.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = payloads
            .chunks(chunk)
            .enumerate()
            .map(|(k, part)| scope.spawn(move || canonicalize_from(k * chunk, part)))
            .collect();
        let mut out = Vec::with_capacity(payloads.len());
        for part in parts {
            let part = part
                .join()
                .map_err(|_| LogError::Invalid("a thread decoding the batch panicked".to_owned()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

fn canonicalize_from<P: AsRef<[u8]>>(first: usize, payloads: &[P]) -> LogResult<Vec<(u64, Vec<u8>)>> {
    payloads
        .iter()
        .enumerate()
        .map(|(offset, payload)| {
            let event = codec::decode_indexed_event(payload.as_ref()).map_err(|mut err| {
                err.message = format!("event {} of the batch: {}", first + offset, err.message);
                LogError::Decode(err)
            })?;
            Ok((event.idx, codec::encode(&event, Case::Snake)))
        })
        .collect()
}
