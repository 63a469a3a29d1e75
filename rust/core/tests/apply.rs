//! One test per reducer rule of `python/clusterstate/reference.py`, on hand-built events.

use clusterstate_core::codec::{decode_indexed_event, decode_state};
use clusterstate_core::json::{to_string, Case};
use clusterstate_core::work::{Task, TaskStatus};
use clusterstate_core::{apply, fold, ApplyError, IndexedEvent, State};

const MEMORY: &str = r#"{"ram_total":{"in_bytes":1},"ram_available":{"in_bytes":2},"swap_total":{"in_bytes":3},"swap_available":{"in_bytes":4}}"#;

fn event(idx: u64, origin: Option<&str>, event: &str) -> IndexedEvent {
    let origin = origin.map_or_else(|| "null".to_owned(), |o| format!("{o:?}"));
    let text = format!(r#"{{"idx":{idx},"origin":{origin},"event":{event}}}"#);
    decode_indexed_event(text.as_bytes()).unwrap_or_else(|err| panic!("{text}: {err}"))
}

/// Apply `events` (JSON of tagged events) with idx 0.. and no origin.
fn run(events: &[&str]) -> State {
    run_from(&State::default(), events)
}

fn run_from(state: &State, events: &[&str]) -> State {
    let start = u64::try_from(state.last_event_applied_idx + 1).unwrap();
    let indexed: Vec<IndexedEvent> = events
        .iter()
        .zip(start..)
        .map(|(text, idx)| event(idx, None, text))
        .collect();
    fold(state, &indexed).unwrap()
}

fn info(node: &str, info: &str) -> String {
    format!(r#"{{"NodeGatheredInfo":{{"event_id":"e","node_id":"{node}","info":{info}}}}}"#)
}

fn edge(tag: &str, source: &str, sink: &str, edge: &str) -> String {
    format!(r#"{{"{tag}":{{"event_id":"e","conn":{{"source":"{source}","sink":"{sink}","edge":{edge}}}}}}}"#)
}

fn socket(ip: &str) -> String {
    format!(r#"{{"sink_multiaddr":{{"address":"/ip4/{ip}/tcp/52415"}}}}"#)
}

fn rdma(source: &str, sink: &str) -> String {
    format!(r#"{{"source_rdma_iface":"{source}","sink_rdma_iface":"{sink}"}}"#)
}

fn json(state: &State) -> String {
    to_string(state, Case::Snake).unwrap()
}

fn topology(state: &State) -> String {
    to_string(&state.topology, Case::Snake).unwrap()
}

const TEST: &str = r#"{"TestEvent":{"event_id":"e"}}"#;

#[test]
fn index_must_follow_the_state() {
    let state = State::default();
    assert_eq!(
        apply(&state, &event(1, None, TEST)),
        Err(ApplyError::EventIndex { expected: 0, got: 1 })
    );
    let state = apply(&state, &event(0, None, TEST)).unwrap();
    assert_eq!(state.last_event_applied_idx, 0);
    let err = apply(&state, &event(0, None, TEST)).unwrap_err();
    assert!(!err.is_gap());
    assert_eq!(
        err.to_string(),
        "event index 0 does not follow the state (duplicate or stale): expected 1"
    );
    let max = i64::MAX.unsigned_abs();
    assert_eq!(
        apply(&state, &event(max, None, TEST)).unwrap_err().to_string(),
        "event index 9223372036854775807 does not follow the state (gap): expected 1"
    );
    // Indices stop at i64::MAX, as in the Python models; a State there takes no further event.
    assert!(decode_indexed_event(br#"{"idx":9223372036854775808,"event":{"TestEvent":{"event_id":"e"}}}"#).is_err());
    let full = State {
        last_event_applied_idx: i64::MAX,
        ..State::default()
    };
    assert_eq!(
        apply(&full, &event(max, None, TEST)),
        Err(ApplyError::EventIndex {
            expected: max + 1,
            got: max
        })
    );
}

#[test]
fn the_producer_advances_its_index() {
    let state = fold(
        &State::default(),
        &[
            event(0, Some("w"), TEST),
            event(1, None, TEST),
            event(2, None, &info("a", r#"{"NodeConfig":{}}"#)),
            event(3, Some("o"), &info("b", r#"{"NodeConfig":{}}"#)),
            event(4, None, &edge("TopologyEdgeCreated", "s", "t", &socket("1.1.1.1"))),
            event(5, None, &edge("TopologyEdgeDeleted", "s2", "t", &socket("1.1.1.1"))),
            event(
                6,
                None,
                r#"{"NodeDownloadProgress":{"event_id":"e","download_progress":{"DownloadPending":{"node_id":"d","shard_metadata":{"CfgShardMetadata":{}}}}}}"#,
            ),
            event(7, None, r#"{"NodeDisconnected":{"event_id":"e","node_id":"x","last_index":null,"stale_cycles":3}}"#),
        ],
    )
    .unwrap();
    assert!(json(&state).contains(r#""last_event_index_by_node":{"a":2,"d":6,"o":3,"s":4,"s2":5,"w":0}"#));
    // NodeGatheredInfo adds its node to the topology even with another origin; edges add both ends.
    assert!(topology(&state).starts_with(r#"{"nodes":["a","b","s","t"]"#));
}

#[test]
fn tasks() {
    let created = r#"{"TaskCreated":{"event_id":"e","task_id":"t","task":{"TextGeneration":{"task_id":"other","instance_id":"i","command_id":"c","task_params":{},"error_type":"x","error_message":"y"}}}}"#;
    let load =
        r#"{"TaskCreated":{"event_id":"e","task_id":"l","task":{"LoadModel":{"task_id":"l","instance_id":"i"}}}}"#;
    let state = run(&[created, load]);
    assert_eq!(state.tasks.len(), 2);
    // Keyed by the event's task_id.
    let status = |state: &State, id: &str| state.tasks[id].task_status();
    let generation = |state: &State| match &*state.tasks["t"] {
        Task::TextGeneration(t) => (t.error_type.clone(), t.error_message.clone()),
        other => panic!("{other:?}"),
    };
    let update = |id: &str, status: &str| {
        format!(r#"{{"TaskStatusUpdated":{{"event_id":"e","task_id":"{id}","task_status":"{status}"}}}}"#)
    };
    // Failed keeps the error; anything else clears it (generation tasks only).
    let failed = run_from(&state, &[&update("t", "Failed")]);
    assert_eq!(generation(&failed), (Some("x".into()), Some("y".into())));
    let running = run_from(&state, &[&update("t", "Running"), &update("l", "Complete")]);
    assert_eq!(generation(&running), (None, None));
    assert_eq!(status(&running, "t"), TaskStatus::Running);
    assert_eq!(status(&running, "l"), TaskStatus::Complete);
    // Unknown task: no-op. TaskFailed sets the error of generation tasks only, status unchanged.
    let unknown = run_from(&state, &[&update("nope", "Running")]);
    assert_eq!(unknown.tasks, state.tasks);
    let task_failed = |id: &str| {
        format!(r#"{{"TaskFailed":{{"event_id":"e","task_id":"{id}","error_type":"T","error_message":"M"}}}}"#)
    };
    let after = run_from(&running, &[&task_failed("t"), &task_failed("l"), &task_failed("nope")]);
    assert_eq!(generation(&after), (Some("T".into()), Some("M".into())));
    assert_eq!(status(&after, "t"), TaskStatus::Running);
    assert_eq!(after.tasks["l"], running.tasks["l"]);
    let deleted = run_from(&after, &[r#"{"TaskDeleted":{"event_id":"e","task_id":"t"}}"#]);
    assert!(!deleted.tasks.contains_key("t"));
    let again = run_from(&deleted, &[r#"{"TaskDeleted":{"event_id":"e","task_id":"t"}}"#]);
    assert!(again.tasks.ptr_eq(&deleted.tasks));
}

#[test]
fn instances_and_runners() {
    let instance = r#"{"InstanceCreated":{"event_id":"e","instance":{"MlxJacclInstance":{"instance_id":"i","shard_assignments":{"model_id":"m","runner_to_shard":{},"node_to_runner":{}},"jaccl_devices":[[null,"d"]],"jaccl_coordinators":{"n":"c"}}}}}"#;
    let runner = r#"{"RunnerStatusUpdated":{"event_id":"e","runner_id":"r","runner_status":{"RunnerFailed":{"error_message":"boom"}}}}"#;
    let state = run(&[instance, runner]);
    assert!(json(&state).starts_with(r#"{"instances":{"i":{"MlxJacclInstance":{"instance_id":"i","#));
    assert!(json(&state).contains(r#""runners":{"r":{"RunnerFailed":{"error_message":"boom"}}}"#));
    let state = run_from(
        &state,
        &[
            r#"{"InstanceDeleted":{"event_id":"e","instance_id":"i"}}"#,
            r#"{"RunnerDeleted":{"event_id":"e","runner_id":"r"}}"#,
            r#"{"RunnerDeleted":{"event_id":"e","runner_id":"unknown"}}"#,
        ],
    );
    assert!(state.instances.is_empty() && state.runners.is_empty());
}

#[test]
fn gathered_infos_fill_the_node_maps() {
    let state = run(&[
        &info(
            "n",
            &format!(r#"{{"MacmonMetrics":{{"system_profile":{{"gpu_usage":0.5}},"memory":{MEMORY}}}}}"#),
        ),
        &info("m", MEMORY),
        &info(
            "n",
            r#"{"NodeDiskUsage":{"disk_usage":{"total":{"in_bytes":9},"available":{"in_bytes":8}}}}"#,
        ),
        &info("n", r#"{"MiscData":{"friendly_name":"studio"}}"#),
        &info(
            "n",
            r#"{"StaticNodeInformation":{"model":"Mac","chip":"M3","os_version":"15","os_build_version":"b"}}"#,
        ),
        &info(
            "n",
            r#"{"NodeNetworkInterfaces":{"ifaces":[{"name":"en0","ip_address":"10.0.0.1"}]}}"#,
        ),
        &info(
            "n",
            r#"{"MacThunderboltIdentifiers":{"idents":[{"rdma_interface":"rdma_en2","domain_uuid":"u"}]}}"#,
        ),
        &info(
            "n",
            r#"{"ThunderboltBridgeInfo":{"status":{"enabled":true,"exists":true}}}"#,
        ),
        &info("n", r#"{"RdmaCtlStatus":{"enabled":true}}"#),
        &info("n", r#"{"NodeConfig":{}}"#),
    ]);
    let text = json(&state);
    for part in [
        r#""node_identities":{"n":{"model_id":"Mac","chip_id":"M3","friendly_name":"studio","os_version":"15","os_build_version":"b"}}"#,
        r#""node_memory":{"m":{"ram_total":{"in_bytes":1},"ram_available":{"in_bytes":2},"swap_total":{"in_bytes":3},"swap_available":{"in_bytes":4}},"n":"#,
        r#""node_disk":{"n":{"total":{"in_bytes":9},"available":{"in_bytes":8}}}"#,
        r#""node_system":{"n":{"gpu_usage":0.5,"temp":0.0,"sys_power":0.0,"pcpu_usage":0.0,"ecpu_usage":0.0}}"#,
        r#""node_network":{"n":{"interfaces":[{"name":"en0","ip_address":"10.0.0.1","interface_type":"unknown"}]}}"#,
        r#""node_thunderbolt":{"n":{"interfaces":[{"rdma_interface":"rdma_en2","domain_uuid":"u","link_speed":""}]}}"#,
        r#""node_thunderbolt_bridge":{"n":{"enabled":true,"exists":true,"service_name":null}}"#,
        r#""node_rdma_ctl":{"n":{"enabled":true}}"#,
        r#""topology":{"nodes":["m","n"],"connections":{}}"#,
    ] {
        assert!(text.contains(part), "{part}\nnot in {text}");
    }
}

#[test]
fn disconnect_drops_the_node_but_keeps_its_name() {
    let state = run(&[
        &info("n", r#"{"MiscData":{"friendly_name":"studio"}}"#),
        &info("n", MEMORY),
        &info("n", r#"{"RdmaCtlStatus":{"enabled":true}}"#),
        &edge("TopologyEdgeCreated", "m", "n", &socket("1.1.1.1")),
        &edge("TopologyEdgeCreated", "n", "m", &socket("1.1.1.2")),
        r#"{"NodeDownloadProgress":{"event_id":"e","download_progress":{"DownloadPending":{"node_id":"n","shard_metadata":{"CfgShardMetadata":{}}}}}}"#,
    ]);
    for disconnect in [
        r#"{"NodeDisconnected":{"event_id":"e","node_id":"n","last_index":5,"stale_cycles":3}}"#,
        r#"{"NodeTimedOut":{"event_id":"e","node_id":"n"}}"#,
    ] {
        let after = fold(&state, &[event(6, Some("n"), disconnect)]).unwrap();
        let text = json(&after);
        assert!(
            text.contains(r#""topology":{"nodes":["m"],"connections":{}}"#),
            "{text}"
        );
        assert!(text.contains(r#""last_event_index_by_node":{"m":3}"#), "{text}");
        assert!(text.contains(r#""downloads":{}"#) && text.contains(r#""node_memory":{}"#));
        assert!(text.contains(r#""node_rdma_ctl":{}"#));
        assert_eq!(after.node_identities, state.node_identities);
    }
}

#[test]
fn download_progress_replaces_the_same_shard() {
    let progress = |kind: &str, shard: &str, extra: &str| {
        format!(
            r#"{{"NodeDownloadProgress":{{"event_id":"e","download_progress":{{"{kind}":{{"node_id":"n","shard_metadata":{{"PipelineShardMetadata":{shard}}}{extra}}}}}}}}}"#
        )
    };
    let state = run(&[
        &progress("DownloadPending", r#"{"a":1,"b":[true]}"#, ""),
        &progress("DownloadPending", r#"{"a":2}"#, ""),
        // Equal as Python compares dicts: key order ignored, 1 == 1.0 == True.
        &progress(
            "DownloadCompleted",
            r#"{"b":[1.0],"a":1.0}"#,
            r#","total_bytes":{"in_bytes":5}"#,
        ),
    ]);
    let list = &state.downloads["n"];
    assert_eq!(list.len(), 2);
    assert!(to_string(&list[0], Case::Snake)
        .unwrap()
        .starts_with(r#"{"DownloadCompleted":"#));
    assert!(to_string(&list[1], Case::Snake)
        .unwrap()
        .starts_with(r#"{"DownloadPending":"#));
}

#[test]
fn topology_edges() {
    let state = run(&[
        &edge("TopologyEdgeCreated", "b", "a", &rdma("x", "y")),
        &edge("TopologyEdgeCreated", "b", "a", &socket("1.1.1.1")),
        &edge("TopologyEdgeCreated", "a", "b", &socket("1.1.1.1")),
        &edge("TopologyEdgeCreated", "a", "b", &socket("1.1.1.1")),
    ]);
    assert_eq!(state.topology.connections().count(), 3);
    let before = state.clone();
    // Deleting removes that direction only; deleting a missing edge changes nothing.
    let state = run_from(&state, &[&edge("TopologyEdgeDeleted", "a", "b", &socket("1.1.1.1"))]);
    assert_eq!(state.topology.successors("a").count(), 0);
    assert_eq!(state.topology.successors("b").count(), 1);
    let same = run_from(&state, &[&edge("TopologyEdgeDeleted", "a", "b", &socket("1.1.1.1"))]);
    assert!(same.topology.ptr_eq(&state.topology));
    // The old State is unchanged.
    assert_eq!(before.topology.connections().count(), 3);
}

#[test]
fn thunderbolt_cables_become_rdma_edges() {
    let idents = |uuids: &[(&str, &str)]| {
        let list: Vec<String> = uuids
            .iter()
            .map(|(iface, uuid)| format!(r#"{{"rdma_interface":"{iface}","domain_uuid":"{uuid}"}}"#))
            .collect();
        format!(r#"{{"MacThunderboltIdentifiers":{{"idents":[{}]}}}}"#, list.join(","))
    };
    let cables = |pairs: &[(&str, &str)]| {
        let list: Vec<String> = pairs
            .iter()
            .map(|(s, t)| format!(r#"{{"source_uuid":"{s}","sink_uuid":"{t}"}}"#))
            .collect();
        format!(r#"{{"MacThunderboltConnections":{{"conns":[{}]}}}}"#, list.join(","))
    };
    let state = run(&[
        &info("b", &idents(&[("rdma_b1", "ub1"), ("rdma_dup_b", "dup")])),
        &info("a", &idents(&[("rdma_a1", "ua1"), ("rdma_dup_a", "dup")])),
        &edge("TopologyEdgeCreated", "a", "b", &socket("1.1.1.1")),
        // ub1's peer is known; "unknown" is not yet; "dup" belongs to the smaller id, a.
        &info("a", &cables(&[("ua1", "ub1"), ("ua1", "unknown"), ("ua1", "dup")])),
    ]);
    assert_eq!(
        topology(&state),
        format!(
            r#"{{"nodes":["a","b"],"connections":{{"a":{{"a":[{}],"b":[{},{}]}}}}}}"#,
            rdma("rdma_a1", "rdma_dup_a"),
            r#"{"sink_multiaddr":{"address":"/ip4/1.1.1.1/tcp/52415","address_type":"ip4","ip_address":"1.1.1.1","port":52415}}"#,
            rdma("rdma_a1", "rdma_b1"),
        )
    );
    // A new report replaces the RDMA edges and keeps the socket edge; an identical one changes nothing.
    let state = run_from(&state, &[&info("a", &cables(&[]))]);
    assert_eq!(state.topology.connections().count(), 1);
    let same = run_from(&state, &[&info("a", &cables(&[("ua1", "unknown")]))]);
    assert!(same.topology.ptr_eq(&state.topology));
}

#[test]
fn bridge_cycles_follow_their_inputs() {
    let bridge = |node: &str, enabled: bool| {
        info(
            node,
            &format!(r#"{{"ThunderboltBridgeInfo":{{"status":{{"enabled":{enabled},"exists":true}}}}}}"#),
        )
    };
    let tb_iface = |node: &str, ip: &str| {
        info(
            node,
            &format!(
                r#"{{"NodeNetworkInterfaces":{{"ifaces":[{{"name":"bridge0","ip_address":"{ip}","interface_type":"thunderbolt"}}]}}}}"#
            ),
        )
    };
    let state = run(&[
        &bridge("c", true),
        &bridge("a", true),
        &bridge("b", true),
        &edge("TopologyEdgeCreated", "a", "b", &rdma("1", "2")),
        &edge("TopologyEdgeCreated", "b", "a", &rdma("2", "1")),
        &edge("TopologyEdgeCreated", "b", "c", &socket("169.254.0.3")),
        &edge("TopologyEdgeCreated", "c", "a", &socket("169.254.0.1")),
    ]);
    assert_eq!(
        json(&state).rsplit_once("thunderbolt_bridge_cycles").unwrap().1,
        r#"":[["a","b"]]}"#
    );
    // The socket edges count once their addresses are Thunderbolt interfaces of enabled nodes.
    let state = run_from(&state, &[&tb_iface("c", "169.254.0.3"), &tb_iface("a", "169.254.0.1")]);
    assert_eq!(
        json(&state).rsplit_once("thunderbolt_bridge_cycles").unwrap().1,
        r#"":[["a","b"],["a","b","c"]]}"#
    );
    // Disabling a bridge, or losing a node, breaks cycles.
    let off = run_from(&state, &[&bridge("c", false)]);
    assert_eq!(*off.thunderbolt_bridge_cycles, vec![vec!["a".into(), "b".into()]]);
    let gone = run_from(&state, &[r#"{"NodeTimedOut":{"event_id":"e","node_id":"a"}}"#]);
    assert!(gone.thunderbolt_bridge_cycles.is_empty());
}

#[test]
fn cycles_are_only_recomputed_when_an_input_changes() {
    // A State whose stored cycles disagree with its topology keeps them until an input changes, as in Python.
    let text = r#"{"topology":{"nodes":["a"],"connections":{}},"last_event_applied_idx":4,"thunderbolt_bridge_cycles":[["x","y"]]}"#;
    let state = decode_state(text.as_bytes()).unwrap();
    let same = run_from(&state, &[TEST, &info("a", r#"{"NodeConfig":{}}"#), &info("a", MEMORY)]);
    assert_eq!(*same.thunderbolt_bridge_cycles, vec![vec!["x".into(), "y".into()]]);
    let changed = run_from(&state, &[&info("b", r#"{"NodeConfig":{}}"#)]);
    assert!(changed.thunderbolt_bridge_cycles.is_empty());
}
