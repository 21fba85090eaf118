// One WebSocket per browser and origin (docs/sdk.md, "Tabs"), sans-I/O. The Web Lock's holder
// leads: it alone has the socket. Channel messages: frame, status (leader -> all), write, drop
// (tab -> leader), hello (new tab -> leader), snap (leader -> that tab). Outputs: {post}, {socket},
// {deliver} (to this tab's Session), {status}, {connect}, {snapshot: tabId}, {drop}.

export class TabLink {
  constructor(id) {
    this.id = id;
    this.leader = false;
  }

  /** A tab starts as a follower and asks the leader for the state. */
  start() {
    return [{ post: { k: "hello", from: this.id } }];
  }

  elected() {
    this.leader = true;
    return [{ connect: true }];
  }

  write(frame) {
    return this.leader ? [{ socket: frame }] : [{ post: { k: "write", frame } }];
  }

  drop() {
    return this.leader ? [{ drop: true }] : [{ post: { k: "drop" } }];
  }

  /** This tab's Session first, then every other tab. */
  fromSocket(frame) {
    return [{ deliver: frame }, { post: { k: "frame", frame } }];
  }

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
    // The groups first, then whether live: a leader between sockets still knows them.
    return msg.ready ? [{ deliver: msg.ready }, { status: msg.status }] : [{ status: msg.status }];
  },
};
