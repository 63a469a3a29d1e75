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
mod snapshot;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{LogError, LogResult};
pub use read::Reader;
pub use snapshot::LoadedState;

use crate::events::IndexedEvent;
use crate::json::{self, Case};
use format::{Cursor, Damage, Step, RECORD_HEADER, SEGMENT_HEADER};

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

/// How to open a log.
#[derive(Clone, Debug)]
#[allow(clippy::struct_excessive_bools)] // independent switches, each named like its Python keyword
pub struct Options {
    /// The durability policy.
    pub durability: Durability,
    /// Create the directory if it does not exist (otherwise: [`LogError::NotFound`]).
    pub create: bool,
    /// Start a new segment when the active one would grow past this many bytes.
    pub segment_bytes: u64,
    /// One sparse-index entry every this many records.
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
    /// Open (or with `options.create`, create) the log in `dir`, recovering from a crash if needed.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> LogResult<Self> {
        let dir = dir.as_ref().to_owned();
        if options.read_only && (options.create || options.repair) {
            return Err(LogError::Invalid(
                "a read-only log cannot be created or repaired (open it writable)".to_owned(),
            ));
        }
        if !dir.is_dir() {
            if dir.exists() {
                return Err(LogError::Invalid(format!("{} is not a directory", dir.display())));
            }
            if !options.create {
                return Err(LogError::NotFound { path: dir });
            }
            fs::create_dir_all(&dir).map_err(|err| LogError::io("create directory", &dir, err))?;
        }
        let lock = lock_dir(&dir, options.read_only)?;
        let mut segments = list_segments(&dir, options.read_only)?;
        if segments.is_empty() {
            if options.read_only {
                return Err(LogError::Invalid(format!(
                    "{} holds no segment: not an event log (open it writable to start one)",
                    dir.display()
                )));
            }
            create_segment(&dir, 0, true)?;
            segments.push(Segment {
                first_idx: 0,
                path: dir.join(format::segment_name(0)),
            });
        }
        let mut recovery = Recovery::default();
        let (segments, active) = recover(&dir, segments, &options, &mut recovery)?;
        let path = active.path.clone();
        let file = OpenOptions::new()
            .read(true)
            .write(!options.read_only)
            .open(&path)
            .map_err(|err| LogError::io("open", &path, err))?;
        if !options.read_only {
            // What survived the crash is on disk from now on.
            file.sync_all().map_err(|err| LogError::io("sync", &path, err))?;
        }
        let next_idx = active.first_idx + active.records;
        let writer = Writer {
            file,
            path,
            first_idx: active.first_idx,
            written: active.end,
            pending: Vec::with_capacity(PENDING_LIMIT + (64 << 10)),
            pending_first: next_idx,
            records: active.records,
            index: active.index,
        };
        let mut log = Self {
            dir,
            _lock: lock,
            options,
            segments,
            writer,
            next_idx,
            durable_next: next_idx,
            dirty: Vec::new(),
            dir_dirty: false,
            oldest_unsynced: None,
            cache: VecDeque::new(),
            scratch: Vec::with_capacity(4096),
            recovery,
        };
        log.writer
            .file
            .seek(SeekFrom::Start(log.writer.written))
            .map_err(|err| LogError::io("seek", &log.writer.path, err))?;
        Ok(log)
    }

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

/// Take the directory's lock: exclusive for a writer, shared for a reader (`read_only`), who creates `LOCK` only
/// if it is missing.
fn lock_dir(dir: &Path, read_only: bool) -> LogResult<File> {
    let path = dir.join("LOCK");
    let existing = if read_only { File::open(&path).ok() } else { None };
    let file = match existing {
        Some(file) => file,
        None => OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| LogError::io("open", &path, err))?,
    };
    let locked = if read_only {
        fs4::FileExt::try_lock_shared(&file)
    } else {
        fs4::FileExt::try_lock(&file)
    };
    match locked {
        Ok(()) => Ok(file),
        Err(fs4::TryLockError::WouldBlock) => Err(LogError::Locked { path: dir.to_owned() }),
        Err(fs4::TryLockError::Error(err)) => Err(LogError::io("lock", &path, err)),
    }
}

/// The segments of `dir` in idx order; a writer (`!read_only`) also deletes the `*.tmp` files a crash left.
fn list_segments(dir: &Path, read_only: bool) -> LogResult<Vec<Segment>> {
    let entries = fs::read_dir(dir).map_err(|err| LogError::io("list", dir, err))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| LogError::io("list", dir, err))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first_idx) = format::parse_segment_name(name) {
            segments.push(Segment {
                first_idx,
                path: entry.path(),
            });
        } else if !read_only && Path::new(name).extension().is_some_and(|ext| ext == "tmp") {
            // A snapshot or segment that was being written when the process died; never renamed, so never valid.
            let _ = fs::remove_file(entry.path());
        }
    }
    segments.sort_by_key(|s| s.first_idx);
    Ok(segments)
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

/// The verified state of the active segment after recovery.
struct Active {
    first_idx: u64,
    path: PathBuf,
    records: u64,
    end: u64,
    index: SparseIndex,
}

/// The result of reading a whole segment.
pub(crate) struct Scan {
    pub records: u64,
    pub end: u64,
    pub file_len: u64,
    pub index: SparseIndex,
    pub damage: Option<(u64, Damage)>,
}

/// Read every record of a segment, checking its header and each record's CRCs and idx.
pub(crate) fn scan_segment(path: &Path, first_idx: u64, index_every: u32) -> LogResult<Scan> {
    let mut file = File::open(path).map_err(|err| LogError::io("open", path, err))?;
    let file_len = file.metadata().map_err(|err| LogError::io("stat", path, err))?.len();
    check_header(&mut file, path, first_idx, file_len)?;
    let mut cursor =
        Cursor::new(file, path, SEGMENT_HEADER, file_len, first_idx).map_err(|err| LogError::io("read", path, err))?;
    let mut index = Vec::new();
    let mut payload = Vec::new();
    let every = u64::from(index_every.max(1));
    let mut records = 0u64;
    loop {
        match cursor
            .next(&mut payload)
            .map_err(|err| LogError::io("read", path, err))?
        {
            Step::Record { idx, offset } => {
                if records % every == 0 {
                    index.push((idx, offset));
                }
                records += 1;
            }
            Step::End => {
                return Ok(Scan {
                    records,
                    end: cursor.offset(),
                    file_len,
                    index,
                    damage: None,
                })
            }
            Step::Bad { offset, damage } => {
                return Ok(Scan {
                    records,
                    end: offset,
                    file_len,
                    index,
                    damage: Some((offset, damage)),
                })
            }
        }
    }
}

/// Check a segment's 16-byte header (a short file is reported as damage at offset 0).
fn check_header(file: &mut File, path: &Path, first_idx: u64, file_len: u64) -> LogResult<()> {
    if file_len < SEGMENT_HEADER {
        return Err(LogError::corrupted(path, 0, "segment header is incomplete"));
    }
    let mut header = [0u8; 16];
    file.read_exact(&mut header)
        .map_err(|err| LogError::io("read", path, err))?;
    if header != format::segment_header(first_idx) {
        return Err(LogError::corrupted(
            path,
            0,
            format!("segment header does not match its name (first idx {first_idx})"),
        ));
    }
    Ok(())
}

/// Whether damage found at `offset` of the last segment is a torn tail (the write that a crash interrupted):
/// the file ends inside the record, or the record's payload is wrong and nothing but zeros follows it, or the
/// header is wrong and everything from `offset` on is zeros (space the file system allocated but never wrote).
fn is_torn_tail(path: &Path, offset: u64, damage: Damage, file_len: u64) -> LogResult<bool> {
    Ok(match damage {
        Damage::Incomplete => true,
        Damage::PayloadChecksum { end } => {
            let mut file = File::open(path).map_err(|err| LogError::io("open", path, err))?;
            end >= file_len || format::zeros_from(&mut file, end).map_err(|err| LogError::io("read", path, err))?
        }
        Damage::HeaderChecksum | Damage::TooLong => {
            let mut file = File::open(path).map_err(|err| LogError::io("open", path, err))?;
            format::zeros_from(&mut file, offset).map_err(|err| LogError::io("read", path, err))?
        }
        Damage::WrongIndex { .. } => false,
    })
}

/// Cut `path` at `offset`, saving the cut bytes first to a side file of their own (`{segment}.cut-{offset}`, see
/// [`unused_path`]). A `read_only` log leaves the file as it is and only reports the cut.
fn cut_segment(dir: &Path, path: &Path, offset: u64, reason: String, torn: bool, read_only: bool) -> LogResult<Cut> {
    if read_only {
        let len = fs::metadata(path).map_err(|err| LogError::io("stat", path, err))?.len();
        return Ok(Cut {
            segment: path.to_owned(),
            offset,
            bytes: len.saturating_sub(offset),
            saved_to: None,
            reason,
            torn,
        });
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|err| LogError::io("open", path, err))?;
    let mut cut = Vec::new();
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_to_end(&mut cut))
        .map_err(|err| LogError::io("read", path, err))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("segment");
    let saved_to = unused_path(&dir.join(format!("{name}.cut-{offset}")));
    let mut side = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&saved_to)
        .map_err(|err| LogError::io("create", &saved_to, err))?;
    side.write_all(&cut)
        .and_then(|()| side.sync_all())
        .map_err(|err| LogError::io("write", &saved_to, err))?;
    file.set_len(offset)
        .and_then(|()| file.sync_all())
        .map_err(|err| LogError::io("truncate", path, err))?;
    sync_dir(dir)?;
    Ok(Cut {
        segment: path.to_owned(),
        offset,
        bytes: cut.len() as u64,
        saved_to: Some(saved_to),
        reason,
        torn,
    })
}

/// `base` if no file has that name, else the first free `base.1`, `base.2`, …: what a cut saves is never
/// overwritten by a later cut.
fn unused_path(base: &Path) -> PathBuf {
    let mut path = base.to_owned();
    let mut n = 0u64;
    while fs::symlink_metadata(&path).is_ok() {
        n += 1;
        let mut name = base.as_os_str().to_owned();
        name.push(format!(".{n}"));
        path = PathBuf::from(name);
    }
    path
}

/// Move a segment aside as `{segment}.cut` (see [`unused_path`]) and report it; a `read_only` log only forgets it.
fn move_aside(segment: &Segment, read_only: bool, recovery: &mut Recovery) -> LogResult<()> {
    if read_only {
        return Ok(());
    }
    let aside = unused_path(&segment.path.with_extension("seg.cut"));
    fs::rename(&segment.path, &aside).map_err(|err| LogError::io("rename", &segment.path, err))?;
    recovery.removed_segments.push(aside);
    Ok(())
}

/// A last segment shorter than its header, after others: its creation was interrupted, it holds no record. It is
/// moved aside (no disk space needed), and the segment before it is the active one again.
fn drop_short_last_segment(segments: &mut Vec<Segment>, read_only: bool, recovery: &mut Recovery) -> LogResult<()> {
    if let [.., _, last] = segments.as_slice() {
        let len = fs::metadata(&last.path)
            .map_err(|err| LogError::io("stat", &last.path, err))?
            .len();
        if len < SEGMENT_HEADER {
            if let Some(short) = segments.pop() {
                move_aside(&short, read_only, recovery)?;
            }
        }
    }
    Ok(())
}

/// Verify the segments (the last one always, all with `verify_all`/`repair`), cut a torn tail, and return the
/// segments that remain and the state of the last one.
fn recover(
    dir: &Path,
    mut segments: Vec<Segment>,
    options: &Options,
    recovery: &mut Recovery,
) -> LogResult<(Vec<Segment>, Active)> {
    let verify_all = options.verify_all || options.repair;
    let read_only = options.read_only;
    drop_short_last_segment(&mut segments, read_only, recovery)?;
    let mut position = 0;
    loop {
        let last = position + 1 == segments.len();
        let segment = segments[position].clone();
        if !last && !verify_all {
            let mut file = File::open(&segment.path).map_err(|err| LogError::io("open", &segment.path, err))?;
            let len = file
                .metadata()
                .map_err(|err| LogError::io("stat", &segment.path, err))?
                .len();
            check_header(&mut file, &segment.path, segment.first_idx, len)?;
            position += 1;
            continue;
        }
        let scan = match scan_segment(&segment.path, segment.first_idx, options.index_every) {
            Ok(scan) => scan,
            Err(LogError::Corrupted { offset: 0, reason, .. }) if last || options.repair => {
                // A damaged or incomplete segment header. A header shorter than 16 bytes in the last segment is the
                // torn creation of that segment; otherwise only repair mode rewrites it.
                let len = fs::metadata(&segment.path)
                    .map_err(|err| LogError::io("stat", &segment.path, err))?
                    .len();
                let torn = last && len < SEGMENT_HEADER;
                if !torn && !options.repair {
                    return Err(LogError::corrupted(&segment.path, 0, reason));
                }
                recovery
                    .cuts
                    .push(cut_segment(dir, &segment.path, 0, reason, torn, read_only)?);
                if !read_only {
                    let mut file = OpenOptions::new()
                        .write(true)
                        .open(&segment.path)
                        .map_err(|err| LogError::io("open", &segment.path, err))?;
                    file.write_all(&format::segment_header(segment.first_idx))
                        .and_then(|()| file.sync_all())
                        .map_err(|err| LogError::io("write", &segment.path, err))?;
                }
                Scan {
                    records: 0,
                    end: SEGMENT_HEADER,
                    file_len: SEGMENT_HEADER,
                    index: Vec::new(),
                    damage: None,
                }
            }
            Err(err) => return Err(err),
        };
        let mut stop_here = last;
        if let Some((offset, damage)) = scan.damage {
            let expected = segment.first_idx + scan.records;
            let reason = damage.describe(expected);
            let torn = last && is_torn_tail(&segment.path, offset, damage, scan.file_len)?;
            if !torn && !options.repair {
                return Err(LogError::corrupted(&segment.path, offset, reason));
            }
            recovery
                .cuts
                .push(cut_segment(dir, &segment.path, offset, reason, torn, read_only)?);
            stop_here = true;
        } else if !last {
            let next_first = segments[position + 1].first_idx;
            let end_idx = segment.first_idx + scan.records;
            if end_idx != next_first {
                if !options.repair {
                    return Err(LogError::corrupted(
                        &segment.path,
                        scan.end,
                        format!("segment ends before idx {end_idx} but the next segment starts at idx {next_first}"),
                    ));
                }
                stop_here = true;
            }
        }
        if stop_here {
            for later in segments.drain(position + 1..) {
                move_aside(&later, read_only, recovery)?;
            }
            if !recovery.removed_segments.is_empty() {
                sync_dir(dir)?;
            }
            let active = Active {
                first_idx: segment.first_idx,
                path: segment.path,
                records: scan.records,
                end: scan.end,
                index: scan.index,
            };
            return Ok((segments, active));
        }
        position += 1;
    }
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
