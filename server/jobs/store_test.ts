import assert from "node:assert/strict";
import { JobStore } from "./store.ts";

const usage = {
  cpuUsec: 12,
  memoryPeakBytes: 3456,
  ioReadBytes: 7,
  ioWriteBytes: 8,
};

Deno.test("JobStore keeps records across reopening", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/jobs.db`;
    let store = JobStore.open(path);
    const startedAt = new Date("2026-01-02T03:04:05.678Z");
    const a = store.insert({
      owner: "alice",
      command: "echo",
      args: ["a", "b c", "\u00e9\n"],
      cwd: "/tmp",
      startedAt,
      limits: { cpu: 0.5, io: [{ major: 7, minor: 0, rbps: 1000 }] },
    });
    const b = store.insert({
      owner: "bob",
      command: "sleep",
      args: ["9"],
      cwd: "/",
      startedAt,
      limits: {},
    });
    assert.equal(a, "1");
    assert.equal(b, "2");
    const endedAt = new Date("2026-01-02T03:04:06.000Z");
    store.finish(a, {
      endedAt,
      signal: "SIGKILL",
      oomKilled: true,
      stopped: true,
      stoppedBy: "admin",
      lostInRestart: false,
      outputLimitReached: true,
      usage,
      outputBytes: 99,
    });
    store.close();

    store = JobStore.open(path);
    const info = store.get(a)!;
    assert.deepEqual(info, {
      id: "1",
      owner: "alice",
      command: "echo",
      args: ["a", "b c", "\u00e9\n"],
      cwd: "/tmp",
      state: "finished",
      startedAt,
      endedAt,
      signal: "SIGKILL",
      oomKilled: true,
      stopped: true,
      stoppedBy: "admin",
      lostInRestart: false,
      outputLimitReached: true,
      limits: { cpu: 0.5, io: [{ major: 7, minor: 0, rbps: 1000 }] },
      usage,
      outputBytes: 99,
      account: "root",
      uid: 0,
    });
    assert.deepEqual(store.running().map((j) => j.id), ["2"]);
    assert.deepEqual(store.list().map((j) => j.id), ["1", "2"]);
    assert.deepEqual(store.list("bob").map((j) => j.id), ["2"]);
    assert.deepEqual(store.list("carol"), []);
    // Pages: after an id, at most a limit.
    assert.deepEqual(store.list(undefined, { limit: 1 }).map((j) => j.id), [
      "1",
    ]);
    assert.deepEqual(store.list(undefined, { after: "1" }).map((j) => j.id), [
      "2",
    ]);
    assert.deepEqual(store.list("bob", { after: "2", limit: 5 }), []);
    assert.equal(store.get("3"), undefined);

    // Ids are never reused, even after the newest row is deleted.
    store.delete(b);
    assert.equal(store.get(b), undefined);
    const c = store.insert({
      owner: "bob",
      command: "true",
      args: [],
      cwd: "/",
      startedAt,
      limits: {},
    });
    assert.equal(c, "3");
    store.finish(c, {
      exitCode: 3,
      oomKilled: false,
      stopped: false,
      lostInRestart: true,
      outputLimitReached: false,
      usage,
      outputBytes: 0,
    });
    const finished = store.get(c)!;
    assert.equal(finished.exitCode, 3);
    assert.equal(finished.signal, undefined);
    assert.equal(finished.lostInRestart, true);
    assert.ok(finished.endedAt instanceof Date);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JobStore refuses a store from a newer version", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(`${dir}/jobs.db`);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(() => JobStore.open(`${dir}/jobs.db`), /schema version 99/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JobStore refuses a second holder of the same database", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = JobStore.open(`${dir}/jobs.db`);
    try {
      assert.throws(
        () => JobStore.open(`${dir}/jobs.db`, { busyTimeoutMs: 0 }),
        /in use by another telejob-server/,
      );
    } finally {
      first.close();
    }
    // Once released, it opens again.
    JobStore.open(`${dir}/jobs.db`, { busyTimeoutMs: 0 }).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a jobs.db from before identities gains their columns; old jobs read as root", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/jobs.db`;
    const { DatabaseSync } = await import("node:sqlite");
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE jobs (
      id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL,
      command TEXT NOT NULL, args TEXT NOT NULL, cwd TEXT NOT NULL,
      state TEXT NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER,
      exit_code INTEGER, signal TEXT, oom_killed INTEGER NOT NULL DEFAULT 0,
      stopped INTEGER NOT NULL DEFAULT 0, stopped_by TEXT,
      lost_in_restart INTEGER NOT NULL DEFAULT 0,
      output_limit_reached INTEGER NOT NULL DEFAULT 0, limits TEXT NOT NULL,
      usage TEXT NOT NULL, output_bytes INTEGER NOT NULL DEFAULT 0);
      INSERT INTO jobs (owner, command, args, cwd, state, started_at, limits, usage)
      VALUES ('alice', 'true', '[]', '/', 'finished', 1, '{}', '{}');`);
    old.close();
    for (let i = 0; i < 2; i++) {
      const store = JobStore.open(path); // twice: the upgrade is idempotent
      const job = store.get("1")!;
      assert.equal(job.account, "root");
      assert.equal(job.uid, 0);
      store.close();
    }
    const store = JobStore.open(path);
    const id = store.insert({
      owner: "bob",
      command: "x",
      args: [],
      cwd: "/",
      startedAt: new Date(),
      limits: {},
      account: "telejob-2000000000",
      uid: 2000000000,
    });
    store.finish(id, {
      oomKilled: false,
      stopped: false,
      lostInRestart: false,
      outputLimitReached: false,
      usage,
      outputBytes: 0,
      startError: "cannot run x",
    });
    const job = store.get(id)!;
    assert.equal(job.account, "telejob-2000000000");
    assert.equal(job.uid, 2000000000);
    assert.equal(job.startError, "cannot run x");
    store.addIdentity("bob", 2000000000);
    assert.equal(store.identityUid("bob"), 2000000000);
    assert.deepEqual(store.identityUids(), [2000000000]);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
