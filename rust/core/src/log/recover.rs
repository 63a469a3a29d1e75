//! Opening a log: the directory lock, the segment list, and the recovery of the segments a crash may have left
//! damaged (a torn tail is cut and its bytes kept in a side file; damage elsewhere is an error unless
//! [`Options::repair`] asks to cut there), reported in [`Recovery`].

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::format::{self, Cursor, Damage, Step, SEGMENT_HEADER};
use super::{
    create_segment, sync_dir, Cut, EventLog, LogError, LogResult, Options, Recovery, Segment, SparseIndex, Writer,
    PENDING_LIMIT,
};

impl EventLog {
    /// Open (or with `options.create`, create) the log in `dir`, recovering from a crash if needed.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> LogResult<Self> {
        let dir = dir.as_ref().to_owned();
        options.validate()?;
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
