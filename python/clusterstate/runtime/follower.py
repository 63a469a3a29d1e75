"""The follower step (pure): a node's ``NodeCore`` fed from its master's session keys.

- **Frames** on ``s/{S}/global`` (newline-joined ``IndexedEvent`` JSON, one frame per master ingest call) and
  **heartbeats** on ``s/{S}/heartbeat`` (``note_master_index``) are taken only from the followed session: a frame
  of another session is counted and dropped, so two masters' streams never mix in one ``NodeCore``.
- **Catch-up pages**: while ``NodeCore.missing`` is set, a :class:`~.actions.Fetch` of ``s/{S}/events`` from that
  index, with at most ONE page in flight. Its reply (:meth:`FollowerStep.on_page`) or its timeout (a `tick` past
  `page_timeout`, or the shell reporting no reply) clears it. A page that applies nothing, an error reply and a
  timeout hold the next fetch back for `retry_after` seconds, so a follower never hammers a master that cannot
  help it.
- **A session change** (:meth:`FollowerStep.follow`) moves the subscriptions and forgets the page in flight.
  Followed with `held`, the session's frames are counted (``held_frames``) and dropped and no page is fetched
  until :meth:`FollowerStep.release`: the node machine holds a new session until it has checked its replica
  against the master's lineage, so no frame of it lands on a log that diverged.

No clock is read (`now` is an argument); a peer's garbage is counted (``counters``, and the core's own
``rejected``) and dropped, never raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from clusterstate import NodeCore
from clusterstate.errors import DecodeError

from .actions import Answer, Effect, Fetch, Subscribe, Unsubscribe
from .keys import Keys, Session
from .wire import decode_heartbeat, decode_page_error, split_frame

__all__ = ["FollowerStep"]


@dataclass(frozen=True)
class _InFlight:
    ident: int
    deadline: float


class FollowerStep:
    """One node's replica of the State, kept from the master of `session` (None: no master followed yet)."""

    def __init__(
        self,
        core: NodeCore,
        keys: Keys,
        *,
        page_limit: int = 1000,
        page_timeout: float = 5.0,
        retry_after: float = 1.0,
    ) -> None:
        self.core = core
        self.keys = keys
        self.page_limit = page_limit
        self.page_timeout = page_timeout
        self.retry_after = retry_after
        self.session: Session | None = None
        self.held = False
        self.counters: Counter[str] = Counter()
        self._in_flight: _InFlight | None = None
        self._retry_at = float("-inf")
        self._fetches = 0
        self._session_fetches = 0  # the fetches made before the current session

    @property
    def next_index(self) -> int:
        return self.core.next_index

    @property
    def page_in_flight(self) -> bool:
        return self._in_flight is not None

    @property
    def next_timer(self) -> float | None:
        """When :meth:`tick` has something to do: a page's timeout, or the end of a retry delay."""
        if self._in_flight is not None:
            return self._in_flight.deadline
        if self.session is not None and self.core.missing is not None:
            return self._retry_at
        return None

    def follow(self, session: Session, now: float, *, held: bool = False) -> list[Effect]:
        """Follow the master of `session`: subscribe to its frames and heartbeats (leaving the old session's);
        with `held`, take none of its frames until :meth:`release`."""
        if session == self.session:
            return []
        effects = self.leave()
        self.session = session
        self.held = held
        self._session_fetches = self._fetches
        self._retry_at = float("-inf")
        effects += [Subscribe(self.keys.global_(session)), Subscribe(self.keys.heartbeat(session))]
        return effects + self._fetch(now)

    def release(self, now: float) -> list[Effect]:
        """Take the followed session's frames from now on (and fetch what is missing)."""
        self.held = False
        return self._fetch(now)

    def leave(self) -> list[Effect]:
        """Follow nobody: leave the session's keys and forget the page in flight."""
        if self.session is None:
            return []
        effects: list[Effect] = [
            Unsubscribe(self.keys.global_(self.session)),
            Unsubscribe(self.keys.heartbeat(self.session)),
        ]
        self.session = None
        self._in_flight = None
        return effects

    def on_frames(self, session: Session, payloads: Iterable[bytes], now: float) -> list[Effect]:
        """Frames of global events received on `session`'s global key, applied in one ``receive`` call."""
        frames = list(payloads)
        if session != self.session:
            self.counters["other_session"] += len(frames)
            return []
        if self.held:
            self.counters["held_frames"] += len(frames)
            return []
        self.core.receive([line for frame in frames for line in split_frame(frame)])
        return self._fetch(now)

    def on_heartbeat(self, session: Session, payload: bytes, now: float) -> list[Effect]:
        """A heartbeat received on `session`'s heartbeat key."""
        if session != self.session:
            self.counters["other_session"] += 1
            return []
        try:
            heartbeat = decode_heartbeat(payload)
        except DecodeError:
            self.counters["bad_heartbeats"] += 1
            return []
        self.core.note_master_index(heartbeat.next)
        return self._fetch(now)

    def on_page(self, ident: int, answer: Answer | None, now: float) -> list[Effect]:
        """The reply to the fetch `ident` (None: no reply came). A late reply to an older fetch of this session is
        still applied (the core drops what it has) but leaves the page in flight alone; a reply to a fetch of an
        earlier session is dropped (``stale_pages``): that master's log may have diverged from this one's."""
        if ident <= self._session_fetches or self.held:
            self.counters["stale_pages"] += 1
            return []
        current = self._in_flight is not None and self._in_flight.ident == ident
        if current:
            self._in_flight = None
        if answer is None:
            self.counters["page_timeouts"] += 1
            self._hold_back(now, current)
        elif not answer.ok:
            try:
                self.counters[f"page_{decode_page_error(answer.payload).error}"] += 1
            except DecodeError:
                self.counters["bad_pages"] += 1
            self._hold_back(now, current)
        else:
            self.counters["pages"] += 1
            if self.core.receive(split_frame(answer.payload)).applied == 0:
                self.counters["empty_pages"] += 1
                self._hold_back(now, current)
        return self._fetch(now)

    def tick(self, now: float) -> list[Effect]:
        """Time out the page in flight past its deadline; fetch when a gap is known and nothing holds it back."""
        if self._in_flight is not None and now >= self._in_flight.deadline:
            return self.on_page(self._in_flight.ident, None, now)
        return self._fetch(now)

    def _hold_back(self, now: float, current: bool) -> None:
        if current:
            self._retry_at = now + self.retry_after

    def _fetch(self, now: float) -> list[Effect]:
        since = self.core.missing
        if self.session is None or self.held or since is None or self._in_flight is not None or now < self._retry_at:
            return []
        self._fetches += 1
        self._in_flight = _InFlight(self._fetches, now + self.page_timeout)
        self.counters["fetches"] += 1
        return [Fetch(self._fetches, self.keys.events(self.session), since, self.page_limit)]
