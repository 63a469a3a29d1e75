//! Snapshots: the State at index N in `{N:020}.snap`, written atomically (temp file, fsync, rename, fsync dir).
//!
//! File: `SNAPSHOT_MAGIC` (8 bytes) | idx `u64` | payload length `u64` | CRC32C of the payload `u32` | CRC32C of
//! the 28 bytes before `u32` | payload (the State's canonical JSON, `codec::encode(state, Case::Snake)`).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{sync_dir, EventLog, LogError, LogResult};
use crate::codec;
use crate::json::Case;
use crate::state::State;

/// The first 8 bytes of a snapshot file; the last byte is the format version.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"CSSNAPS\x01";
const SNAPSHOT_HEADER: usize = 32;

/// The State [`EventLog::load_state`] rebuilt, and how.
#[derive(Clone, Debug)]
pub struct LoadedState {
    /// The State after the log's last record.
    pub state: State,
    /// The idx of the snapshot it started from, if any.
    pub snapshot: Option<u64>,
    /// Snapshots that could not be used (damaged, or ahead of the log), with why; older ones were tried next.
    pub skipped: Vec<(PathBuf, String)>,
}

fn snapshot_name(idx: u64) -> String {
    format!("{idx:020}.snap")
}

fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".snap")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshots in `dir`, newest first.
fn list_snapshots(dir: &Path) -> LogResult<Vec<(u64, PathBuf)>> {
    let entries = fs::read_dir(dir).map_err(|err| LogError::io("list", dir, err))?;
    let mut snapshots = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| LogError::io("list", dir, err))?;
        if let Some(idx) = entry.file_name().to_str().and_then(parse_snapshot_name) {
            snapshots.push((idx, entry.path()));
        }
    }
    snapshots.sort_by_key(|s| std::cmp::Reverse(s.0));
    Ok(snapshots)
}

/// Read and verify a snapshot file.
fn read_snapshot(path: &Path, idx: u64) -> Result<State, String> {
    let bytes = fs::read(path).map_err(|err| format!("cannot read: {err}"))?;
    let header = bytes.get(..SNAPSHOT_HEADER).ok_or("header is incomplete")?;
    let word4 = |at: usize| {
        header
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let word8 = |at: usize| {
        header
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let (Some(stored_idx), Some(len), Some(payload_crc), Some(header_crc)) =
        (word8(8), word8(16), word4(24), word4(28))
    else {
        return Err("header is incomplete".to_owned());
    };
    if header[..8] != SNAPSHOT_MAGIC || crc32c::crc32c(&header[..28]) != header_crc {
        return Err("header is damaged".to_owned());
    }
    if stored_idx != idx {
        return Err(format!("holds idx {stored_idx}, its name says {idx}"));
    }
    let payload = &bytes[SNAPSHOT_HEADER..];
    if payload.len() as u64 != len || crc32c::crc32c(payload) != payload_crc {
        return Err("payload is damaged (length or checksum mismatch)".to_owned());
    }
    let state = codec::decode_state(payload).map_err(|err| err.to_string())?;
    if u64::try_from(state.last_event_applied_idx).ok() != Some(idx) {
        return Err(format!("holds a State at idx {}", state.last_event_applied_idx));
    }
    Ok(state)
}

impl EventLog {
    /// Write `state` as the snapshot at its `last_event_applied_idx`, which must be a record of this log. The log
    /// is synced first, so a snapshot never gets ahead of what is durable. Older snapshots beyond
    /// `keep_snapshots` are deleted. Returns the snapshot's idx.
    pub fn snapshot(&mut self, state: &State) -> LogResult<u64> {
        self.check_writable()?;
        let Some(idx) = u64::try_from(state.last_event_applied_idx).ok() else {
            return Err(LogError::Invalid("cannot snapshot the empty State".to_owned()));
        };
        if idx < self.first_index() || idx >= self.next_idx {
            return Err(LogError::Invalid(format!(
                "cannot snapshot a State at idx {idx}: the log holds idx {} to {}",
                self.first_index(),
                self.next_idx.saturating_sub(1)
            )));
        }
        self.sync()?;
        let payload = codec::encode(state, Case::Snake);
        let mut file_bytes = Vec::with_capacity(SNAPSHOT_HEADER + payload.len());
        file_bytes.extend_from_slice(&SNAPSHOT_MAGIC);
        file_bytes.extend_from_slice(&idx.to_le_bytes());
        file_bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        file_bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        let header_crc = crc32c::crc32c(&file_bytes);
        file_bytes.extend_from_slice(&header_crc.to_le_bytes());
        file_bytes.extend_from_slice(&payload);
        let path = self.dir.join(snapshot_name(idx));
        let temp = self.dir.join(format!("{}.tmp", snapshot_name(idx)));
        let mut file = File::create(&temp).map_err(|err| LogError::io("create", &temp, err))?;
        file.write_all(&file_bytes)
            .and_then(|()| file.sync_all())
            .map_err(|err| {
                let _ = fs::remove_file(&temp);
                LogError::io("write", &temp, err)
            })?;
        drop(file);
        fs::rename(&temp, &path).map_err(|err| LogError::io("rename", &temp, err))?;
        sync_dir(&self.dir)?;
        for (_, old) in list_snapshots(&self.dir)?
            .iter()
            .skip(self.options.keep_snapshots.max(1))
        {
            let _ = fs::remove_file(old);
        }
        Ok(idx)
    }

    /// The idx of the newest snapshot file (not verified), if any.
    pub fn latest_snapshot(&self) -> LogResult<Option<u64>> {
        Ok(list_snapshots(&self.dir)?.first().map(|(idx, _)| *idx))
    }

    /// The State after the log's last record: the newest valid snapshot plus a replay of the records after it
    /// (the whole log if there is no usable snapshot). Damaged snapshots are skipped and reported.
    pub fn load_state(&mut self) -> LogResult<LoadedState> {
        let mut skipped = Vec::new();
        for (idx, path) in list_snapshots(&self.dir)? {
            if idx >= self.next_idx || idx + 1 < self.first_index() {
                skipped.push((path, format!("snapshot idx {idx} is outside the log")));
                continue;
            }
            match read_snapshot(&path, idx) {
                Ok(state) => {
                    let state = self.replay(&state)?;
                    return Ok(LoadedState {
                        state,
                        snapshot: Some(idx),
                        skipped,
                    });
                }
                Err(reason) => skipped.push((path, reason)),
            }
        }
        let state = self.replay(&State::default())?;
        Ok(LoadedState {
            state,
            snapshot: None,
            skipped,
        })
    }
}
