import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { Admission } from "./admission.ts";
import { BudgetError, DEFAULT_BUDGETS, FdBudget } from "./budgets.ts";
import type { Logger } from "./log.ts";

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string, readonly remotePort: number) {
    super();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit("close");
  }
  end(): void {
    this.destroy();
  }
}

function setup(fdsInUse = 10): {
  admission: Admission;
  events: Record<string, unknown>[];
  fds: { open: number };
} {
  const events: Record<string, unknown>[] = [];
  const logger = {
    event: (event: string, fields: Record<string, unknown>) =>
      events.push({ event, ...fields }),
    rpc: () => {},
  } as unknown as Logger;
  const fds = { open: fdsInUse };
  const admission = new Admission({
    budgets: {
      ...DEFAULT_BUDGETS,
      maxConnections: 3,
      maxConnectionsPerAddress: 2,
      maxCallsPerUser: 1,
      handshakeTimeoutMs: 20,
      fdReserve: 16,
    },
    logger,
    fds: new FdBudget({
      reserve: 16,
      limit: 100,
      count: () => fds.open,
      refreshMs: 0,
    }),
  });
  return { admission, events, fds };
}

const connect = (admission: Admission, address: string, port: number) => {
  const socket = new FakeSocket(address, port);
  admission.connection(socket as unknown as Socket);
  return socket;
};

Deno.test("Admission: calls on a connection over a budget name the budget", () => {
  const { admission } = setup();
  const sockets = [
    connect(admission, "10.0.0.1", 1),
    connect(admission, "10.0.0.1", 2),
    connect(admission, "10.0.0.1", 3),
  ];
  for (const s of sockets) admission.secured(s as unknown as TLSSocket);
  assert.throws(
    () => admission.admitCall("10.0.0.1:3", "alice"),
    (e) =>
      e instanceof BudgetError &&
      /--max-connections-per-address/.test(e.message),
  );
  admission.admitCall("10.0.0.1:1", "alice")();
  const other = [
    connect(admission, "10.0.0.2", 1),
    connect(admission, "10.0.0.3", 1),
  ];
  assert.throws(
    () => admission.admitCall("10.0.0.3:1", "bob"),
    /connection budget of 3 is used up \(--max-connections\)/,
  );
  for (const s of [...sockets, ...other]) s.destroy();
  assert.equal(admission.connections, 0);
});

Deno.test("Admission: a socket without a handshake is closed at the deadline", async () => {
  const { admission, events } = setup();
  const socket = connect(admission, "10.0.0.1", 1);
  const done = connect(admission, "10.0.0.1", 2);
  admission.secured(done as unknown as TLSSocket);
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(socket.destroyed);
  assert.ok(!done.destroyed);
  assert.ok(events.some((e) => e.reason === "handshake-timeout"));
  done.destroy();
});

Deno.test("Admission: the fd reserve closes connections and refuses streams", () => {
  const { admission, events, fds } = setup();
  fds.open = 95;
  const socket = connect(admission, "10.0.0.1", 1);
  assert.ok(socket.destroyed);
  assert.ok(events.some((e) => e.reason === "fd-reserve"));
  fds.open = 85;
  assert.throws(
    () => admission.admitCall("10.0.0.9:1", "alice", { opensFile: true }),
    /--fd-reserve 16/,
  );
  // The refused stream gave its call back.
  fds.open = 10;
  admission.admitCall("10.0.0.9:1", "alice", { opensFile: true })();
});
