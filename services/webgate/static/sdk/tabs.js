// One WebSocket per browser and origin, shared by every tab: the leader protocol, sans-I/O.
//
// The tab that holds the Web Lock is the leader: it alone opens the socket. Every message
// between tabs goes over one BroadcastChannel (which never echoes to its sender):
//
//   {k: "frame", frame}              leader -> all    a server frame, as the leader got it
//   {k: "status", status}            leader -> all    the connection's state ({status, retryAt, code?, reason?})
//   {k: "write", frame}              tab -> leader    write this frame on the socket
//   {k: "hello", from}               new tab -> leader  "what is the state?"
//   {k: "snap", to, status, ready}   leader -> that tab  the state, `ready` rebuilt from the leader's Session
//   {k: "drop"}                      tab -> leader    lose the connection (tests and debugging)
//
// Every tab feeds the frames into its own Session (session.js), so each has the same groups,
// marks and unread counts; when the leader goes (its tab closed, the lock released) the next
// tab in the lock's queue becomes leader, connects, and resumes from its own marks: nothing is
// lost in between. A tab's writes while no leader is connected are lost on purpose: its Session
// writes its sends again after the next `ready`.
//
// `TabLink` turns inputs into a list of outputs:
//   {post: msg}          post on the channel          {socket: frame}   write on the socket
//   {deliver: frame}     feed this tab's Session      {status}          this tab's view of the connection
//   {connect: true}      open the socket (now leader) {snapshot: to}    post a `snap` for that tab
//   {drop: true}         drop the socket

export class TabLink {
  constructor(id) {
    this.id = id;
    this.leader = false;
  }

  /** A tab starts as a follower and asks whoever leads for the state. */
  start() {
    return [{ post: { k: "hello", from: this.id } }];
  }

  /** This tab got the lock. */
  elected() {
    this.leader = true;
    return [{ connect: true }];
  }

  /** This tab's Session (or app) wants a frame written. */
  write(frame) {
    return this.leader ? [{ socket: frame }] : [{ post: { k: "write", frame } }];
  }

  drop() {
    return this.leader ? [{ drop: true }] : [{ post: { k: "drop" } }];
  }

  /** The leader's socket got a frame: this tab's Session first, then every other tab. */
  fromSocket(frame) {
    return [{ deliver: frame }, { post: { k: "frame", frame } }];
  }

  /** The leader's connection changed state. */
  statusChanged(status) {
    return [{ status }, { post: { k: "status", status } }];
  }

  fromChannel(msg) {
    if (!msg || typeof msg !== "object") return [];
    const handle = this.leader ? AS_LEADER[msg.k] : AS_FOLLOWER[msg.k];
    return handle ? handle.call(this, msg) : [];
  }
}

const AS_LEADER = {
  write: (msg) => [{ socket: msg.frame }],
  hello: (msg) => [{ snapshot: msg.from }],
  drop: () => [{ drop: true }],
};

const AS_FOLLOWER = {
  frame: (msg) => [{ deliver: msg.frame }],
  status: (msg) => [{ status: msg.status }],
  snap(msg) {
    if (msg.to !== this.id) return [];
    // The state first, then whether it is live: a leader between sockets still knows the groups.
    return msg.ready ? [{ deliver: msg.ready }, { status: msg.status }] : [{ status: msg.status }];
  },
};

/** The `snap` a leader posts for tab `to`: its connection state and its Session's state. */
export const snapMessage = (to, status, ready) => ({ k: "snap", to, status, ready });
