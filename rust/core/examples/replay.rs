//! Replay a JSON-lines file of indexed events and report decode and apply costs (a quick measurement, not a bench).
//!
//! `cargo run --release -p clusterstate-core --example replay -- events.jsonl`

use std::time::Instant;

use clusterstate_core::codec::decode_indexed_event;
use clusterstate_core::{apply_mut, IndexedEvent, State};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: replay EVENTS.jsonl")?;
    let text = std::fs::read_to_string(&path)?;
    let start = Instant::now();
    let events: Vec<IndexedEvent> = text
        .lines()
        .map(|line| decode_indexed_event(line.as_bytes()))
        .collect::<Result<_, _>>()?;
    let decode = start.elapsed();
    let mut state = State::default();
    let mut worst = (std::time::Duration::ZERO, "");
    let mut by_kind: std::collections::BTreeMap<String, (std::time::Duration, usize)> =
        std::collections::BTreeMap::new();
    let start = Instant::now();
    for event in &events {
        let t = Instant::now();
        apply_mut(&mut state, event)?;
        let took = t.elapsed();
        let kind = match &event.event {
            clusterstate_core::Event::NodeGatheredInfo(e) => {
                let text = serde_json::to_string(&e.info).unwrap_or_default();
                let tag: String = text.chars().skip(2).take_while(|c| *c != '"').collect();
                format!("NodeGatheredInfo.{tag}")
            }
            other => other.tag().to_owned(),
        };
        let slot = by_kind.entry(kind).or_default();
        slot.0 += took;
        slot.1 += 1;
        if took > worst.0 {
            worst = (took, event.event.tag());
        }
    }
    let applied = start.elapsed();
    // Tail: the last 10% of events, on the full-size State.
    let tail = events.len() / 10;
    let base = clusterstate_core::fold(&State::default(), &events[..events.len() - tail])?;
    let start = Instant::now();
    let _ = clusterstate_core::fold(&base, &events[events.len() - tail..])?;
    let tail_time = start.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let per = |d: std::time::Duration, n: usize| d.as_nanos() as f64 / n.max(1) as f64;
    eprintln!(
        "{path}: {} events, {} nodes; decode {:.0} ns/event, apply {:.0} ns/event (last 10%: {:.0} ns), worst {:?} ({})",
        events.len(),
        state.topology.len(),
        per(decode, events.len()),
        per(applied, events.len()),
        per(tail_time, tail),
        worst.0,
        worst.1,
    );
    for (kind, (time, count)) in by_kind {
        eprintln!(
            "  {kind:48} {count:8} x {:10.0} ns = {:8.1} ms",
            per(time, count),
            time.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
