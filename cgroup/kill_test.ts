/**
 * The shared kill loop's order of operations, with a recording stand-in
 * for the cgroup files (pure logic; the drivers' tests run it against the
 * kernel, fork bombs included). The stand-in's pid list stays empty, so
 * nothing real is signalled.
 */
import assert from "node:assert/strict";
import { type KillTarget, killUntilEmpty } from "./kill.ts";

/** A target that empties after `rounds` kill rounds, logging each step. */
function recording(
  rounds: number,
  parts: { killAll?: boolean; freezer?: boolean },
): { target: KillTarget; log: string[] } {
  const log: string[] = [];
  let left = rounds;
  const step = (what: string) => () => {
    log.push(what);
    if (what === "kill" || what === "thaw") left--;
    return Promise.resolve();
  };
  const target: KillTarget = {
    name: "telejob-test",
    populated: () => left > 0,
    pids: () => [],
    killAll: parts.killAll ? step("kill") : undefined,
    freezer: parts.freezer
      ? {
        freeze: step("freeze"),
        frozen: () => Promise.resolve(true),
        thaw: step("thaw"),
      }
      : undefined,
  };
  return { target, log };
}

Deno.test("killUntilEmpty: an empty cgroup needs no write", async () => {
  const { target, log } = recording(0, { killAll: true, freezer: true });
  await killUntilEmpty(target);
  assert.deepEqual(log, []);
});

Deno.test("killUntilEmpty: cgroup.kill, where there is one, is the whole round", async () => {
  const { target, log } = recording(2, { killAll: true, freezer: true });
  await killUntilEmpty(target);
  assert.deepEqual(log, ["kill", "kill"]);
});

Deno.test("killUntilEmpty: without cgroup.kill every round freezes, kills and thaws", async () => {
  const { target, log } = recording(2, { freezer: true });
  await killUntilEmpty(target);
  assert.deepEqual(log, ["freeze", "thaw", "freeze", "thaw"]);
});

Deno.test("killUntilEmpty: a cgroup that never empties fails with the pids left", async () => {
  const { target } = recording(Infinity, { killAll: true });
  await assert.rejects(
    () => killUntilEmpty(target, { timeoutMs: 0 }),
    /^Error: Failed to kill every process of cgroup telejob-test: pids {2}remain; check for processes stuck/,
  );
});
