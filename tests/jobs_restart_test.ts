/**
 * Restart: an engine process is killed with SIGKILL while its jobs run; a
 * new engine on the same data dir lists every job with its output, marks the
 * running ones lost in the restart and leaves no process or cgroup of them.
 */
import assert from "node:assert/strict";
import { detectDriver } from "../cgroup/mod.ts";
import { JobEngine } from "../server/jobs/mod.ts";
import {
  collect,
  pidsWithMarker,
  removeParent,
  testParent,
  text,
} from "../server/jobs/_test_util.ts";

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  let buffered = "";
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
    }
  } finally {
    await reader.cancel();
  }
  return buffered.split("\n")[0];
}

Deno.test("after kill -9 of the engine a new one recovers every job", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "telejob-engine-test-" });
  const parent = testParent();
  const marker = String(2000000 + Math.floor(Math.random() * 1000000));
  const cgroups = await detectDriver({ parent });
  let engine: JobEngine | undefined;
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./fixtures/engine_child.ts", import.meta.url).pathname,
        dataDir,
        parent,
        marker,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const line = await firstLine(child.stdout);
    child.kill("SIGKILL");
    assert.equal((await child.status).signal, "SIGKILL");
    const ids = JSON.parse(line) as Record<string, string>;
    // The jobs outlived their server: there is something to recover.
    assert.ok((await pidsWithMarker(marker)).length >= 3);
    assert.equal((await cgroups.list()).length, 3);
    const oldDirs = (await cgroups.list()).flatMap((name) =>
      cgroups.open(name).paths
    );

    // The new server places job cgroups elsewhere (another parent): it
    // finds the lost jobs by the directories the store recorded.
    const moved = await detectDriver({ parent: testParent() });
    try {
      engine = await JobEngine.open({
        dataDir,
        cgroups: moved,
        admins: ["admin"],
      });
      assert.deepEqual(await pidsWithMarker(marker), []);
      assert.deepEqual(await cgroups.list(), []);
      for (const dir of oldDirs) {
        const left = await Deno.lstat(dir).then(() => true, () => false);
        assert.equal(left, false, `${dir} (or its nested/) is still there`);
      }
    } finally {
      await engine?.shutdown({ graceMs: 0 });
      engine = undefined;
      await removeParent(moved);
    }
    engine = await JobEngine.open({ dataDir, cgroups, admins: ["admin"] });

    const jobs = await engine.list("admin");
    assert.deepEqual(jobs.map((j) => j.id), [
      ids.done,
      ids.running,
      ids.stubborn,
      ids.nested,
    ]);
    const [done, running, stubborn, nested] = jobs;
    assert.equal(done.exitCode, 0);
    assert.equal(done.lostInRestart, false);
    for (const lost of [running, stubborn, nested]) {
      assert.equal(lost.state, "finished");
      assert.equal(lost.lostInRestart, true);
      assert.ok(lost.endedAt);
      assert.equal(lost.exitCode, undefined);
    }
    assert.equal(stubborn.owner, "bob");
    assert.equal(
      text(await collect(engine.logs("alice", ids.done))),
      "finished before the crash\n",
    );
    assert.equal(
      text(await collect(engine.logs("alice", ids.running, { follow: true }))),
      "running\n",
    );
    assert.equal(
      text(await collect(engine.logs("bob", ids.stubborn))),
      "stubborn\n",
    );
    assert.equal(running.outputBytes, "running\n".length);

    // New jobs continue the numbering.
    const next = await engine.start("alice", { command: "true" });
    assert.equal(Number(next.id), Number(ids.nested) + 1);
  } finally {
    await engine?.shutdown({ graceMs: 0 });
    // Should the test fail before the new engine ran, leave nothing behind.
    for (const name of await cgroups.list()) {
      await cgroups.open(name).kill();
      await cgroups.open(name).remove();
    }
    await removeParent(cgroups);
    await Deno.remove(dataDir, { recursive: true });
  }
});
