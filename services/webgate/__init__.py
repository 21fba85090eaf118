"""The web gateway: serves the page, the JSON HTTP API and the WebSocket, and
bridges WebSocket sessions into the broker.

Modules, one job each:
- config (settings), errors (API errors and their HTTP/WebSocket mapping), deps (what handlers get)
- frames: client frame parsing and server frame encoding (pure)
- session_protocol: one WebSocket session's decisions (pure); ws: its aiohttp driver
- sessions: which local sessions are in which group, and subscription counts (pure)
- fanout: the one delivery path from publications to sockets; resume and catchup: the replays
- hub: registration, membership events, broker restarts (wires the parts above)
- broker: the broker interface (requests over chorus.common.brokerlink, the SUB feed)
- backends: auth and membership gRPC clients; http_api: the JSON API; app: wiring; main: entry point
"""
