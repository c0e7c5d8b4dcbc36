/**
 * Hostile connections against the real server (issue 10, finding 2):
 *
 * - At RLIMIT_NOFILE 256, 240 idle unauthenticated TCP connections, then
 *   closed, left Deno's listener never accepting again (accept failed with
 *   EMFILE and Deno 2.9.6 stops its accept loop silently). The fd reserve
 *   closes new connections before the fds run out, so accept never fails.
 * - Sockets that never finish a TLS handshake are closed at the handshake
 *   deadline (120 s before).
 * - Over the connection budgets, calls get RESOURCE_EXHAUSTED naming the
 *   budget.
 *
 * To see them fail: `--fd-reserve 0` in the first test's flags and no
 * wait for the refusal (the call after the flood then times out with
 * DEADLINE_EXCEEDED: the listener never accepts again); no timer in `Admission.connection`
 * (server/admission.ts) for the second; no `refused` marking there for the
 * third.
 */
import assert from "node:assert/strict";
import {
  call,
  clientFor,
  failure,
  type ServerProcess,
  startServer,
} from "../server_harness.ts";
import { dropSession, idleSockets, openFds, rawSession } from "./raw_client.ts";
import { waitFor } from "../../cgroup/testing.ts";

const sanitizers = { sanitizeOps: false, sanitizeResources: false };

async function listWorks(server: ServerProcess): Promise<void> {
  const client = clientFor(server, "client1");
  try {
    await call(client, "list", {});
  } finally {
    client.close();
  }
}

Deno.test({
  name: "240 idle connections at RLIMIT_NOFILE 256 do not wedge the listener",
  ...sanitizers,
  async fn() {
    const server = await startServer({
      nofile: 256,
      // Only the fd reserve protects accept here.
      args: ["--max-connections-per-address", "1000"],
    });
    try {
      const sockets = await idleSockets(server.port, 240, { firstByte: true });
      // The server accepted until its reserve, then closed the rest.
      await server.waitForLog(
        (e) => e.event === "connection_refused" && e.reason === "fd-reserve",
        0,
        60_000,
      );
      for (const socket of sockets) socket.destroy();
      const pid = server.child.pid;
      await waitFor("the server to close its side", () => openFds(pid) < 100);
      await listWorks(server);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "sockets without a TLS handshake are closed at the handshake deadline",
  ...sanitizers,
  async fn() {
    const server = await startServer({ args: ["--handshake-timeout", "1s"] });
    try {
      const sockets = await idleSockets(server.port, 5);
      let closed = 0;
      for (const socket of sockets) socket.once("close", () => closed++);
      await waitFor(
        "the server to close them",
        () => closed === sockets.length,
      );
      await server.waitForLog((e) =>
        e.event === "connection_refused" && e.reason === "handshake-timeout"
      );
      await listWorks(server);
    } finally {
      await server.stop();
    }
  },
});

for (
  const [flag, pattern] of [
    ["--max-connections-per-address", /--max-connections-per-address/],
    ["--max-connections", /connection budget of 3 is used up/],
  ] as const
) {
  Deno.test({
    name: `over ${flag}, calls get RESOURCE_EXHAUSTED naming the budget`,
    ...sanitizers,
    async fn() {
      const server = await startServer({
        args: ["--max-connections-per-address", "1000", flag, "3"],
      });
      try {
        const held = await Promise.all(
          [1, 2, 3].map(() => rawSession(server.port)),
        );
        const client = clientFor(server, "client2");
        try {
          const refused = await failure(client, "list", {});
          assert.equal(refused.code, "RESOURCE_EXHAUSTED");
          assert.match(refused.details, pattern);
        } finally {
          client.close();
        }
        for (const session of held) dropSession(session);
        // Once they are closed, connections are admitted again.
        let ok = false;
        for (let i = 0; i < 50 && !ok; i++) {
          ok = await listWorks(server).then(() => true, () => false);
          if (!ok) await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(ok, "connections stayed refused");
      } finally {
        await server.stop();
      }
    },
  });
}
