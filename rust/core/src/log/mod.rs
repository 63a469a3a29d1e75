//! A crash-safe, append-only log of indexed events in a directory, with snapshots and fast replay.
//!
//! - Records are framed with their length, idx and two CRC32Cs ([`format`](mod@format)); the payload is the
//!   event's canonical JSON (`codec::encode(event, Case::Snake)`), the exo-compatible wire form. Segment files are
//!   named by their first idx and rotated by size, so the index of every record is known from the files alone.
//! - [`Durability`]: fsync on every append (call), group commit (every N records or M ms, checked on append and
//!   on [`EventLog::sync`]), or none; [`EventLog::durable_index`] is the last idx known to be on disk.
//! - [`EventLog::open`] verifies every record of the last segment: a torn tail is cut (the bytes are kept in a
//!   side file and reported in [`Recovery`]); damage anywhere else is a [`LogError::Corrupted`] naming the segment
//!   and offset, unless [`Options::repair`] asks to cut there.
//! - Random access through a sparse index (one entry every [`Options::index_every`] records) of the active
//!   segment plus a small cache of older segments' indexes: memory stays bounded whatever the log's length.
//! - Snapshots of the State ([`EventLog::snapshot`]) and [`EventLog::load_state`] = latest valid snapshot + tail.
//! - [`Options::read_only`] opens a log for reading without writing anything (works on a full disk).
//!
//! ```
//! use clusterstate_core::log::{EventLog, Options};
//! use clusterstate_core::{codec, State};
//!
//! let dir = std::env::temp_dir().join(format!("cs-log-doc-{}", std::process::id()));
//! let _ = std::fs::remove_dir_all(&dir);
//! let mut log = EventLog::open(&dir, Options { create: true, ..Options::default() }).unwrap();
//! let line = br#"{"idx":0,"origin":null,"event":{"TestEvent":{"event_id":"e"}}}"#;
//! log.append(&codec::decode_indexed_event(line).unwrap()).unwrap();
//! assert_eq!(log.durable_index(), Some(0));
//! assert_eq!(log.read_raw(0, 1).unwrap()[0].1, line);
//! assert_eq!(log.replay(&State::default()).unwrap().last_event_applied_idx, 0);
//! drop(log);
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod batch;
mod error;
pub mod format;
mod read;
mod recover;
mod snapshot;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{LogError, LogResult};
pub use read::Reader;
pub use snapshot::LoadedState;

use crate::events::IndexedEvent;
use crate::json::{self, Case};
use format::{RECORD_HEADER, SEGMENT_HEADER};

/// When appended records are forced to disk (`fdatasync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every `append` / `append_all` call returns only once its records are on disk.
    EveryAppend,
    /// Group commit: records are forced to disk once `records` of them are waiting, or by the first `append` or
    /// [`EventLog::sync`] call made `interval` or more after the oldest waiting record was appended (there is no
    /// background thread: an idle writer calls `sync()` itself to bound the delay).
    Group {
        /// Sync after this many waiting records.
        records: u32,
        /// Sync once the oldest waiting record is this old (checked on append and `sync`).
        interval: Duration,
    },
    /// Never forced; the OS writes when it likes (and on [`EventLog::sync`]). Records are buffered in the process.
    None,
}

const GROUP_INVALID: &str = "group commit needs group_records >= 1 and group_ms >= 0";

impl Durability {
    /// The group-commit policy of `"group"` ([`Durability::from_str`]): sync every 1000 records or 5 ms.
    pub const DEFAULT_GROUP: Self = Self::Group {
        records: 1000,
        interval: Duration::from_millis(5),
    };

    /// Group commit after `records` (at least 1) waiting records or `ms` milliseconds (finite, at least 0).
    pub fn group(records: u32, ms: f64) -> LogResult<Self> {
        if !(ms.is_finite() && ms >= 0.0) || records == 0 {
            return Err(LogError::Invalid(GROUP_INVALID.to_owned()));
        }
        Ok(Self::Group {
            records,
            interval: Duration::from_secs_f64(ms / 1000.0),
        })
    }

    /// The policy's name: `"fsync"`, `"group"` or `"none"` (what [`Durability::from_str`] reads).
    pub fn name(&self) -> &'static str {
        match self {
            Self::EveryAppend => "fsync",
            Self::Group { .. } => "group",
            Self::None => "none",
        }
    }
}

impl FromStr for Durability {
    type Err = LogError;

    /// `"fsync"` ([`Durability::EveryAppend`]), `"group"` ([`Durability::DEFAULT_GROUP`]) or `"none"`.
    fn from_str(name: &str) -> LogResult<Self> {
        match name {
            "fsync" => Ok(Self::EveryAppend),
            "group" => Ok(Self::DEFAULT_GROUP),
            "none" => Ok(Self::None),
            other => Err(LogError::Invalid(format!(
                "durability must be 'fsync', 'group' or 'none', not {other:?}"
            ))),
        }
    }
}

/// The smallest [`Options::segment_bytes`].
pub const MIN_SEGMENT_BYTES: u64 = 4096;

/// How to open a log.
#[derive(Clone, Debug)]
#[allow(clippy::struct_excessive_bools)] // independent switches, each named like its Python keyword
pub struct Options {
    /// The durability policy.
    pub durability: Durability,
    /// Create the directory if it does not exist (otherwise: [`LogError::NotFound`]).
    pub create: bool,
    /// Start a new segment when the active one would grow past this many bytes (at least [`MIN_SEGMENT_BYTES`]).
    pub segment_bytes: u64,
    /// One sparse-index entry every this many records (at least 1).
    pub index_every: u32,
    /// Verify every record of every segment on open, not only the last segment's.
    pub verify_all: bool,
    /// Cut the log at the first damaged record instead of failing (implies `verify_all`); the cut bytes and any
    /// later segments are kept as side files.
    pub repair: bool,
    /// How many snapshots to keep.
    pub keep_snapshots: usize,
    /// How many sealed segments' sparse indexes to keep in memory.
    pub cached_indexes: usize,
    /// Open for reading only: nothing in the directory is created, cut or deleted (so it works on a full or
    /// read-only disk), the lock is shared with other readers, and every write is a [`LogError::ReadOnly`].
    /// A torn tail is left in place and the log ends before it. Incompatible with `create` and `repair`.
    pub read_only: bool,
}

impl Options {
    /// Check the options ([`EventLog::open`] does): a [`LogError::Invalid`] says what is wrong.
    pub fn validate(&self) -> LogResult<()> {
        if self.read_only && (self.create || self.repair) {
            return Err(LogError::Invalid(
                "a read-only log cannot be created or repaired (open it writable)".to_owned(),
            ));
        }
        if let Durability::Group { records: 0, .. } = self.durability {
            return Err(LogError::Invalid(GROUP_INVALID.to_owned()));
        }
        if self.segment_bytes < MIN_SEGMENT_BYTES || self.index_every == 0 {
            return Err(LogError::Invalid(
                "segment_bytes must be >= 4096 and index_every >= 1".to_owned(),
            ));
        }
        Ok(())
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::EveryAppend,
            create: false,
            segment_bytes: 64 << 20,
            index_every: 256,
            verify_all: false,
            repair: false,
            keep_snapshots: 2,
            cached_indexes: 8,
            read_only: false,
        }
    }
}

/// Bytes cut from a segment on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The segment.
    pub segment: PathBuf,
    /// Where it was cut.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
    /// Where the cut bytes were saved (a file of their own, never reused); `None` when the log was opened read-only
    /// and the bytes were left in place.
    pub saved_to: Option<PathBuf>,
    /// Why: a torn tail (expected after a crash) or damage cut on request (repair mode).
    pub reason: String,
    /// `true` for a torn tail, `false` for damage cut by repair mode.
    pub torn: bool,
}

/// What [`EventLog::open`] had to do to bring the directory back to a valid log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Cuts made (at most one torn tail; repair mode may cut damage).
    pub cuts: Vec<Cut>,
    /// Segments renamed aside (`*.seg.cut`): those after a repair cut, and a last segment shorter than its header
    /// (its creation was interrupted; it holds no record).
    pub removed_segments: Vec<PathBuf>,
}

impl Recovery {
    /// Whether the log was opened as it was.
    pub fn is_clean(&self) -> bool {
        self.cuts.is_empty() && self.removed_segments.is_empty()
    }
}

/// A segment file: its first idx and path.
#[derive(Clone, Debug)]
struct Segment {
    first_idx: u64,
    path: PathBuf,
}

/// Sparse index of one segment: `(idx, offset)` of every `index_every`-th record.
type SparseIndex = Vec<(u64, u64)>;

/// The active (last) segment, open for appending.
struct Writer {
    file: File,
    path: PathBuf,
    first_idx: u64,
    /// Bytes in the file (excluding `pending`).
    written: u64,
    /// Framed records not yet written to the file.
    pending: Vec<u8>,
    /// The idx of the first record in `pending`.
    pending_first: u64,
    /// Records in the segment, including pending ones.
    records: u64,
    index: SparseIndex,
}

impl Writer {
    fn size(&self) -> u64 {
        self.written + self.pending.len() as u64
    }
}

/// Flush `pending` when it grows past this (the `None` and group policies buffer in the process).
const PENDING_LIMIT: usize = 1 << 20;

/// An append-only event log in a directory, held open by one writer (an OS lock on `LOCK`).
pub struct EventLog {
    dir: PathBuf,
    _lock: File,
    options: Options,
    /// Every segment in idx order; the last is the writer's.
    segments: Vec<Segment>,
    writer: Writer,
    next_idx: u64,
    /// Records before this idx are on disk for sure.
    durable_next: u64,
    /// Sealed segments written since the last sync (policy `None`), and whether the directory needs a sync.
    dirty: Vec<(File, PathBuf)>,
    dir_dirty: bool,
    /// When the oldest record not yet synced was appended (group commit).
    oldest_unsynced: Option<Instant>,
    cache: VecDeque<(u64, Arc<SparseIndex>)>,
    scratch: Vec<u8>,
    recovery: Recovery,
}

fn sync_dir(dir: &Path) -> LogResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| LogError::io("sync directory", dir, err))
}

impl EventLog {
    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// What opening the log had to repair.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The idx of the first record (0 unless the log was started later).
    pub fn first_index(&self) -> u64 {
        self.segments.first().map_or(self.next_idx, |s| s.first_idx)
    }

    /// The idx the next appended event must carry.
    pub fn next_index(&self) -> u64 {
        self.next_idx
    }

    /// The idx of the last record, if any.
    pub fn last_index(&self) -> Option<u64> {
        (self.next_idx > self.first_index()).then(|| self.next_idx - 1)
    }

    /// The number of records.
    pub fn len(&self) -> u64 {
        self.next_idx - self.first_index()
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The idx of the last record known to be on disk (fsynced), if any.
    pub fn durable_index(&self) -> Option<u64> {
        (self.durable_next > self.first_index()).then(|| self.durable_next - 1)
    }

    /// The number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Append one event; its idx must be [`Self::next_index`]. Durable on return under [`Durability::EveryAppend`].
    pub fn append(&mut self, event: &IndexedEvent) -> LogResult<()> {
        self.append_all(std::slice::from_ref(event))
    }

    /// Append events in order, all or none if an idx is wrong; one fsync for the batch under
    /// [`Durability::EveryAppend`].
    pub fn append_all(&mut self, events: &[IndexedEvent]) -> LogResult<()> {
        self.check_writable()?;
        for (event, expected) in events.iter().zip(self.next_idx..) {
            if event.idx != expected {
                return Err(LogError::EventIndex {
                    expected,
                    got: event.idx,
                });
            }
        }
        self.write_batch(|log| {
            for event in events {
                let mut payload = std::mem::take(&mut log.scratch);
                payload.clear();
                let encoded = json::write(&mut payload, event, Case::Snake);
                let result = match encoded {
                    Ok(()) => log.append_payload(event.idx, &payload),
                    Err(err) => Err(LogError::Invalid(format!("event {} does not encode: {err}", event.idx))),
                };
                log.scratch = payload;
                result?;
            }
            Ok(())
        })
    }

    /// Append a batch of events given as JSON (any accepted spelling), all or none: each is decoded, so nothing
    /// malformed gets in, and stored in canonical form, as [`Self::append_all`] does. A payload that does not
    /// decode, an idx out of sequence or a record over [`format::MAX_PAYLOAD`] refuses the whole batch (the first
    /// of those, in that order of rank). Long batches are decoded, encoded and framed on several threads.
    pub fn append_json<P: AsRef<[u8]> + Sync>(&mut self, payloads: &[P]) -> LogResult<()> {
        self.check_writable()?;
        let chunks = batch::frame(self.next_idx, payloads)?;
        self.write_batch(|log| {
            for chunk in chunks {
                for (idx, frame) in chunk.records() {
                    log.begin_record(idx, frame.len())?;
                    log.writer.pending.extend_from_slice(frame);
                    log.end_record(idx)?;
                }
            }
            Ok(())
        })
    }

    /// Append events already encoded: `payloads[i]` must be the `snake_case` JSON of the [`IndexedEvent`] whose idx
    /// is `next_index() + i` (as [`crate::codec::encode`] writes it). For a caller that needs the bytes anyway
    /// (the master broadcasts them), so each event is encoded once. A payload that breaks the rule is caught by
    /// replay, as corruption.
    pub(crate) fn append_encoded<P: AsRef<[u8]>>(&mut self, payloads: &[P]) -> LogResult<()> {
        self.check_writable()?;
        // All or none for what can be checked before writing: a record over the limit refuses the whole batch.
        for (payload, idx) in payloads.iter().zip(self.next_idx..) {
            check_size(idx, payload.as_ref())?;
        }
        self.write_batch(|log| {
            for (payload, idx) in payloads.iter().zip(log.next_idx..) {
                log.append_payload(idx, payload.as_ref())?;
            }
            Ok(())
        })
    }

    /// Run `write`, which frames a batch's records in order, then apply the durability policy. A batch that fails
    /// part-way (a full disk at a flush or a rotation) leaves what was written before the failure in the log, and
    /// callers count that part as appended ([`Self::next_index`]; the master acknowledges it): under
    /// [`Durability::EveryAppend`] it is made durable before the error returns, as a whole batch would be (if that
    /// sync fails too, its error is the one returned).
    fn write_batch(&mut self, write: impl FnOnce(&mut Self) -> LogResult<()>) -> LogResult<()> {
        match write(self) {
            Ok(()) => self.after_append(),
            Err(err) => {
                if self.options.durability == Durability::EveryAppend && self.durable_next != self.next_idx {
                    self.sync()?;
                }
                Err(err)
            }
        }
    }

    /// Whether the log was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.options.read_only
    }

    /// Refuse a write to a log opened read-only.
    pub(crate) fn check_writable(&self) -> LogResult<()> {
        if self.options.read_only {
            return Err(LogError::ReadOnly { path: self.dir.clone() });
        }
        Ok(())
    }

    fn append_payload(&mut self, idx: u64, payload: &[u8]) -> LogResult<()> {
        check_size(idx, payload)?;
        self.begin_record(idx, RECORD_HEADER + payload.len())?;
        format::frame_record(&mut self.writer.pending, idx, payload);
        self.end_record(idx)
    }

    /// Make room for record `idx`, `frame` bytes framed: rotate if it would not fit, index it if its turn.
    fn begin_record(&mut self, idx: u64, frame: usize) -> LogResult<()> {
        if self.writer.records > 0 && self.writer.size() + frame as u64 > self.options.segment_bytes {
            self.rotate()?;
        }
        let offset = self.writer.size();
        if self.writer.records % u64::from(self.options.index_every.max(1)) == 0 {
            self.writer.index.push((idx, offset));
        }
        if self.writer.pending.is_empty() {
            self.writer.pending_first = idx;
        }
        Ok(())
    }

    /// Count record `idx`, just framed into `pending`.
    fn end_record(&mut self, idx: u64) -> LogResult<()> {
        self.writer.records += 1;
        self.next_idx = idx + 1;
        if self.writer.pending.len() >= PENDING_LIMIT {
            self.flush()?;
        }
        Ok(())
    }

    fn after_append(&mut self) -> LogResult<()> {
        match self.options.durability {
            Durability::EveryAppend => self.sync(),
            Durability::Group { records, interval } => {
                // Counted from the indexes, so records dropped by a failed write are not counted.
                let waiting = self.next_idx.saturating_sub(self.durable_next);
                let oldest = *self.oldest_unsynced.get_or_insert_with(Instant::now);
                if waiting >= u64::from(records) || oldest.elapsed() >= interval {
                    self.sync()?;
                }
                Ok(())
            }
            Durability::None => Ok(()),
        }
    }

    /// Write the records buffered in the process to the OS (no fsync). On a write error (a full disk) the records
    /// that were not written are dropped from the log, which then ends at the last record written, and the file is
    /// cut back to it.
    pub fn flush(&mut self) -> LogResult<()> {
        if self.writer.pending.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.writer.file.write_all(&self.writer.pending) {
            self.roll_back_pending();
            return Err(LogError::io("write", &self.writer.path, err));
        }
        self.writer.written += self.writer.pending.len() as u64;
        self.writer.pending.clear();
        Ok(())
    }

    fn roll_back_pending(&mut self) {
        let writer = &mut self.writer;
        let dropped = self.next_idx - writer.pending_first;
        // Best effort: the next open cuts a partial record as a torn tail anyway.
        let _ = writer.file.set_len(writer.written);
        let _ = writer.file.seek(SeekFrom::Start(writer.written));
        writer.pending.clear();
        writer.records -= dropped;
        let first = writer.pending_first;
        writer.index.retain(|&(idx, _)| idx < first);
        self.next_idx = first;
    }

    /// Force every appended record to disk; afterwards [`Self::durable_index`] is [`Self::last_index`].
    pub fn sync(&mut self) -> LogResult<()> {
        self.flush()?;
        for (file, path) in self.dirty.drain(..) {
            file.sync_data().map_err(|err| LogError::io("sync", &path, err))?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        if self.durable_next != self.next_idx {
            self.writer
                .file
                .sync_data()
                .map_err(|err| LogError::io("sync", &self.writer.path, err))?;
        }
        self.durable_next = self.next_idx;
        self.oldest_unsynced = None;
        Ok(())
    }

    /// Seal the active segment and start a new one at `next_idx`. A failure at any step leaves the active segment
    /// as it was and no new segment behind, so the next append tries again.
    fn rotate(&mut self) -> LogResult<()> {
        self.flush()?;
        let durable = self.options.durability != Durability::None;
        if durable {
            // The sealed segment is on disk before a later one exists, and what a failed rotation leaves counted
            // (the records of its batch before the rotation) is durable.
            self.writer
                .file
                .sync_data()
                .map_err(|err| LogError::io("sync", &self.writer.path, err))?;
            self.durable_next = self.next_idx;
            self.oldest_unsynced = None;
        }
        let path = self.dir.join(format::segment_name(self.next_idx));
        let file = create_segment(&self.dir, self.next_idx, durable)?;
        let old = std::mem::replace(
            &mut self.writer,
            Writer {
                file,
                path: path.clone(),
                first_idx: self.next_idx,
                written: SEGMENT_HEADER,
                pending: Vec::with_capacity(PENDING_LIMIT + (64 << 10)),
                pending_first: self.next_idx,
                records: 0,
                index: Vec::new(),
            },
        );
        if !durable {
            self.dirty.push((old.file, old.path));
            self.dir_dirty = true;
        }
        self.remember_index(old.first_idx, Arc::new(old.index));
        self.segments.push(Segment {
            first_idx: self.next_idx,
            path,
        });
        Ok(())
    }

    fn remember_index(&mut self, first_idx: u64, index: Arc<SparseIndex>) {
        if self.options.cached_indexes == 0 {
            return;
        }
        self.cache.retain(|(first, _)| *first != first_idx);
        while self.cache.len() >= self.options.cached_indexes {
            self.cache.pop_front();
        }
        self.cache.push_back((first_idx, index));
    }

    /// Sync, then release the directory (also done, without reporting errors, on drop).
    pub fn close(mut self) -> LogResult<()> {
        self.sync()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // Buffered records reach the OS even if the caller forgot close(); errors cannot be reported here.
        let _ = self.flush();
    }
}

/// Create an empty segment (header only), all or nothing: the header is written to `{name}.tmp` (replacing any
/// leftover) and synced, then the file is renamed into place (replacing a leftover of a failed attempt); `durable`
/// also syncs the directory. On failure no file is left behind (removal is best effort; a leftover `.tmp` is
/// deleted on open, and a leftover segment is replaced by the next attempt).
fn create_segment(dir: &Path, first_idx: u64, durable: bool) -> LogResult<File> {
    let path = dir.join(format::segment_name(first_idx));
    let temp = dir.join(format!("{}.tmp", format::segment_name(first_idx)));
    let created = write_segment_header(&temp, first_idx).and_then(|file| {
        fs::rename(&temp, &path)
            .map(|()| file)
            .map_err(|err| LogError::io("rename", &temp, err))
    });
    let file = created.inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })?;
    if durable {
        sync_dir(dir).inspect_err(|_| {
            let _ = fs::remove_file(&path);
        })?;
    }
    Ok(file)
}

/// Write a segment header into a new file at `path` and sync it.
fn write_segment_header(path: &Path, first_idx: u64) -> LogResult<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|err| LogError::io("create", path, err))?;
    file.write_all(&format::segment_header(first_idx))
        .and_then(|()| file.sync_all())
        .map_err(|err| LogError::io("write", path, err))?;
    Ok(file)
}

/// A record's payload must fit the frame's length field and the reader's limit.
fn check_size(idx: u64, payload: &[u8]) -> LogResult<()> {
    if payload.len() > format::MAX_PAYLOAD as usize {
        return Err(LogError::Invalid(format!(
            "event {idx} is {} bytes, over the {}-byte record limit",
            payload.len(),
            format::MAX_PAYLOAD
        )));
    }
    Ok(())
}
