"""The producer step (pure): a node's ``ProducerOutbox`` driven by pushes, timer ticks and the master's messages.

- :meth:`ProducerStep.push` numbers an event and returns its envelope to publish on ``local/{node}``.
- :meth:`ProducerStep.tick` returns the envelopes due for a resend (``ProducerOutbox.due``) as one frame.
- :meth:`ProducerStep.on_ack` takes an acknowledgement message of the current session: its gap reports are answered
  at once (``ProducerOutbox.resend_missing``) and its pairs are **held** in an :class:`~.gating.AckGate` with its
  `upto` (the master's next index when it sent them).
- :meth:`ProducerStep.on_applied` releases the held pairs whose `upto` this node's own ``NodeCore`` has reached
  (``upto <= next_index``) and, with a quorum, the master's commit index has reached too: an event leaves the
  outbox only once its own node (and a quorum of replicas) holds it, so a master that fails after acknowledging
  loses nothing the producer let go of.
- :meth:`ProducerStep.retarget` addresses a new session: the held acknowledgements are dropped (their sequence
  numbers belong to the old session), the pending envelopes renumbered and returned, the subscription moved.

No clock is read (`now` is an argument) and nothing is sent: every method returns the effects for the shell.
A peer's malformed or foreign message is counted (``counters``) and dropped, never raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from clusterstate import ProducerOutbox
from clusterstate.errors import DecodeError
from clusterstate.models import Event

from .actions import Effect, Publish, Subscribe, Unsubscribe
from .gating import AckGate
from .keys import Keys, Session
from .wire import core_session, decode_ack, join_frame

__all__ = ["ProducerStep"]


class ProducerStep:
    """One producer instance of a node: its outbox (built by the caller, with its resend options), its held
    acknowledgements and the keys it publishes on. `gate` makes the gate of each session."""

    def __init__(self, outbox: ProducerOutbox, keys: Keys, *, gate: Callable[[], AckGate] = AckGate) -> None:
        self.outbox = outbox
        self.keys = keys
        self._new_gate = gate
        self._gate = gate()
        self.counters: Counter[str] = Counter()

    @property
    def session(self) -> Session:
        master, term = self.outbox.session
        return Session(term, master)

    @property
    def held(self) -> int:
        """How many acknowledgements wait for this node to apply their `upto`."""
        return self._gate.held

    def start(self) -> list[Effect]:
        """The subscription to this node's acknowledgements in the current session."""
        return [Subscribe(self._ack_key(self.session))]

    def push(self, event: Event | bytes, now: float) -> list[Effect]:
        """Number `event` and publish its envelope (``OutboxFullError`` when the outbox is full: back off)."""
        return [self._publish([self.outbox.push(event, now=now)])]

    def tick(self, now: float) -> list[Effect]:
        """The envelopes due for a resend at `now`, as one frame."""
        due = self.outbox.due(now)
        return [self._publish(due)] if due else []

    def on_ack(
        self, session: Session, payload: bytes, applied: int, now: float, commit: int | None = None
    ) -> list[Effect]:
        """An acknowledgement message received on `session`'s ack key; `applied` is this node's next index and
        `commit` the master's last commit index (None without a quorum)."""
        if session != self.session:
            self.counters["other_session"] += 1
            return []
        try:
            message = decode_ack(payload)
        except DecodeError:
            self.counters["bad_acks"] += 1
            return []
        self.counters["acks"] += 1
        self._gate.hold(message.upto, message.acks)
        resend = self.outbox.resend_missing(message.missing, now=now, session=core_session(session))
        self.on_applied(applied, commit)
        return [self._publish(resend)] if resend else []

    def on_applied(self, applied: int, commit: int | None = None) -> int:
        """Release the held acknowledgements this node has applied (`upto <= applied`) and, unless `commit` is
        None, the master has committed (`upto <= commit`); how many envelopes left the outbox."""
        pairs = self._gate.release(applied, commit)
        if not pairs:
            return 0
        released = self.outbox.acknowledge(pairs, session=core_session(self.session))
        self.counters["released"] += released
        return released

    def retarget(self, session: Session) -> list[Effect]:
        """Address the master of `session`: move the ack subscription, resend every pending envelope renumbered."""
        old = self.session
        if session == old:
            return []
        resend = self.outbox.retarget(core_session(session))
        self._gate = self._new_gate()
        effects: list[Effect] = [Unsubscribe(self._ack_key(old)), Subscribe(self._ack_key(session))]
        return [*effects, self._publish(resend)] if resend else effects

    def _ack_key(self, session: Session) -> str:
        return self.keys.ack(session, self.outbox.node_id)

    def _publish(self, envelopes: list[bytes]) -> Publish:
        return Publish(self.keys.local(self.outbox.node_id), join_frame(envelopes))
