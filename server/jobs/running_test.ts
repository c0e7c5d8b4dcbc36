import assert from "node:assert/strict";
import { emptyUsage } from "../../cgroup/mod.ts";
import { copyInfo, inParallel, settle } from "./running.ts";
import type { JobInfo } from "./types.ts";

Deno.test("copyInfo copies deeply enough that callers cannot change the record", () => {
  const info: JobInfo = {
    id: "1",
    owner: "alice",
    command: "echo",
    args: ["a"],
    cwd: "/",
    state: "finished",
    startedAt: new Date(1),
    endedAt: new Date(2),
    oomKilled: false,
    stopped: false,
    lostInRestart: false,
    outputLimitReached: false,
    limits: { io: [{ major: 8, minor: 0, rbps: 1 }] },
    usage: emptyUsage(),
    outputBytes: 0,
    account: "alice",
    uid: 1000,
  };
  const copy = copyInfo(info);
  assert.deepEqual(copy, info);
  copy.args.push("b");
  copy.startedAt.setTime(5);
  copy.endedAt!.setTime(5);
  copy.limits.io![0].rbps = 2;
  copy.usage.cpuUsec = 9;
  assert.deepEqual(info.args, ["a"]);
  assert.equal(info.startedAt.getTime(), 1);
  assert.equal(info.endedAt!.getTime(), 2);
  assert.equal(info.limits.io![0].rbps, 1);
  assert.equal(info.usage.cpuUsec, 0);
});

Deno.test("inParallel visits every item, at most 32 at a time", async () => {
  let running = 0;
  let most = 0;
  const seen: number[] = [];
  await inParallel(Array.from({ length: 100 }, (_, i) => i), async (i) => {
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 1));
    seen.push(i);
    running--;
  });
  assert.equal(seen.length, 100);
  assert.equal(most, 32);
});

Deno.test("settle logs a failed step instead of throwing", async () => {
  const logged: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => logged.push(args);
  try {
    assert.equal(await settle("step", "1", () => Promise.resolve(7)), 7);
    assert.equal(
      await settle("step", "1", () => Promise.reject(new Error("no"))),
      undefined,
    );
  } finally {
    console.error = original;
  }
  assert.equal(logged.length, 1);
});
