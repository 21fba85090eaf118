'use strict';
// Load generator for bench/run.py: many WebSocket clients in one Node process.
//
//   node gen.js CONFIG.json     (then JSON commands, one a line, on stdin; JSON events on stdout)
//
// CONFIG: {kind: "chorus" | "socketio", url, users: [{id, token?, groups: [gid, ...]}], senders}
// Both kinds use the `ws` client; frames are recognised without JSON.parse.
// Commands:
//   {"cmd": "connect", "sockets": N}     N sockets, socket i for user i % users.length
//   {"cmd": "run", "step": K, "rate": R, "duration": D, "drain": S}
//        senders (sockets 0..senders-1) post R msgs/s in total for D s, then wait up to S s
//        for the deliveries still due; answers counts, the delivery latency distribution and (Chorus)
//        `ack`: the distribution of send -> ack on the sender's socket, by ref
//   {"cmd": "post", "step": K, "group": GID, "drain": S}   one message from socket 0
//   {"cmd": "quit"}
// Every message text is "b:STEP:MICROS" with MICROS from this process's monotonic clock, so
// receivers measure latency on the sender's clock. Every loop is bounded in count and time.
const fs = require('fs');
const readline = require('readline');
const { performance } = require('perf_hooks');

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const CONNECT_CONCURRENCY = 200;
const CONNECT_TIMEOUT_MS = 30000;
const HIST_BUCKET_US = 10;              // latency histogram: 10 µs buckets up to 30 s
const HIST_SIZE = 3_000_000;

const nowUs = () => Math.round(performance.now() * 1000);
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const sockets = [];          // {send(group, text, ref), close(), user}
const socketsInGroup = {};   // gid -> live sockets of its members (the deliveries one post is due)
let step = null;             // counters of the step in progress

function newStep(id) {
  return { id, sent: 0, acked: 0, errors: 0, expected: 0, delivered: 0, stale: 0, closed: 0,
           hist: new Uint32Array(HIST_SIZE), maxUs: 0, firstSendUs: 0, lastDeliveryUs: 0,
           sentAt: new Map(), ackHist: new Uint32Array(HIST_SIZE), ackMaxUs: 0, lastAckUs: 0, errorCodes: {} };
}

// Chorus: an ack's latency is from its send (by ref) to the ack on the sender's socket.
function answered(frame) {
  const sentUs = step.sentAt.get(frame.ref);
  if (sentUs === undefined) return;
  step.sentAt.delete(frame.ref);
  if (frame.op === 'error') return;
  const t = nowUs();
  const lat = t - sentUs;
  step.lastAckUs = t;
  if (lat > step.ackMaxUs) step.ackMaxUs = lat;
  step.ackHist[Math.min(HIST_SIZE - 1, Math.max(0, Math.floor(lat / HIST_BUCKET_US)))]++;
}

function delivered(stepId, sentUs) {
  if (step === null || stepId !== step.id) {
    if (step) step.stale++;
    return;
  }
  const t = nowUs();
  const lat = t - sentUs;
  step.delivered++;
  step.lastDeliveryUs = t;
  if (lat > step.maxUs) step.maxUs = lat;
  step.hist[Math.min(HIST_SIZE - 1, Math.max(0, Math.floor(lat / HIST_BUCKET_US)))]++;
}

const MARK = Buffer.from('"b:');

function marked(data) {   // a frame whose text is "b:STEP:MICROS" (no other string starts with b:)
  const at = data.lastIndexOf(MARK);
  if (at < 0) return;
  const colon = data.indexOf(0x3a /* : */, at + 3);
  const end = data.indexOf(0x22 /* " */, colon);
  if (colon < 0 || end < 0) return;
  delivered(Number(data.toString('latin1', at + 3, colon)), Number(data.toString('latin1', colon + 1, end)));
}

function onClosed(entry) {
  if (!entry.live) return;
  entry.live = false;
  for (const g of entry.user.groups) socketsInGroup[g]--;
  if (step) step.closed++;
}

// One `ws` socket for either protocol: `protocol.open(ws)` once connected, `protocol.frame(data, ready)`
// for every frame (it calls ready() when the server says the session is live), `protocol.send`.
function openSocket(url, user, protocol) {
  const WebSocket = require('ws');
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true,
                                    handshakeTimeout: CONNECT_TIMEOUT_MS });
    const entry = { user, live: false, ws };
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('ready timeout')); }, CONNECT_TIMEOUT_MS);
    const ready = () => {
      if (entry.live) return;
      clearTimeout(timer);
      entry.live = true;
      resolve(entry);
    };
    ws.on('open', () => protocol.open(ws));
    ws.on('error', (err) => { clearTimeout(timer); reject(err); });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      if (!entry.live) reject(new Error(`closed ${code} ${reason}`));
      onClosed(entry);
    });
    ws.on('message', (data) => protocol.frame(ws, data, ready, entry.live));
    entry.send = (group, text, ref) => ws.send(protocol.send(group, text, ref));
    entry.close = () => ws.terminate();
  });
}

// ---- Chorus: the real protocol, {"op": "auth"} then "ready"
function connectChorus(user) {
  return openSocket(config.url, user, {
    open: (ws) => ws.send(JSON.stringify({ op: 'auth', token: user.token })),
    frame(ws, data, ready, live) {
      if (!live) {
        if (JSON.parse(data.toString()).op === 'ready') ready();
      } else if (data[7] === 0x6d /* m */ && data.indexOf('{"op":"message"') === 0) {   // orjson: no spaces
        marked(data);
      } else if (step) {
        const frame = JSON.parse(data.toString());
        if (frame.op === 'ack') step.acked++;
        else if (frame.op === 'error') {
          step.errors++;
          step.errorCodes[frame.code] = (step.errorCodes[frame.code] || 0) + 1;
        }
        if (frame.op === 'ack' || frame.op === 'error') answered(frame);
      }
    },
    send: (group, text, ref) => JSON.stringify({ op: 'send', group, text, ref }),
  });
}

// ---- Socket.IO peers: Engine.IO 4 / Socket.IO 5 packets spoken over the same `ws` client (websocket
// transport only), so both kinds of server meet the same per-frame cost on this side. Auth-less: the
// CONNECT packet's auth names the user and its rooms, and the server answers with a "ready" event.
//   server "0{...}" open  -> client "40{auth}" connect;  server "2" ping -> client "3" pong
//   client '42N["send",{...}]' -> server '43N[{...}]' ack;  server '42["message",{...}]' / '42["ready",...]'
const SIO_MESSAGE = Buffer.from('42["message"');
const SIO_READY = Buffer.from('42["ready"');

function connectSocketIO(user) {
  let ackId = 0;
  return openSocket(config.url.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket', user, {
    open() {},   // the server speaks first
    frame(ws, data, ready) {
      if (data[0] === 0x34 /* 4: socket.io packet */) {
        if (data[1] === 0x32 /* 2: event */) {
          if (data.indexOf(SIO_MESSAGE) === 0) marked(data);
          else if (data.indexOf(SIO_READY) === 0) ready();
        } else if (data[1] === 0x33 /* 3: ack */) {
          if (!step) return;
          if (data.indexOf('"seq"') >= 0) step.acked++;
          else step.errors++;
        } else if (data[1] === 0x34 /* 4: connect error */) {
          ws.terminate();
        }
      } else if (data[0] === 0x32 /* 2: engine.io ping */) {
        ws.send('3');
      } else if (data[0] === 0x30 /* 0: engine.io open */) {
        ws.send('40' + JSON.stringify({ user: user.id, groups: user.groups }));
      }
    },
    send: (group, text, ref) => `42${++ackId}` + JSON.stringify(['send', { group, text, ref }]),
  });
}

async function connect(n) {
  const t0 = performance.now();
  const connectOne = config.kind === 'chorus' ? connectChorus : connectSocketIO;
  let next = sockets.length;
  const end = sockets.length + n;
  let failures = 0;
  let firstError = null;
  async function worker() {
    while (next < end) {
      const i = next++;
      const user = config.users[i % config.users.length];
      try {
        const entry = await connectOne(user);
        sockets[i] = entry;
        for (const g of user.groups) socketsInGroup[g] = (socketsInGroup[g] || 0) + 1;
      } catch (err) {
        failures++;
        firstError = firstError || String(err && err.message || err);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, n) }, worker));
  emit({ event: 'connected', sockets: sockets.filter((s) => s && s.live).length, failures,
         error: firstError, secs: (performance.now() - t0) / 1000 });
}

function percentiles(s, hist = s.hist, count = s.delivered, maxUs = s.maxUs) {
  const qs = [0.5, 0.9, 0.99];
  const out = [];
  let seen = 0;
  let qi = 0;
  for (let b = 0; b < HIST_SIZE && qi < qs.length; b++) {
    seen += hist[b];
    while (qi < qs.length && count > 0 && seen >= Math.ceil(qs[qi] * count)) {
      out.push(((b + 1) * HIST_BUCKET_US) / 1000);   // bucket upper edge, ms
      qi++;
    }
  }
  while (out.length < qs.length) out.push(null);
  return { p50: out[0], p90: out[1], p99: out[2], max: count ? maxUs / 1000 : null };
}

function result(s, sendSecs) {
  const activeUs = (s.lastDeliveryUs || nowUs()) - s.firstSendUs;
  return { event: 'result', step: s.id, sent: s.sent, acked: s.acked, errors: s.errors, expected: s.expected,
           delivered: s.delivered, stale: s.stale, closed: s.closed, send_secs: sendSecs,
           active_secs: activeUs / 1e6, ...percentiles(s), error_codes: s.errorCodes,
           ack_secs: ((s.lastAckUs || nowUs()) - s.firstSendUs) / 1e6,
           ack: percentiles(s, s.ackHist, s.acked, s.ackMaxUs) };
}

async function drain(s, drainSecs) {
  const deadline = performance.now() + drainSecs * 1000;
  while ((s.delivered < s.expected || s.acked + s.errors < s.sent) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function run({ step: id, rate, duration, drain: drainSecs }) {
  const senders = sockets.slice(0, config.senders).filter((s) => s && s.live);
  if (senders.length === 0) throw new Error('no live sender sockets');
  const s = newStep(id);
  step = s;
  const total = Math.max(1, Math.round(rate * duration));
  const t0 = performance.now();
  s.firstSendUs = nowUs();
  await new Promise((resolve) => {
    function tick() {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      while (s.sent < due) {
        const n = s.sent++;
        const sender = senders[n % senders.length];
        if (!sender.live) continue;
        const groups = sender.user.groups;
        const group = groups[Math.floor(n / senders.length) % groups.length];
        s.expected += socketsInGroup[group] || 0;
        const sentUs = nowUs();
        s.sentAt.set(String(n), sentUs);
        sender.send(group, `b:${id}:${sentUs}`, String(n));
      }
      // bounded: all `total` messages, or the duration plus a second of slack when we fall behind
      if (s.sent >= total || performance.now() - t0 > duration * 1000 + 1000) resolve();
      else setTimeout(tick, 1);
    }
    tick();
  });
  const sendSecs = (performance.now() - t0) / 1000;
  await drain(s, drainSecs);
  emit(result(s, sendSecs));
}

async function post({ step: id, group, drain: drainSecs }) {
  const sender = sockets[0];
  if (!sender || !sender.live) throw new Error('socket 0 is not live');
  const s = newStep(id);
  step = s;
  s.firstSendUs = nowUs();
  s.sent = 1;
  s.expected = socketsInGroup[group] || 0;
  sender.send(group, `b:${id}:${nowUs()}`, 'post');
  await drain(s, drainSecs);
  emit(result(s, 0));
}

const handlers = { connect: (c) => connect(c.sockets), run, post };
const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  const command = JSON.parse(line);
  if (command.cmd === 'quit') {
    for (const s of sockets) if (s) s.close();
    process.exit(0);
  }
  queue = queue.then(() => handlers[command.cmd](command))
    .catch((err) => emit({ event: 'error', message: String(err && err.stack || err) }));
});
lines.on('close', () => process.exit(0));   // the orchestrator went away: stop
