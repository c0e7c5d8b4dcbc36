import assert from "node:assert/strict";
import { isAlive, waitFor } from "./testing.ts";

Deno.test("isAlive: a running process is alive, a zombie and a reaped one are not", async () => {
  const child = new Deno.Command("/bin/sleep", { args: ["30"] }).spawn();
  assert.ok(isAlive(child.pid));
  child.kill("SIGKILL");
  // Until it is reaped it is a zombie, which does not count as alive.
  await waitFor("the zombie", () => !isAlive(child.pid));
  await child.status;
  assert.ok(!isAlive(child.pid));
  assert.ok(isAlive(Deno.pid));
});

Deno.test("waitFor resolves once the predicate holds and times out otherwise", async () => {
  let calls = 0;
  await waitFor("three calls", () => ++calls === 3);
  assert.equal(calls, 3);
  await assert.rejects(
    () => waitFor("never", () => false, 30),
    /Timed out waiting for never/,
  );
});
