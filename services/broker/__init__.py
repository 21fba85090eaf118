"""The broker: the group -> members routing table and the fan-out hub.

Gateways connect a DEALER to the broker's ROUTER (register sessions, post,
membership changes) and a SUB to its XPUB (one copy of each message per
gateway subscribed to the group's topic). The routing logic (routing.py,
barrier.py, core.py) never imports zmq; server.py is the thin ZeroMQ driver.
"""
