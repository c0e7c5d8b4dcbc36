/**
 * After 1,000 short jobs the engine's process is back where it started:
 * open fds, child processes and job cgroups.
 */
import assert from "node:assert/strict";
import { collect, withEngine } from "../server/jobs/_test_util.ts";

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

async function childProcesses(): Promise<number[]> {
  const children: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === Deno.pid) children.push(Number(entry.name));
    } catch {
      // Gone while we looked.
    }
  }
  return children;
}

Deno.test("1,000 short jobs leave no fd, process or cgroup behind", async () => {
  await withEngine(async (engine, { cgroups }) => {
    const run = async (i: number): Promise<void> => {
      if (i % 10 === 0) {
        // Some jobs are stopped rather than ending by themselves.
        const job = await engine.start("alice", {
          command: "sleep",
          args: ["1000"],
        });
        const info = await engine.stop("alice", job.id, { graceMs: 0 });
        assert.equal(info.stopped, true);
        return;
      }
      const job = await engine.start("alice", {
        command: "sh",
        args: ["-c", `echo ${i}; echo err >&2`],
      });
      const output = new TextDecoder().decode(
        await collect(engine.logs("alice", job.id, { follow: true })),
      );
      assert.equal(output, `${i}\nerr\n`);
    };
    // Warm up whatever is created lazily (statements, watcher threads).
    for (let i = 1; i <= 10; i++) await run(i);
    const fds = openFds();
    const children = await childProcesses();
    const jobCgroups = await cgroups.list();

    let next = 0;
    const worker = async () => {
      while (next < 1000) await run(next++);
    };
    await Promise.all(Array.from({ length: 16 }, worker));

    const jobs = await engine.list("alice");
    assert.equal(jobs.length, 1010);
    assert.ok(jobs.every((job) => job.state === "finished"));
    assert.equal(openFds(), fds, "open fds");
    assert.deepEqual(await childProcesses(), children, "child processes");
    assert.deepEqual(await cgroups.list(), jobCgroups, "job cgroups");
    assert.deepEqual(jobCgroups, []);
  });
});
