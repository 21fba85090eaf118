"""The web gateway: serves the page, the JSON HTTP API and the WebSocket, and
bridges WebSocket sessions into the broker.

Modules: config (settings), errors (API errors and their HTTP/WebSocket
mapping), frames (client frame parsing and server frame encoding, pure),
sessions (which local sessions are in which group, pure), backends (auth and
membership gRPC clients), broker_client (ZeroMQ DEALER + SUB), fanout (writes
one pre-built frame to many sockets), http_api and ws (aiohttp handlers), app
(wiring), main (entry point).
"""
