import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Http2Session } from "node:http2";
import { protectSession } from "./goaway.ts";

/**
 * Stands in for the http2 core's teardown order only (pure logic): on a
 * received GOAWAY it emits 'goaway' and then calls close() synchronously.
 * The real crash and its absence are proven against the real server by
 * tests/server_goaway_test.ts.
 */
class FakeSession extends EventEmitter {
  calls: string[] = [];
  close(): void {
    this.calls.push("close");
  }
  destroy(): void {
    this.calls.push("destroy");
  }
  goaway(): void {
    this.calls.push("goaway");
  }
  receiveGoaway(): void {
    this.emit("goaway", 0, 0);
    this.close();
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

Deno.test("protectSession defers close/destroy/goaway made while handling a received GOAWAY", async () => {
  const session = new FakeSession();
  protectSession(session as unknown as Http2Session);
  session.on("goaway", () => {
    session.goaway();
    session.destroy();
  });
  session.receiveGoaway();
  assert.deepEqual(session.calls, [], "teardown ran inside the frame callback");
  await tick();
  assert.deepEqual(session.calls, ["goaway", "destroy", "close"]);
});

Deno.test("protectSession leaves teardown outside a GOAWAY synchronous", async () => {
  const session = new FakeSession();
  protectSession(session as unknown as Http2Session);
  protectSession(session as unknown as Http2Session); // idempotent
  session.close();
  assert.deepEqual(session.calls, ["close"]);
  session.receiveGoaway();
  await tick();
  session.destroy();
  assert.deepEqual(session.calls, ["close", "close", "destroy"]);
});
