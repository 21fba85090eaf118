"""python-socketio 5 peer for bench/run.py: the same fan-out as Chorus, without auth or storage.

    bench/.peers-venv/bin/python bench/pysio_server.py PORT

On aiohttp with uvloop (as Chorus's webgate). The handshake's auth names the user and its
groups; the socket enters one room per group and gets "ready". "send" {group, text, ref} is
sequenced per group, emitted to the room (the sender included) as "message"
{group, seq, ts, from, text}, and acked with {ref, group, seq, ts}.
"""

import sys
import time

import socketio
import uvloop
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"], cors_allowed_origins="*")
app = web.Application()
sio.attach(app)
seqs: dict[str, int] = {}


@sio.event
async def connect(sid, environ, auth):
    if not isinstance(auth, dict) or not isinstance(auth.get("user"), str) or not isinstance(auth.get("groups"), list):
        return False
    user, groups = auth["user"], auth["groups"]
    await sio.save_session(sid, {"from": {"id": user, "username": user, "display_name": user},
                                 "groups": set(groups)})
    for group in groups:
        await sio.enter_room(sid, group)
    await sio.emit("ready", {"user": user, "groups": groups}, to=sid)


@sio.on("send")
async def send(sid, frame):
    session = await sio.get_session(sid)
    group = frame.get("group") if isinstance(frame, dict) else None
    if group not in session["groups"] or not isinstance(frame.get("text"), str):
        return {"ref": frame.get("ref") if isinstance(frame, dict) else None, "code": "not_member"}
    seq = seqs[group] = seqs.get(group, 0) + 1
    ts = int(time.time() * 1000)
    await sio.emit("message", {"group": group, "seq": seq, "ts": ts, "from": session["from"],
                               "text": frame["text"]}, room=group)
    return {"ref": frame.get("ref"), "group": group, "seq": seq, "ts": ts}


if __name__ == "__main__":
    port = int(sys.argv[1])
    web.run_app(app, host="127.0.0.1", port=port, loop=uvloop.new_event_loop(),
                print=lambda _: print(f"listening on 127.0.0.1:{port}", flush=True))
