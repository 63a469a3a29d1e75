"""A cluster of ``clusterstate node`` processes on this machine: loopback only, free ports, one data directory each.

``clusterstate demo`` runs one, and so do the multi-process tests. :class:`LocalCluster` starts each node as a child
process (through `spawn`, so a test can record and kill exactly the processes it started), reads the JSON line a
node prints once it serves, and talks to each node over its HTTP API (stdlib ``urllib``, bounded by timeouts).
Every wait is bounded: :meth:`LocalCluster.wait_for` raises ``TimeoutError`` naming what it waited for.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["LocalCluster", "LocalNode", "free_port"]

T = TypeVar("T")
Spawn = Callable[..., "subprocess.Popen[bytes]"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LocalNode:
    """One node of the cluster: its name, zenoh port, data directory, and (while it runs) process and API."""

    name: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    api: str | None = None
    log_path: Path | None = None
    starts: int = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def get(self, path: str, timeout: float = 2.0) -> Any:
        """GET `path` from the node's API, parsed as JSON."""
        return json.loads(self.get_bytes(path, timeout))

    def get_bytes(self, path: str, timeout: float = 5.0) -> bytes:
        """GET `path` from the node's API, the body as it came."""
        return self._open(urllib.request.Request(self._url(path)), timeout)

    def status(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The node's ``/cluster`` status, or None when it does not answer."""
        try:
            status: dict[str, Any] = self.get("/cluster", timeout)
            return status
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def post(self, path: str, body: bytes, timeout: float) -> Any:
        """POST the JSON `body` to `path` on the node's API; the reply parsed as JSON."""
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(self._url(path), data=body, method="POST", headers=headers)
        return json.loads(self._open(request, timeout))

    def _url(self, path: str) -> str:
        if self.api is None:
            raise ConnectionError(f"{self.name} has no API (not started)")
        return self.api + path

    @staticmethod
    def _open(request: urllib.request.Request, timeout: float) -> bytes:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: bytes = response.read()
            return data


@dataclass
class LocalCluster:
    """`names` as node processes of cluster `cluster`, their data under `root`; `extra` flags for every node."""

    root: Path
    names: Sequence[str]
    cluster: str = "local"
    extra: Sequence[str] = ()
    spawn: Spawn = subprocess.Popen
    ready_timeout: float = 30.0
    nodes: dict[str, LocalNode] = field(init=False)

    def __post_init__(self) -> None:
        self.nodes = {name: LocalNode(name, free_port(), self.root / name) for name in self.names}

    def command(self, node: LocalNode, *extra: str, launcher: Sequence[str] = ("-m", "clusterstate")) -> list[str]:
        """The command line of `node`: ``python {launcher} node ...`` with every other node as a peer."""
        peers = [f"--peer=tcp/127.0.0.1:{other.port}" for other in self.nodes.values() if other is not node]
        return [
            sys.executable,
            *launcher,
            "node",
            f"--node-id={node.name}",
            f"--cluster={self.cluster}",
            f"--data-dir={node.data_dir}",
            f"--listen=tcp/127.0.0.1:{node.port}",
            *peers,
            "--api-port=0",
            *self.extra,
            *extra,
        ]

    def start(
        self, name: str, *extra: str, wait: bool = True, launcher: Sequence[str] = ("-m", "clusterstate")
    ) -> LocalNode:
        """Start node `name` (again, after a kill: same id and data directory)."""
        node = self.nodes[name]
        node.data_dir.mkdir(parents=True, exist_ok=True)
        node.starts += 1
        node.log_path = self.root / f"{name}.{node.starts}.log"
        env = {**os.environ, "CLUSTERSTATE_CONFIG_HOME": str(self.root / "config")}
        with node.log_path.open("wb") as log:
            node.process = self.spawn(
                self.command(node, *extra, launcher=launcher),
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        node.api = None
        if wait:
            self.wait_ready(node)
        return node

    def start_all(self, *extra: str) -> None:
        for name in self.names:
            self.start(name, *extra, wait=False)
        for node in self.nodes.values():
            self.wait_ready(node)

    def wait_ready(self, node: LocalNode) -> None:
        """Read the node's ready line (its API address) from its stdout."""
        assert node.process is not None
        assert node.process.stdout is not None
        line = _read_line(node.process.stdout, self.ready_timeout)
        if not line:
            raise RuntimeError(f"{node.name} exited or printed nothing in {self.ready_timeout}s: {self.log(node)}")
        node.api = json.loads(line)["api"]

    def log(self, node: LocalNode) -> str:
        return node.log_path.read_text(errors="replace")[-3000:] if node.log_path else ""

    def signal(self, name: str, signum: int) -> None:
        node = self.nodes[name]
        if node.process is not None:
            node.process.send_signal(signum)

    def kill(self, name: str) -> None:
        """SIGKILL node `name` and reap it."""
        node = self.nodes[name]
        if node.process is not None:
            node.process.kill()
            _reap(node.process, 10)

    def stop(self, name: str, timeout: float = 15.0) -> int:
        """SIGTERM node `name`; its exit status."""
        node = self.nodes[name]
        assert node.process is not None
        node.process.send_signal(signal.SIGTERM)
        return _reap(node.process, timeout)

    def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.running:
                assert node.process is not None
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            if node.process is not None:
                try:
                    _reap(node.process, 15)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    _reap(node.process, 15)

    def running(self) -> list[LocalNode]:
        return [node for node in self.nodes.values() if node.running]

    def statuses(self) -> dict[str, dict[str, Any] | None]:
        return {node.name: node.status() for node in self.running()}

    def masters(self) -> set[str]:
        """The nodes that say they are master."""
        return {name for name, s in self.statuses().items() if s is not None and s["role"] == "master"}

    def settled(self) -> str | None:
        """The master's name when every running node answers, there is exactly one master, and every node
        follows its session with nothing missing and no lag (a lag it knows: a node that has not yet heard where
        the master's log ends is not settled); None otherwise."""
        statuses = self.statuses()
        if not statuses or any(s is None for s in statuses.values()):
            return None
        masters = [name for name, s in statuses.items() if s is not None and s["role"] == "master"]
        if len(masters) != 1:
            return None
        session = statuses[masters[0]]["session"]  # type: ignore[index]
        for s in statuses.values():
            assert s is not None
            if s["session"] != session or s["missing"] is not None or s["lag"] != 0 or s["pending"]:
                return None
        return masters[0]

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float, every: float = 0.05) -> T:
        """Poll `check` until it returns something other than None (or False); ``TimeoutError`` naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value is not None and value is not False:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"waited {timeout}s for {what}")
            time.sleep(every)


def _reap(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for `process` to exit (``TimeoutExpired`` after `timeout`) and close its stdout pipe."""
    status = process.wait(timeout=timeout)
    if process.stdout is not None:
        process.stdout.close()
    return status


def _read_line(stream: Any, timeout: float) -> bytes:
    """One line from a child's stdout pipe, or b"" when none came within `timeout` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return b""
    line: bytes = stream.readline()
    return line
