"""The membership service: groups, who is in them, and the group directory (gRPC).

Modules, one job each: ``validation`` (pure input rules and limits),
``errors`` (the domain errors), ``storage`` (tables and the store),
``servicer`` (protobuf <-> store, errors -> status), ``broker_notifier``
(committed joins and leaves -> the broker), ``server`` (gRPC wiring),
``config`` (flags -> Settings) and ``main`` (the process).
"""
