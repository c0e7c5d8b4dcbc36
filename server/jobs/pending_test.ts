import assert from "node:assert/strict";
import { PendingWrites } from "./pending.ts";
import type { JobInfo } from "./types.ts";

/** A store that refuses writes while `full` (pure logic: the real store's
 * refusal on a full file system is tested in tests/hostile/). */
class FlakyStore {
  full = true;
  finished = new Map<string, JobInfo>();
  deleted: string[] = [];
  finish(id: string, end: JobInfo): void {
    if (this.full) throw new Error("database or disk is full");
    this.finished.set(id, end);
  }
  delete(id: string): void {
    if (this.full) throw new Error("database or disk is full");
    this.deleted.push(id);
  }
}

const info = { id: "7", state: "finished" } as JobInfo;

Deno.test("a refused end is kept, answered from memory and retried until taken", async () => {
  const store = new FlakyStore();
  const logged: string[] = [];
  const pending = new PendingWrites(store, {
    delayMs: 5,
    maxDelayMs: 20,
    log: (message) => logged.push(message),
  });
  pending.finish(info);
  pending.delete("8");
  assert.equal(pending.get("7"), info);
  assert.equal(pending.get("8"), null);
  assert.equal(pending.get("9"), undefined);
  assert.equal(pending.size, 2);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(pending.size, 2, "still refused");
  store.full = false;
  while (pending.size > 0) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(store.finished.get("7"), info);
  assert.deepEqual(store.deleted, ["8"]);
  assert.equal(pending.get("7"), undefined);
  // One line when refused, one when taken: no log flood while it retries.
  assert.equal(logged.filter((l) => l.includes("failed")).length, 2);
  assert.equal(logged.filter((l) => l.includes("took")).length, 2);
  assert.deepEqual(pending.close(), []);
});

Deno.test("writes the store takes at once are not kept; close reports what is left", () => {
  const store = new FlakyStore();
  store.full = false;
  const pending = new PendingWrites(store, { log: () => {} });
  pending.finish(info);
  assert.equal(pending.size, 0);
  store.full = true;
  pending.finish({ ...info, id: "9" });
  assert.deepEqual(pending.close(), ["9"]);
});
