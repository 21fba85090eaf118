'use strict';
// Socket.IO 4 peer for bench/run.py: the same fan-out as Chorus, without auth or storage.
//   node sio-server.js PORT
// The handshake's auth names the user and its groups; the socket joins one room per group and
// gets "ready". "send" {group, text, ref} is sequenced per group, emitted to the room (the sender
// included) as "message" {group, seq, ts, from, text}, and acked with {ref, group, seq, ts}.
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2]);
const server = http.createServer();
const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
const seqs = new Map();

io.on('connection', (socket) => {
  const { user, groups } = socket.handshake.auth || {};
  if (typeof user !== 'string' || !Array.isArray(groups)) {
    socket.disconnect(true);
    return;
  }
  const from = { id: user, username: user, display_name: user };
  socket.join(groups);
  socket.on('send', (frame, ack) => {
    if (!frame || typeof frame.text !== 'string' || !groups.includes(frame.group)) {
      if (typeof ack === 'function') ack({ ref: frame && frame.ref, code: 'not_member' });
      return;
    }
    const seq = (seqs.get(frame.group) || 0) + 1;
    seqs.set(frame.group, seq);
    const ts = Date.now();
    io.to(frame.group).emit('message', { group: frame.group, seq, ts, from, text: frame.text });
    if (typeof ack === 'function') ack({ ref: frame.ref, group: frame.group, seq, ts });
  });
  socket.emit('ready', { user: from, groups });
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
