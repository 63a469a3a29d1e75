//! The reducer's own cost per heartbeat on a Rust-owned State (a quick measurement, not a bench): fold a
//! JSON-lines trace, then apply up to 2,000 of its heartbeat samples (`MacmonMetrics`, `MemoryUsage`) in place,
//! re-indexed, over and over (about 400,000 applications).
//!
//! `cargo run --release -p clusterstate-core --example heartbeats -- events.jsonl`

use std::time::Instant;

use clusterstate_core::codec::decode_indexed_event;
use clusterstate_core::profiling::GatheredInfo;
use clusterstate_core::{apply_mut, fold, Event, IndexedEvent, State};

const SAMPLES: usize = 2_000;
const APPLICATIONS: usize = 400_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: heartbeats EVENTS.jsonl")?;
    let text = std::fs::read_to_string(&path)?;
    let events: Vec<IndexedEvent> = text
        .lines()
        .map(|line| decode_indexed_event(line.as_bytes()))
        .collect::<Result<_, _>>()?;
    let mut state = fold(&State::default(), &events)?;
    let is_heartbeat = |event: &&IndexedEvent| {
        matches!(&event.event, Event::NodeGatheredInfo(info)
            if matches!(info.info, GatheredInfo::MemoryUsage(_) | GatheredInfo::MacmonMetrics(_)))
    };
    let mut samples: Vec<IndexedEvent> = events.iter().filter(is_heartbeat).take(SAMPLES).cloned().collect();
    if samples.is_empty() {
        return Err("no heartbeat in the trace".into());
    }
    let mut next = u64::try_from(state.last_event_applied_idx + 1)?;
    let rounds = APPLICATIONS / samples.len() + 1;
    let start = Instant::now();
    for _ in 0..rounds {
        for sample in &mut samples {
            sample.idx = next;
            next += 1;
            apply_mut(&mut state, sample)?;
        }
    }
    let elapsed = start.elapsed();
    let applied = u32::try_from(rounds * samples.len())?;
    eprintln!(
        "{path}: {} nodes, {} samples applied {applied} times: {:?} per heartbeat",
        state.topology.len(),
        samples.len(),
        elapsed / applied
    );
    Ok(())
}
