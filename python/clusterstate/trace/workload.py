"""One model instance's life: placement, runners, tasks
and generation.

The master places an instance over some nodes. Each node's worker then creates a runner and
downloads its shard; the runners go through their lifecycle together, every step waiting for all
of them (RunnerIdle → Connecting → Connected → Loading → Loaded → WarmingUp → Ready), each step a
worker task that is created, set Running and Complete. Once ready, chat requests arrive: the
master creates a ``TextGeneration`` task, every worker re-emits it for its runner, the runners go
Running, the rank-0 runner streams one ``ChunkGenerated`` per token, then everything goes back to
Ready and the master deletes the finished task.

If a node of the instance dies, everything waiting on it stalls. When the master has declared
the node disconnected, its next plan pass deletes the instance, cancels the requests in flight,
and the surviving workers shut their runners down.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from clusterstate.models import (
    ChunkGenerated,
    CommandId,
    ConnectToGroup,
    CreateRunner,
    DownloadModel,
    Host,
    InstanceCreated,
    InstanceDeleted,
    InstanceId,
    JsonObject,
    LoadModel,
    MlxJacclInstance,
    MlxRingInstance,
    NodeId,
    RunnerConnected,
    RunnerConnecting,
    RunnerId,
    RunnerIdle,
    RunnerLoaded,
    RunnerLoading,
    RunnerReady,
    RunnerRunning,
    RunnerShutdown,
    RunnerShuttingDown,
    RunnerStatus,
    RunnerStatusUpdated,
    RunnerWarmingUp,
    ShardAssignments,
    Shutdown,
    StartWarmup,
    Task,
    TaskCreated,
    TaskDeleted,
    TaskId,
    TaskStatus,
    TaskStatusUpdated,
    TextGeneration,
)

from .cluster import Placement
from .downloads import download
from .engine import NodeRuntime, Sim
from .payloads import ShardKind, model_spec, shard_bytes, shard_metadata, text_generation_params, token_chunk
from .rand import derive_rng

__all__ = ["InstanceRun"]

# Worker reaction time to a global event: delivery plus the 0.1 s plan tick.
_REACT_S = (0.03, 0.15)
_LOAD_BYTES_PER_S = {"mac": 6e9, "linux": 2.5e9}


class InstanceRun:
    """The life of one placed instance; see the module docstring."""

    def __init__(self, sim: Sim, placement: Placement) -> None:
        self.sim = sim
        self.placement = placement
        self.model = model_spec(placement.model_id)
        self.rng = derive_rng(sim.config.seed, "workload", placement.index)
        self.members: list[NodeRuntime] = [sim.nodes[node_id] for node_id in placement.nodes]
        self.instance_id = InstanceId(sim.uuid())
        self.runner_ids = {node.node_id: RunnerId(sim.uuid()) for node in self.members}
        world = len(self.members)
        kind: ShardKind = "TensorShardMetadata" if placement.meta == "MlxJaccl" else "PipelineShardMetadata"
        self.shards = {
            node.node_id: shard_metadata(kind, self.model, rank, world) for rank, node in enumerate(self.members)
        }
        self.shard_bytes = shard_bytes(self.model, world)
        self.instance = self._instance()
        self.placed = False
        self.deleted = False
        self._arrived: dict[str, set[NodeId]] = {}
        self._runner_epoch: dict[NodeId, int] = {}
        self._loaded: set[NodeId] = set()
        self._active: dict[TaskId, TextGeneration] = {}
        self._current: dict[NodeId, Task] = {}
        self._next_arrival = 0.0

    # --- master side ---

    def place(self, now: float) -> None:
        """The master places the instance (retrying each plan period while a member is unknown)."""
        if not all(node.node_id in self.sim.in_topology for node in self.members):
            self.sim.at(now + self.sim.config.plan_interval_s, self.place)
            return
        self.placed = True
        self.sim.emit(self.sim.master, InstanceCreated(event_id=self.sim.event_id(), instance=self.instance))
        for node in self.members:
            self._after(node, now, self._create_runner)

    def delete(self, now: float) -> None:
        """The master's plan pass deletes the instance after one of its nodes was disconnected."""
        self.deleted = True
        sim = self.sim
        sim.emit(sim.master, InstanceDeleted(event_id=sim.event_id(), instance_id=self.instance_id))
        for task_id in self._active:
            sim.emit(sim.master, TaskStatusUpdated(event_id=sim.event_id(), task_id=task_id, task_status="Cancelled"))
        self._active.clear()
        for node in self.members:
            if node.up and self._runner_epoch.get(node.node_id) == node.epoch:
                sim.on_node(node, now + node.rng.uniform(*_REACT_S), partial(self._shutdown, node))

    def lost_member(self) -> bool:
        return any(node.node_id in self.sim.disconnected for node in self.members)

    # --- runner lifecycle, per node ---

    def _create_runner(self, node: NodeRuntime, now: float) -> None:
        bound: JsonObject = {
            "instance": self.instance.model_dump(mode="json"),
            "bound_runner_id": self.runner_ids[node.node_id],
            "bound_node_id": node.node_id,
        }
        task = self._task(
            node, CreateRunner(task_id=TaskId(self.sim.uuid()), instance_id=self.instance_id, bound_instance=bound)
        )
        self._status(node, task, "Complete")
        self._runner_epoch[node.node_id] = node.epoch
        self.sim.on_node(
            node, now + node.rng.uniform(1.0, 2.5), lambda at: self._runner(node, RunnerIdle(), "idle", at)
        )
        self._after(node, now, self._download)

    def _download(self, node: NodeRuntime, now: float) -> None:
        shard = self.shards[node.node_id]
        task = self._task(
            node, DownloadModel(task_id=TaskId(self.sim.uuid()), instance_id=self.instance_id, shard_metadata=shard)
        )
        self._status(node, task, "Running")

        def done(at: float) -> None:
            self._status(node, task, "Complete")
            self._arrive("downloaded", node, at)

        download(self.sim, node, self.model, shard, self.shard_bytes, now, done)

    def _runner(self, node: NodeRuntime, status: RunnerStatus, step: str | None, now: float) -> None:
        if self.deleted:
            return
        self.sim.emit(
            node.node_id,
            RunnerStatusUpdated(
                event_id=self.sim.event_id(), runner_id=self.runner_ids[node.node_id], runner_status=status
            ),
        )
        if step is not None:
            self._arrive(step, node, now)

    def _arrive(self, step: str, node: NodeRuntime, now: float) -> None:
        """A node finished ``step``; when every member has, the next step starts."""
        if self.deleted:
            return
        arrived = self._arrived.setdefault(step, set())
        arrived.add(node.node_id)
        if len(arrived) < len(self.members):
            return
        if step in ("idle", "downloaded"):
            if len(self._arrived.get("idle", ())) == len(self._arrived.get("downloaded", ())) == len(self.members):
                self._all(now, self._connect)
        elif step == "connecting":
            self._all(now, self._connected, delay=(0.3, 1.0))
        elif step == "connected":
            self._all(now, self._load)
        elif step == "loaded":
            self._all(now, self._warmup)
        elif step == "warming":
            self._all(now, self._ready, delay=(0.5, 2.0))
        elif step == "ready":
            self._next_arrival = now
            self._schedule_request(now)

    def _connect(self, node: NodeRuntime, now: float) -> None:
        task = self._task(node, ConnectToGroup(task_id=TaskId(self.sim.uuid()), instance_id=self.instance_id))
        self._status(node, task, "Running")
        self._runner(node, RunnerConnecting(), "connecting", now)

    def _connected(self, node: NodeRuntime, now: float) -> None:
        self._runner(node, RunnerConnected(), None, now)
        self._status(node, self._current[node.node_id], "Complete")
        self._arrive("connected", node, now)

    def _load(self, node: NodeRuntime, now: float) -> None:
        task = self._task(node, LoadModel(task_id=TaskId(self.sim.uuid()), instance_id=self.instance_id))
        self._status(node, task, "Running")
        self._runner(node, RunnerLoading(), None, now)
        seconds = 0.5 + self.shard_bytes / _LOAD_BYTES_PER_S[node.spec.kind] * node.rng.uniform(0.9, 1.2)

        def loaded(at: float) -> None:
            node.resident_bytes += self.shard_bytes
            self._loaded.add(node.node_id)
            self._runner(node, RunnerLoaded(), None, at)
            self._status(node, task, "Complete")
            self._arrive("loaded", node, at)

        self.sim.on_node(node, now + seconds, loaded)

    def _warmup(self, node: NodeRuntime, now: float) -> None:
        task = self._task(node, StartWarmup(task_id=TaskId(self.sim.uuid()), instance_id=self.instance_id))
        self._status(node, task, "Running")
        self._runner(node, RunnerWarmingUp(), "warming", now)

    def _ready(self, node: NodeRuntime, now: float) -> None:
        self._runner(node, RunnerReady(), None, now)
        self._status(node, self._current[node.node_id], "Complete")
        self._arrive("ready", node, now)

    def _shutdown(self, node: NodeRuntime, now: float) -> None:
        runner_id = self.runner_ids[node.node_id]
        task = self._task(
            node, Shutdown(task_id=TaskId(self.sim.uuid()), instance_id=self.instance_id, runner_id=runner_id)
        )
        self._emit_runner(node, RunnerShuttingDown())

        def stopped(at: float) -> None:
            if node.node_id in self._loaded:
                node.resident_bytes -= self.shard_bytes
                self._loaded.discard(node.node_id)
            node.generating = 0
            self._emit_runner(node, RunnerShutdown())
            self._status(node, task, "Complete")

        self.sim.on_node(node, now + node.rng.uniform(0.5, 1.5), stopped)

    # --- generation requests ---

    def _schedule_request(self, now: float) -> None:
        rate = self.sim.config.requests_per_minute / 60.0
        if rate <= 0:
            return
        self._next_arrival = max(self._next_arrival + self.rng.expovariate(rate), now + 0.2)
        self.sim.at(self._next_arrival, self._request)

    def _request(self, now: float) -> None:
        if self.deleted:
            return
        sim, rng = self.sim, self.rng
        lo, hi = sim.config.tokens_per_request
        tokens = rng.randint(lo, hi)
        params, prompt_tokens = text_generation_params(rng, self.model, max(tokens, 256))
        task = TextGeneration(
            task_id=TaskId(sim.uuid()),
            instance_id=self.instance_id,
            command_id=CommandId(sim.uuid()),
            task_params=params,
        )
        self._active[task.task_id] = task
        sim.emit(sim.master, TaskCreated(event_id=sim.event_id(), task_id=task.task_id, task=task))
        running: set[NodeId] = set()

        def start(node: NodeRuntime, at: float) -> None:
            # The worker forwards the master's task to its runner, re-emitting it; the runner starts.
            sim.emit(node.node_id, TaskCreated(event_id=sim.event_id(), task_id=task.task_id, task=task))
            self._status(node, task, "Running")
            self._emit_runner(node, RunnerRunning())
            node.generating += 1
            running.add(node.node_id)
            if len(running) == len(self.members):
                prompt_tps = rng.uniform(400.0, 1200.0)
                first = at + 0.05 + prompt_tokens / prompt_tps
                sim.on_node(self.members[0], first, self._token_stream(task, tokens, prompt_tokens, prompt_tps))

        for node in self.members:
            self._after(node, now, start)

    def _token_stream(
        self, task: TextGeneration, tokens: int, prompt_tokens: int, prompt_tps: float
    ) -> Callable[[float], None]:
        sim, rng, rank0 = self.sim, self.rng, self.members[0]
        emitted = 0

        def token(now: float) -> None:
            nonlocal emitted
            if self.deleted or not all(node.up for node in self.members):
                return  # a dead peer stalls the collective: no more tokens
            emitted += 1
            last = emitted == tokens
            chunk = token_chunk(
                rng,
                self.model,
                last=last,
                prompt_tokens=prompt_tokens,
                completion_tokens=emitted,
                prompt_tps=prompt_tps,
                peak_memory=rank0.spec.base_ram_used + rank0.resident_bytes,
            )
            sim.emit(rank0.node_id, ChunkGenerated(event_id=sim.event_id(), command_id=task.command_id, chunk=chunk))
            if last:
                self._finish(task, now)
            else:
                sim.on_node(rank0, now + rng.uniform(0.85, 1.15) / self.model.tokens_per_s, token)

        return token

    def _finish(self, task: TextGeneration, now: float) -> None:
        def done(node: NodeRuntime, at: float) -> None:
            self._status(node, task, "Complete")
            self._emit_runner(node, RunnerReady())
            node.generating = max(0, node.generating - 1)

        for node in self.members:
            self.sim.on_node(node, now + node.rng.uniform(0.005, 0.05), partial(done, node))

        def delete_task(at: float) -> None:
            # The API saw the stream end and sent TaskFinished; the master drops the task.
            if self.deleted or task.task_id not in self._active:
                return
            del self._active[task.task_id]
            self.sim.emit(self.sim.master, TaskDeleted(event_id=self.sim.event_id(), task_id=task.task_id))
            self._schedule_request(at)

        self.sim.at(now + self.rng.uniform(0.06, 0.15), delete_task)

    # --- helpers ---

    def _task(self, node: NodeRuntime, task: Task) -> Task:
        """The worker creates ``task`` (and remembers it as the node's current step)."""
        self._current[node.node_id] = task
        self.sim.emit(node.node_id, TaskCreated(event_id=self.sim.event_id(), task_id=task.task_id, task=task))
        return task

    def _status(self, node: NodeRuntime, task: Task, status: TaskStatus) -> None:
        self.sim.emit(
            node.node_id, TaskStatusUpdated(event_id=self.sim.event_id(), task_id=task.task_id, task_status=status)
        )

    def _emit_runner(self, node: NodeRuntime, status: RunnerStatus) -> None:
        runner_id = self.runner_ids[node.node_id]
        self.sim.emit(
            node.node_id, RunnerStatusUpdated(event_id=self.sim.event_id(), runner_id=runner_id, runner_status=status)
        )

    def _after(self, node: NodeRuntime, now: float, step: Callable[[NodeRuntime, float], None]) -> None:
        """Run ``step`` on ``node`` once its worker has reacted (if the instance still exists)."""

        def react(at: float) -> None:
            if not self.deleted:
                step(node, at)

        self.sim.on_node(node, now + node.rng.uniform(*_REACT_S), react)

    def _all(
        self, now: float, step: Callable[[NodeRuntime, float], None], delay: tuple[float, float] = _REACT_S
    ) -> None:
        """Run ``step`` on every member after a seeded delay (unless the instance is gone by then)."""

        def react(node: NodeRuntime, at: float) -> None:
            if not self.deleted:
                step(node, at)

        for node in self.members:
            self.sim.on_node(node, now + node.rng.uniform(*delay), partial(react, node))

    def _instance(self) -> MlxJacclInstance | MlxRingInstance:
        members = self.members
        assignments = ShardAssignments(
            model_id=self.model.model_id,
            runner_to_shard={self.runner_ids[node.node_id]: self.shards[node.node_id] for node in members},
            node_to_runner={node.node_id: self.runner_ids[node.node_id] for node in members},
        )
        port = self.rng.randrange(49152, 65535)
        if self.placement.meta == "MlxJaccl":
            return MlxJacclInstance(
                instance_id=self.instance_id,
                shard_assignments=assignments,
                jaccl_devices=[[_rdma_iface(a, b) for b in members] for a in members],
                jaccl_coordinators={node.node_id: f"{members[0].spec.lan_ip}:{port}" for node in members},
            )
        return MlxRingInstance(
            instance_id=self.instance_id,
            shard_assignments=assignments,
            hosts_by_node={
                node.node_id: [Host(ip="0.0.0.0" if peer is node else peer.spec.lan_ip, port=port) for peer in members]
                for node in members
            },
            ephemeral_port=port,
        )


def _rdma_iface(source: NodeRuntime, sink: NodeRuntime) -> str | None:
    """The RDMA interface of ``source``'s port cabled to ``sink`` (None: no direct cable)."""
    sink_uuids = {port.domain_uuid for port in sink.spec.tb_ports}
    for link in source.spec.tb_links:
        if link.sink_uuid in sink_uuids:
            return next(p.rdma_interface for p in source.spec.tb_ports if p.domain_uuid == link.source_uuid)
    return None
