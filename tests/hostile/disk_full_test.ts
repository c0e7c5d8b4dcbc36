/**
 * Finding 4 of issue 10: a full data dir file system made the server lie
 * (three Starts answered OK with the same id, `status` said NOT_FOUND, the
 * job that filled the disk stayed `running` and `stop` did nothing). Here
 * the data dir is a small tmpfs, filled for real.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { JobStore } from "../../server/jobs/store.ts";
import {
  JobState,
  StartRequest,
  type TelejobClient,
} from "../../proto/gen/telejob/v1/telejob.ts";
import {
  call,
  clientFor,
  failure,
  type ServerProcess,
  startServer,
} from "../server_harness.ts";
import { smallFs } from "./_small_fs.ts";
import { waitFor as until } from "../../cgroup/testing.ts";

const MiB = 1024 * 1024;

const newJob = {
  owner: "alice",
  command: "/bin/true",
  args: [],
  cwd: "/",
  startedAt: new Date(),
  limits: {},
};

Deno.test("store: an insert the disk refuses throws and hands out no id", async () => {
  const fs = await smallFs(2 * MiB);
  try {
    const store = JobStore.open(join(fs.dir, "jobs.db"));
    try {
      const ballast = fs.ballast("ballast", 4 * MiB);
      for (let i = 0; i < 3; i++) {
        assert.throws(
          () => store.insert({ ...newJob, args: ["x".repeat(8192)] }),
          /full/,
        );
      }
      assert.deepEqual(store.list(), []);
      Deno.removeSync(ballast);
      assert.equal(store.insert(newJob), "1");
      assert.equal(store.insert(newJob), "2");
      assert.deepEqual(store.list().map((j) => j.id), ["1", "2"]);
    } finally {
      store.close();
    }
  } finally {
    await fs.close();
  }
});

/** A Start of `true` must be refused for a full disk. */
async function assertStartRefused(client: TelejobClient): Promise<void> {
  const refused = await failure(
    client,
    "start",
    StartRequest.fromPartial({ command: "true" }),
  );
  assert.equal(refused.code, "RESOURCE_EXHAUSTED");
  assert.match(refused.details, /data dir's file system is full/);
}

interface Job {
  id: string;
  state: JobState;
  stopped: boolean;
  lostInRestart: boolean;
}

async function status(server: ServerProcess, user: string, id: string) {
  const client = clientFor(server, user);
  try {
    return (await call<{ job: Job }>(client, "status", { id })).job;
  } finally {
    client.close();
  }
}

Deno.test("a full data dir: Start refused cleanly, no id reused, no file lost, the end kept and recorded, stop works", async () => {
  const fs = await smallFs(6 * MiB);
  const dataDir = join(fs.dir, "data");
  let server: ServerProcess | undefined;
  try {
    server = await startServer({ args: ["--data-dir", dataDir] });
    const c1 = clientFor(server, "client1");
    const c2 = clientFor(server, "client2");
    try {
      // Space the operator frees later.
      const ballast = fs.ballast("ballast", 2 * MiB);
      // Fills the rest with its output, then keeps running.
      const { id } = await call<{ id: string }>(
        c1,
        "start",
        StartRequest.fromPartial({
          command: "sh",
          args: ["-c", "head -c 100000000 /dev/zero; exec sleep 1000"],
        }),
      );
      assert.equal(id, "1");
      const output = join(dataDir, "output", `${id}.out`);
      await until("the disk to fill", () => fs.free() === 0);
      const filled = Deno.statSync(output).size;

      for (let i = 0; i < 3; i++) {
        await assertStartRefused(c2);
      }
      // Nothing left behind, nothing of job 1 removed.
      assert.deepEqual(
        [...Deno.readDirSync(join(dataDir, "output"))].map((e) => e.name),
        ["1.out"],
      );
      assert.equal(Deno.statSync(output).size, filled);
      assert.equal(
        (await status(server, "client1", id)).state,
        JobState.JOB_STATE_RUNNING,
      );

      // Stop works although the store cannot take the job's end, and
      // status tells the truth meanwhile.
      const from = server.lines.length;
      const { job } = await call<{ job: Job }>(c1, "stop", {
        id,
        grace: { seconds: 0, nanos: 0 },
      });
      assert.equal(job.state, JobState.JOB_STATE_FINISHED);
      assert.equal(job.stopped, true);
      await until(
        "the refused end in the log",
        () =>
          server!.lines.slice(from).some((l) =>
            l.includes("recording its end failed")
          ),
      );
      const seen = await status(server, "client1", id);
      assert.equal(seen.state, JobState.JOB_STATE_FINISHED);
      assert.equal(seen.stopped, true);
      const listed = await call<{ jobs: Job[] }>(c1, "list", {});
      assert.deepEqual(listed.jobs.map((j) => [j.id, j.state]), [[
        id,
        JobState.JOB_STATE_FINISHED,
      ]]);

      // Space comes back: the kept end is written, the next id is new.
      Deno.removeSync(ballast);
      await until(
        "the kept end to be written",
        () =>
          server!.lines.slice(from).some((l) => l.includes("took the write")),
        60_000, // Retries back off from 1 s; a loaded machine may miss one.
      );
      const next = await call<{ id: string }>(
        c2,
        "start",
        StartRequest.fromPartial({ command: "true" }),
      );
      assert.equal(next.id, "2");
    } finally {
      c1.close();
      c2.close();
    }
    // The store has the truth: after a restart job 1 is stopped, not lost.
    await server.stop();
    server = await startServer({ args: ["--data-dir", dataDir] });
    const after = await status(server, "client1", "1");
    assert.equal(after.state, JobState.JOB_STATE_FINISHED);
    assert.equal(after.stopped, true);
    assert.equal(after.lostInRestart, false);
    assert.equal((await status(server, "client2", "2")).id, "2");
  } finally {
    await server?.stop();
    await fs.close();
  }
});

Deno.test("Start is refused while less than 1 MiB is free, before anything is written", async () => {
  const fs = await smallFs(8 * MiB);
  const dataDir = join(fs.dir, "data");
  const server = await startServer({ args: ["--data-dir", dataDir] });
  const c1 = clientFor(server, "client1");
  try {
    // Room for a record and an empty file, but not for a job's output.
    fs.ballast("ballast", fs.free() - 512 * 1024);
    await assertStartRefused(c1);
    assert.deepEqual([...Deno.readDirSync(join(dataDir, "output"))], []);
  } finally {
    c1.close();
    await server.stop();
    await fs.close();
  }
});
