"""The cluster runtime: what `clusterstate node` runs on every machine.

The runtime is split into pure decision modules, one state machine per node, and the code that moves bytes and time:

- ``keys``: the zenoh key expressions of a cluster (``cs/{cluster}/v1/...``) and the validation of
  cluster names and node ids;
- ``election``: candidate records, the ranking, the winner of a round, the quorum rule, the trigger
  rules and the term rules;
- ``gating``: acknowledgements held until the producer's own node has applied them (and, with a
  quorum, until they are committed), and the commit index;
- ``lineage``: the sessions a replica log followed, and where two logs stop agreeing;
- ``actions``: the small frozen values the decisions (``Action``) and the steps and the machine (``Effect``) return;
- ``wire``: the acknowledgement, heartbeat, progress and page-error messages and the newline-joined frames, one
  function each to encode and decode; ``pages``: answering a page query from a log;
- ``producer``, ``follower``, ``leader``: the steps around the Rust cores (``ProducerOutbox``, ``NodeCore``,
  ``MasterCore``): they take what was received and the time, and return effects (publish, subscribe,
  fetch a page, answer a query) for the shell to carry out;
- ``machine``: ``NodeMachine``, one node as a state machine: the election driving the three steps, the hand-over
  of the replica log to the master and back, the lineage check of every new session;
- ``datadir``: the node's data directory (node id, term, lineage, replica log, its lock);
- ``transport``: one ``Transport`` protocol, implemented over zenoh (``transport.zenoh``) and in
  memory (``transport.memory``, seeded, with loss, duplication, reordering and delay);
- ``node``: the shell running a ``NodeMachine`` over zenoh with the gatherers and the HTTP API (``api``,
  ``metrics``); ``local``: a cluster of node processes on this machine, ``check``: whether such a cluster lost,
  duplicated or diverged anything, ``failover``: a failover run over it (the demo, the figures and the
  multi-process tests use these three).

Boundary rules:

1. Nothing outside ``node``, ``api`` and ``transport/`` awaits.
2. Nothing in the decision modules (``keys``, ``election``, ``gating``, ``lineage``, ``actions``, ``wire``,
   ``pages``) reads a clock, imports zenoh or touches a file: time comes in as an argument (``now``), and what must
   be written or sent goes out as a returned action (e.g. ``PersistTerm``). The steps and the machine follow the
   same rule, except that they call their cores (which write the event logs) and the machine writes its term and
   lineage through its ``DataDir``.
3. ``transport.zenoh`` is the only module that imports zenoh.
"""
