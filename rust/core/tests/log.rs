//! The event log: round trips, durability bookkeeping, recovery from torn tails and damage, random
//! access, snapshots and replay, on the golden traces of `tests/data/golden/`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clusterstate_core::codec::{decode_indexed_event, encode};
use clusterstate_core::json::Case;
use clusterstate_core::log::{Durability, EventLog, LogError, Options};
use clusterstate_core::{fold, IndexedEvent, State};

fn golden(name: &str) -> Vec<IndexedEvent> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/golden")
        .join(name);
    fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| decode_indexed_event(line.as_bytes()).unwrap())
        .collect()
}

fn trace() -> Vec<IndexedEvent> {
    golden("trace_crash4.events.jsonl")
}

fn options() -> Options {
    Options {
        create: true,
        ..Options::default()
    }
}

fn small_segments() -> Options {
    Options {
        segment_bytes: 16 << 10,
        index_every: 8,
        ..options()
    }
}

fn write_log(dir: &Path, events: &[IndexedEvent], options: Options) {
    let mut log = EventLog::open(dir, options).unwrap();
    log.append_all(events).unwrap();
    log.close().unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_golden_record_round_trips_byte_for_byte() {
    for name in [
        "drawn.events.jsonl",
        "trace_crash4.events.jsonl",
        "trace_mesh8.events.jsonl",
        "trace_ring4.events.jsonl",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let events = golden(name);
        write_log(dir.path(), &events, small_segments());
        let mut log = EventLog::open(dir.path(), small_segments()).unwrap();
        assert!(log.recovery().is_clean());
        assert_eq!(log.len(), events.len() as u64);
        let raw = log.read_raw(0, u64::MAX).unwrap();
        let lines = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/data/golden")
                .join(name),
        )
        .unwrap();
        for ((idx, payload), line) in raw.iter().zip(lines.lines()) {
            assert_eq!(payload, line.as_bytes(), "{name} record {idx}");
        }
        assert_eq!(log.read_range(0, u64::MAX).unwrap(), events);
        let replayed = log.replay(&State::default()).unwrap();
        assert_eq!(replayed, fold(&State::default(), &events).unwrap(), "{name}");
    }
}

#[test]
fn a_json_batch_is_stored_canonically_in_order_or_not_at_all() {
    // Long enough to be decoded on several threads; the camelCase half must come out canonical too.
    let base = trace();
    let events: Vec<IndexedEvent> = (0..5000u64)
        .map(|idx| {
            let mut event = base[usize::try_from(idx).unwrap() % base.len()].clone();
            event.idx = idx;
            event
        })
        .collect();
    let json: Vec<Vec<u8>> = events
        .iter()
        .enumerate()
        .map(|(position, event)| encode(event, if position % 2 == 0 { Case::Snake } else { Case::Camel }))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut log = EventLog::open(dir.path(), options()).unwrap();
    let mut bad = json.clone();
    bad[4321] = b"{\"idx\":4321}".to_vec();
    match log.append_json(&bad) {
        Err(LogError::Decode(err)) => assert!(err.message.starts_with("event 4321 of the batch"), "{err}"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    let mut gap = json.clone();
    gap.remove(2500);
    assert!(matches!(
        log.append_json(&gap),
        Err(LogError::EventIndex {
            expected: 2500,
            got: 2501
        })
    ));
    assert_eq!(log.next_index(), 0);
    log.append_json(&json).unwrap();
    let stored = log.read_raw(0, 5000).unwrap();
    assert_eq!(stored.len(), events.len());
    for ((idx, payload), event) in stored.iter().zip(&events) {
        assert_eq!(*idx, event.idx);
        assert_eq!(*payload, encode(event, Case::Snake));
    }
}

/// `count` events cycling through the golden trace, re-indexed from 0.
fn reindexed(count: u64) -> Vec<IndexedEvent> {
    let base = trace();
    (0..count)
        .map(|idx| {
            let mut event = base[usize::try_from(idx).unwrap() % base.len()].clone();
            event.idx = idx;
            event
        })
        .collect()
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    segments(dir)
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).unwrap();
            (path.file_name().unwrap().into(), bytes)
        })
        .collect()
}

#[test]
fn a_json_batch_framed_on_several_threads_writes_the_same_files_as_single_appends() {
    // Small segments: the batch's chunks are cut by rotations. Default segments: no rotation, flushes of the
    // process buffer inside the batch. Sparse-index entries fall inside chunks either way.
    for options in [small_segments(), options()] {
        let events = reindexed(6000);
        let json: Vec<Vec<u8>> = events.iter().map(|e| encode(e, Case::Snake)).collect();
        let one_by_one = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(one_by_one.path(), options.clone()).unwrap();
        for event in &events[..10] {
            log.append(event).unwrap();
        }
        log.append_all(&events[10..]).unwrap();
        log.close().unwrap();
        let batched = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(batched.path(), options.clone()).unwrap();
        log.append_json(&json[..10]).unwrap();
        log.append_json(&json[10..]).unwrap();
        assert_eq!(log.next_index(), 6000);
        for (start, end) in [(0, 1), (9, 11), (255, 257), (2990, 3010), (5990, 6000)] {
            let got = log.read_range(start, end).unwrap();
            let want = &events[usize::try_from(start).unwrap()..usize::try_from(end).unwrap()];
            assert_eq!(got, want, "[{start}, {end})");
        }
        log.close().unwrap();
        let written = files(batched.path());
        let expected = files(one_by_one.path());
        assert_eq!(written.len(), expected.len());
        assert!(written == expected, "the segment files differ");
        // Reopened, the log reads the same records through the index it rebuilds from the files.
        let mut reopened = EventLog::open(batched.path(), options).unwrap();
        assert_eq!(reopened.read_range(2990, 3010).unwrap(), events[2990..3010]);
    }
}

#[test]
fn a_json_batch_fails_on_its_first_decode_error_then_idx_then_size_wherever_they_fall() {
    let events = reindexed(6000);
    let json: Vec<Vec<u8>> = events.iter().map(|e| encode(e, Case::Snake)).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut log = EventLog::open(dir.path(), options()).unwrap();
    // A gap early and a malformed payload late (in a later chunk): the decode error is reported.
    let mut both = json.clone();
    both[100] = encode(&events[101], Case::Snake);
    both[5900] = b"{}".to_vec();
    match log.append_json(&both) {
        Err(LogError::Decode(err)) => assert!(err.message.starts_with("event 5900 of the batch"), "{err}"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    // Two gaps in different chunks: the first is reported.
    let mut gaps = json.clone();
    gaps[5000] = encode(&events[4999], Case::Snake);
    gaps[10] = encode(&events[11], Case::Snake);
    assert!(matches!(
        log.append_json(&gaps),
        Err(LogError::EventIndex { expected: 10, got: 11 })
    ));
    // A record over the size limit late, a gap after it: the gap is reported; without the gap, the size.
    let huge = |idx: usize| {
        let name = "x".repeat(64 << 20);
        format!(
            r#"{{"idx":{idx},"origin":"a","event":{{"NodeGatheredInfo":{{"event_id":"big","node_id":"a","info":{{"MiscData":{{"friendly_name":"{name}"}}}}}}}}}}"#
        )
        .into_bytes()
    };
    let mut oversized = json.clone();
    oversized[3000] = huge(3000);
    oversized[5500] = encode(&events[5501], Case::Snake);
    assert!(matches!(
        log.append_json(&oversized),
        Err(LogError::EventIndex {
            expected: 5500,
            got: 5501
        })
    ));
    oversized[5500] = json[5500].clone();
    match log.append_json(&oversized) {
        Err(LogError::Invalid(message)) => assert!(message.starts_with("event 3000 is "), "{message}"),
        other => panic!("expected a size error, got {other:?}"),
    }
    // The same within one chunk: a gap, then a malformed payload; a record over the limit, then a gap.
    let mut near = json.clone();
    near[10] = encode(&events[11], Case::Snake);
    near[20] = b"[]".to_vec();
    match log.append_json(&near) {
        Err(LogError::Decode(err)) => assert!(err.message.starts_with("event 20 of the batch"), "{err}"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    let mut near = json.clone();
    near[10] = huge(10);
    near[20] = encode(&events[21], Case::Snake);
    assert!(matches!(
        log.append_json(&near),
        Err(LogError::EventIndex { expected: 20, got: 21 })
    ));
    // Nothing of the refused batches got in.
    assert_eq!(log.next_index(), 0);
    log.append_json(&json).unwrap();
    assert_eq!(log.read_range(5999, 6000).unwrap(), events[5999..]);
}

#[test]
fn segments_rotate_and_random_access_uses_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let events = trace();
    write_log(dir.path(), &events, small_segments());
    assert!(segments(dir.path()).len() > 3);
    let mut log = EventLog::open(dir.path(), small_segments()).unwrap();
    assert!(log.segment_count() > 3);
    for (start, end) in [(0, 1), (5, 9), (100, 350), (511, 513), (513, 600), (37, 37), (0, 513)] {
        let got = log.read_range(start, end).unwrap();
        let want: Vec<_> = events
            .iter()
            .filter(|e| e.idx >= start && e.idx < end)
            .cloned()
            .collect();
        assert_eq!(got, want, "[{start}, {end})");
    }
    // Replay from any point of the log gives the same State as a full fold.
    let full = fold(&State::default(), &events).unwrap();
    for cut in [0usize, 1, 100, 300, 512] {
        let partial = fold(&State::default(), &events[..=cut]).unwrap();
        assert_eq!(log.replay(&partial).unwrap(), full, "from {cut}");
    }
}

#[test]
fn appends_must_follow_and_a_reopened_log_continues() {
    let dir = tempfile::tempdir().unwrap();
    let events = trace();
    let mut log = EventLog::open(dir.path(), small_segments()).unwrap();
    assert!(matches!(
        log.append(&events[1]),
        Err(LogError::EventIndex { expected: 0, got: 1 })
    ));
    // All or nothing: a batch with a gap writes nothing.
    let mut gap = events[..5].to_vec();
    gap.remove(2);
    assert!(log.append_all(&gap).is_err());
    assert_eq!(log.next_index(), 0);
    log.append_all(&events[..200]).unwrap();
    drop(log);
    let mut log = EventLog::open(dir.path(), small_segments()).unwrap();
    assert_eq!(log.next_index(), 200);
    assert_eq!(log.durable_index(), Some(199));
    log.append_all(&events[200..]).unwrap();
    assert_eq!(log.read_range(0, u64::MAX).unwrap(), events);
}

#[test]
fn durability_policies_track_the_durable_index() {
    let events = trace();
    let dir = tempfile::tempdir().unwrap();
    let group = Options {
        durability: Durability::Group {
            records: 10,
            interval: Duration::from_secs(3600),
        },
        ..options()
    };
    let mut log = EventLog::open(dir.path(), group).unwrap();
    log.append_all(&events[..5]).unwrap();
    assert_eq!(log.durable_index(), None);
    log.append_all(&events[5..10]).unwrap();
    assert_eq!(log.durable_index(), Some(9));
    log.append(&events[10]).unwrap();
    assert_eq!(log.durable_index(), Some(9));
    log.sync().unwrap();
    assert_eq!(log.durable_index(), Some(10));
    drop(log);

    let dir = tempfile::tempdir().unwrap();
    let timed = Options {
        durability: Durability::Group {
            records: 1_000_000,
            interval: Duration::from_millis(20),
        },
        ..options()
    };
    let mut log = EventLog::open(dir.path(), timed).unwrap();
    log.append(&events[0]).unwrap();
    assert_eq!(log.durable_index(), None);
    std::thread::sleep(Duration::from_millis(30));
    log.append(&events[1]).unwrap();
    assert_eq!(log.durable_index(), Some(1));
    drop(log);

    let dir = tempfile::tempdir().unwrap();
    let none = Options {
        durability: Durability::None,
        ..small_segments()
    };
    let mut log = EventLog::open(dir.path(), none).unwrap();
    log.append_all(&events).unwrap();
    assert_eq!(log.durable_index(), None);
    log.sync().unwrap();
    assert_eq!(log.durable_index(), Some(512));
    assert_eq!(log.read_range(0, u64::MAX).unwrap(), events);
}

#[test]
fn missing_and_locked_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(
        EventLog::open(&missing, Options::default()),
        Err(LogError::NotFound { .. })
    ));
    let log = EventLog::open(&missing, options()).unwrap();
    assert!(matches!(
        EventLog::open(&missing, options()),
        Err(LogError::Locked { .. })
    ));
    drop(log);
    EventLog::open(&missing, options()).unwrap();
}

/// The last segment cut at every byte offset of its last records reopens to the longest valid prefix, with the
/// cut bytes saved aside.
#[test]
fn a_tail_cut_anywhere_reopens_to_the_longest_valid_prefix() {
    let events = trace();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_bytes: 64 << 10,
        ..options()
    };
    write_log(dir.path(), &events, opts.clone());
    let last = segments(dir.path()).pop().unwrap();
    let original = fs::read(&last).unwrap();
    let first_idx: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    // Record boundaries of the last segment.
    let mut ends = vec![16usize];
    let mut at = 16usize;
    while at < original.len() {
        let len = u32::from_le_bytes(original[at..at + 4].try_into().unwrap()) as usize;
        at += 20 + len;
        ends.push(at);
    }
    assert_eq!(at, original.len());
    let from = ends[ends.len().saturating_sub(3)];
    for cut in (from..original.len()).chain([0, 7, 16]) {
        let work = tempfile::tempdir().unwrap();
        for entry in fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "seg") {
                fs::copy(&path, work.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let target = work.path().join(last.file_name().unwrap());
        fs::write(&target, &original[..cut]).unwrap();
        let mut log = EventLog::open(work.path(), opts.clone()).unwrap();
        let whole = ends.iter().filter(|&&end| end <= cut).count().saturating_sub(1) as u64;
        assert_eq!(log.next_index(), first_idx + whole, "cut at {cut}");
        let valid_end = ends.iter().copied().filter(|&end| end <= cut).max().unwrap_or(0);
        if cut == valid_end && cut >= 16 {
            assert!(log.recovery().is_clean(), "cut at {cut}");
        } else if cut < 16 {
            // Shorter than its header, after other segments: it holds nothing and is moved aside whole.
            assert!(log.recovery().cuts.is_empty(), "cut at {cut}");
            let [aside] = &log.recovery().removed_segments[..] else {
                panic!("cut at {cut}: {:?}", log.recovery())
            };
            assert_eq!(fs::read(aside).unwrap(), original[..cut]);
        } else {
            let report = &log.recovery().cuts[0];
            assert!(report.torn);
            assert_eq!(
                fs::read(report.saved_to.as_ref().unwrap()).unwrap(),
                original[valid_end.max(if cut < 16 { 0 } else { 16 }).min(cut)..cut]
            );
        }
        let n = usize::try_from(log.next_index()).unwrap();
        assert_eq!(log.read_range(0, u64::MAX).unwrap(), events[..n]);
        if cut % 97 == 0 {
            // The log continues after the cut.
            log.append_all(&events[n..]).unwrap();
            assert_eq!(
                log.replay(&State::default()).unwrap(),
                fold(&State::default(), &events).unwrap()
            );
        }
    }
}

#[test]
fn a_zeroed_tail_is_torn_but_a_flipped_bit_in_the_middle_is_corruption() {
    let events = trace();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events[..100], options());
    let seg = segments(dir.path()).pop().unwrap();
    let clean = fs::read(&seg).unwrap();
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0u8; 4096])
        .unwrap();
    let log = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!(log.next_index(), 100);
    assert!(log.recovery().cuts[0].torn);
    drop(log);

    for position in [clean.len() / 3, 16 + 2, 16 + 10, clean.len() / 2 + 17] {
        let mut damaged = clean.clone();
        damaged[position] ^= 0x10;
        fs::write(&seg, &damaged).unwrap();
        match EventLog::open(dir.path(), options()) {
            Err(LogError::Corrupted { segment, offset, .. }) => {
                assert_eq!(segment, seg);
                assert!(offset <= position as u64, "{offset} > {position}");
            }
            other => panic!("flip at {position}: {:?}", other.map(|l| l.next_index())),
        }
        // Repair mode cuts there on request and keeps the bytes.
        let log = EventLog::open(
            dir.path(),
            Options {
                repair: true,
                ..options()
            },
        )
        .unwrap();
        assert!(log.next_index() < 100);
        assert!(!log.recovery().cuts[0].torn);
        drop(log);
        fs::write(&seg, &clean).unwrap();
    }
}

#[test]
fn damage_in_an_older_segment_is_reported_when_read_or_verified() {
    let events = trace();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events, small_segments());
    let first = segments(dir.path())[1].clone();
    let mut bytes = fs::read(&first).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(&first, &bytes).unwrap();
    // Open checks only the older segments' headers; reading them finds the damage.
    let mut log = EventLog::open(dir.path(), small_segments()).unwrap();
    assert!(matches!(log.replay(&State::default()), Err(LogError::Corrupted { segment, .. }) if segment == first));
    drop(log);
    let verify = Options {
        verify_all: true,
        ..small_segments()
    };
    assert!(matches!(EventLog::open(dir.path(), verify), Err(LogError::Corrupted { segment, .. }) if segment == first));
    // A missing middle segment is a gap, not a shorter log.
    fs::remove_file(&first).unwrap();
    assert!(matches!(
        EventLog::open(dir.path(), verify_gap()),
        Err(LogError::Corrupted { .. })
    ));
}

fn verify_gap() -> Options {
    Options {
        verify_all: true,
        ..small_segments()
    }
}

#[test]
fn snapshot_plus_tail_equals_full_replay() {
    let events = trace();
    let dir = tempfile::tempdir().unwrap();
    let mut log = EventLog::open(dir.path(), small_segments()).unwrap();
    log.append_all(&events[..300]).unwrap();
    let at_299 = fold(&State::default(), &events[..300]).unwrap();
    assert_eq!(log.snapshot(&at_299).unwrap(), 299);
    log.append_all(&events[300..]).unwrap();
    assert!(log.snapshot(&State::default()).is_err());
    drop(log);
    let mut log = EventLog::open(dir.path(), small_segments()).unwrap();
    let loaded = log.load_state().unwrap();
    assert_eq!(loaded.snapshot, Some(299));
    let full = fold(&State::default(), &events).unwrap();
    assert_eq!(loaded.state, full);
    // A damaged snapshot is skipped (and reported) in favour of an older one or the full log.
    let snap = dir.path().join(format!("{:020}.snap", 299));
    let mut bytes = fs::read(&snap).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 4;
    fs::write(&snap, bytes).unwrap();
    let loaded = log.load_state().unwrap();
    assert_eq!(loaded.snapshot, None);
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.state, full);
}

/// Measures decode and apply costs per event (the record-encoding decision); `cargo test --release -- --ignored`.
#[test]
#[ignore = "measurement, not a test"]
#[allow(clippy::cast_precision_loss)]
fn measure_encoding_costs() {
    let events = trace();
    let mut all = Vec::new();
    for _ in 0..200 {
        all.extend(events.iter().cloned());
    }
    let payloads: Vec<Vec<u8>> = events.iter().map(|e| encode(e, Case::Snake)).collect();
    let n = all.len();
    let started = Instant::now();
    for _ in 0..200 {
        for p in &payloads {
            std::hint::black_box(decode_indexed_event(p).unwrap());
        }
    }
    let decode = started.elapsed().as_secs_f64() / n as f64;
    let started = Instant::now();
    for _ in 0..200 {
        for e in &events {
            std::hint::black_box(encode(e, Case::Snake));
        }
    }
    let enc = started.elapsed().as_secs_f64() / n as f64;
    let started = Instant::now();
    let _ = std::hint::black_box(fold(&State::default(), &events).unwrap());
    let apply = started.elapsed().as_secs_f64() / events.len() as f64;
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    eprintln!(
        "decode {:.3} us/event, encode {:.3} us/event, apply {:.3} us/event, {} bytes/event",
        decode * 1e6,
        enc * 1e6,
        apply * 1e6,
        bytes / events.len()
    );
}

/// Replay throughput on `$CS_LOG_JSONL` (one event per line); `cargo test --release -- --ignored`.
#[test]
#[ignore = "measurement, not a test"]
#[allow(clippy::cast_precision_loss)]
fn measure_replay() {
    let Ok(path) = std::env::var("CS_LOG_JSONL") else {
        return;
    };
    let text = fs::read_to_string(path).unwrap();
    let events: Vec<IndexedEvent> = text
        .lines()
        .map(|l| decode_indexed_event(l.as_bytes()).unwrap())
        .collect();
    let n = events.len() as f64;
    let dir = tempfile::tempdir().unwrap();
    let mut log = EventLog::open(
        dir.path(),
        Options {
            durability: Durability::None,
            ..options()
        },
    )
    .unwrap();
    let started = Instant::now();
    log.append_all(&events).unwrap();
    log.flush().unwrap();
    eprintln!(
        "append (encode+frame+write) {:.0}/s",
        n / started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let state = log.replay(&State::default()).unwrap();
    eprintln!("replay pipelined {:.0}/s", n / started.elapsed().as_secs_f64());
    let started = Instant::now();
    let raw = log.read_raw(0, u64::MAX).unwrap();
    eprintln!("read raw {:.0}/s", n / started.elapsed().as_secs_f64());
    let started = Instant::now();
    let decoded: Vec<IndexedEvent> = raw.iter().map(|(_, p)| decode_indexed_event(p).unwrap()).collect();
    eprintln!("decode {:.0}/s", n / started.elapsed().as_secs_f64());
    let started = Instant::now();
    let folded = fold(&State::default(), &decoded).unwrap();
    eprintln!("fold {:.0}/s", n / started.elapsed().as_secs_f64());
    assert_eq!(folded, state);
}

/// Offsets of the records of a segment file, and where the last one ends.
fn record_starts(segment: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 16usize;
    while at < segment.len() {
        starts.push(at);
        at += 20 + u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
    }
    assert_eq!(at, segment.len());
    starts.push(at);
    starts
}

fn side_files(dir: &Path, marker: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().contains(marker))
        .collect();
    paths.sort();
    paths
}

#[test]
fn a_later_cut_never_overwrites_the_bytes_an_earlier_cut_saved() {
    let events = trace();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events[..100], options());
    let [seg] = &segments(dir.path())[..] else { panic!() };
    let mut bytes = fs::read(seg).unwrap();
    let starts = record_starts(&bytes);
    let saved_first = bytes[starts[50]..].to_vec();
    bytes[starts[50] + 30] ^= 0x01; // a flipped bit in record 50
    fs::write(seg, &bytes).unwrap();
    let repair = Options {
        repair: true,
        ..options()
    };
    let mut log = EventLog::open(dir.path(), repair).unwrap();
    assert_eq!(log.next_index(), 50);
    let first_copy = log.recovery().cuts[0].saved_to.clone().unwrap();
    let mut flipped = saved_first.clone();
    flipped[30] ^= 0x01;
    assert_eq!(fs::read(&first_copy).unwrap(), flipped); // records 50-99 as they were on disk
    log.append(&events[50]).unwrap();
    log.close().unwrap();
    let bytes = fs::read(seg).unwrap();
    fs::write(seg, &bytes[..bytes.len() - 5]).unwrap(); // a torn tail at the same offset
    let log = EventLog::open(dir.path(), options()).unwrap();
    assert_eq!(log.next_index(), 50);
    let second = &log.recovery().cuts[0];
    assert!(second.torn);
    assert_eq!(second.offset, starts[50] as u64);
    let second_copy = second.saved_to.clone().unwrap();
    assert_ne!(second_copy, first_copy);
    assert_eq!(fs::read(&first_copy).unwrap(), flipped);
    assert_eq!(fs::read(&second_copy).unwrap(), bytes[starts[50]..bytes.len() - 5]);
    assert_eq!(side_files(dir.path(), ".cut-"), [first_copy, second_copy]);
}

fn read_only() -> Options {
    Options {
        read_only: true,
        ..Options::default()
    }
}

#[test]
fn a_read_only_open_changes_nothing_shares_the_lock_and_refuses_writes() {
    let events = trace();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events[..100], small_segments());
    let last = segments(dir.path()).pop().unwrap();
    let bytes = fs::read(&last).unwrap();
    fs::write(&last, &bytes[..bytes.len() - 5]).unwrap(); // a torn tail
    fs::write(dir.path().join("00000000000000000003.snap.tmp"), b"half a snapshot").unwrap();
    let listing = |dir: &Path| {
        let mut all: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), fs::read(&p).unwrap()))
            .collect();
        all.sort();
        all
    };
    let before = listing(dir.path());
    let mut reader = EventLog::open(dir.path(), read_only()).unwrap();
    let other = EventLog::open(dir.path(), read_only()).unwrap(); // readers share the lock
    assert!(matches!(
        EventLog::open(dir.path(), Options::default()),
        Err(LogError::Locked { .. })
    ));
    assert!(reader.is_read_only());
    assert_eq!(reader.next_index(), 99);
    let torn = &reader.recovery().cuts[0];
    assert!(torn.torn);
    assert_eq!(torn.saved_to, None);
    assert_eq!(torn.offset + torn.bytes, bytes.len() as u64 - 5);
    assert_eq!(reader.read_range(0, u64::MAX).unwrap(), events[..99]);
    assert_eq!(
        reader.replay(&State::default()).unwrap(),
        fold(&State::default(), &events[..99]).unwrap()
    );
    assert_eq!(reader.load_state().unwrap().state.last_event_applied_idx, 98);
    assert!(matches!(reader.append(&events[99]), Err(LogError::ReadOnly { .. })));
    assert!(matches!(
        reader.append_json(&[encode(&events[99], Case::Snake)]),
        Err(LogError::ReadOnly { .. })
    ));
    let state = reader.replay(&State::default()).unwrap();
    assert!(matches!(reader.snapshot(&state), Err(LogError::ReadOnly { .. })));
    reader.sync().unwrap();
    drop(other);
    reader.close().unwrap();
    assert_eq!(listing(dir.path()), before);
    // A writer cuts the tail and deletes the leftover.
    let log = EventLog::open(dir.path(), small_segments()).unwrap();
    assert_eq!(log.next_index(), 99);
    assert!(log.recovery().cuts[0].saved_to.is_some());
    assert!(side_files(dir.path(), ".tmp").is_empty());
    drop(log);
    for refused in [
        Options {
            create: true,
            ..read_only()
        },
        Options {
            repair: true,
            ..read_only()
        },
    ] {
        assert!(matches!(EventLog::open(dir.path(), refused), Err(LogError::Invalid(_))));
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        EventLog::open(empty.path(), read_only()),
        Err(LogError::Invalid(_))
    ));
    assert!(matches!(
        EventLog::open(empty.path().join("missing"), read_only()),
        Err(LogError::NotFound { .. })
    ));
}

#[test]
fn an_empty_segment_left_by_an_interrupted_rotation_wedges_nothing() {
    let events = trace();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events[..100], small_segments());
    let count = segments(dir.path()).len();
    assert!(count > 1);
    // What a crash (or a full disk) in the middle of creating segment 100 can leave: an empty file, a temporary.
    let empty = dir.path().join(format!("{:020}.seg", 100));
    fs::write(&empty, b"").unwrap();
    fs::write(dir.path().join(format!("{:020}.seg.tmp", 100)), b"CSEV").unwrap();
    let reader = EventLog::open(dir.path(), read_only()).unwrap();
    assert_eq!((reader.next_index(), reader.segment_count()), (100, count));
    drop(reader);
    let mut log = EventLog::open(dir.path(), small_segments()).unwrap();
    assert_eq!((log.next_index(), log.segment_count()), (100, count));
    assert_eq!(
        log.recovery().removed_segments,
        [dir.path().join(format!("{:020}.seg.cut", 100))]
    );
    assert!(side_files(dir.path(), ".tmp").is_empty());
    log.append_all(&events[100..]).unwrap();
    log.close().unwrap();
    let mut log = EventLog::open(
        dir.path(),
        Options {
            verify_all: true,
            ..small_segments()
        },
    )
    .unwrap();
    assert!(log.recovery().is_clean());
    assert!(log.segment_count() > count);
    assert_eq!(log.read_range(0, u64::MAX).unwrap(), events);
}

#[test]
fn durability_names_read_and_write() {
    for name in ["fsync", "group", "none"] {
        assert_eq!(name.parse::<Durability>().unwrap().name(), name);
    }
    assert_eq!("fsync".parse::<Durability>().unwrap(), Durability::EveryAppend);
    assert_eq!(
        "group".parse::<Durability>().unwrap(),
        Durability::Group {
            records: 1000,
            interval: Duration::from_millis(5)
        }
    );
    let err = "sometimes".parse::<Durability>().unwrap_err();
    assert_eq!(
        err.to_string(),
        LogError::Invalid("durability must be 'fsync', 'group' or 'none', not \"sometimes\"".to_owned()).to_string()
    );
    assert_eq!(
        Durability::group(10, 2.5).unwrap(),
        Durability::Group {
            records: 10,
            interval: Duration::from_micros(2500)
        }
    );
    for (records, ms) in [(0, 5.0), (1, -1.0), (1, f64::NAN), (1, f64::INFINITY)] {
        assert!(
            matches!(Durability::group(records, ms), Err(LogError::Invalid(_))),
            "{records} {ms}"
        );
    }
}

#[test]
fn invalid_options_are_refused_before_the_directory_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    for bad in [
        Options {
            segment_bytes: 4095,
            ..options()
        },
        Options {
            index_every: 0,
            ..options()
        },
        Options {
            durability: Durability::Group {
                records: 0,
                interval: Duration::ZERO,
            },
            ..options()
        },
        Options {
            read_only: true,
            ..options()
        },
    ] {
        assert!(matches!(bad.validate(), Err(LogError::Invalid(_))), "{bad:?}");
        let described = format!("{bad:?}");
        assert!(
            matches!(EventLog::open(&path, bad), Err(LogError::Invalid(_))),
            "{described}"
        );
        assert!(!path.exists());
    }
    let smallest = Options {
        segment_bytes: 4096,
        index_every: 1,
        ..options()
    };
    assert!(smallest.validate().is_ok());
    assert!(EventLog::open(&path, smallest).is_ok());
}
