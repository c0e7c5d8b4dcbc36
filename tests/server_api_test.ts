/**
 * The Telejob API end to end: the real server process with real jobs in
 * real cgroups, over mutual TLS, with grpc-js clients.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import type { Job, TelejobClient } from "../proto/gen/telejob/v1/telejob.ts";
import {
  call,
  clientFor,
  failure,
  rawClient,
  readLogs,
  type ServerProcess,
  startServer,
  waitFinished,
} from "./server_harness.ts";

const RUNNING = 1;
const FINISHED = 2;

function start(
  client: TelejobClient,
  command: string,
  args: string[] = [],
  extra: Record<string, unknown> = {},
): Promise<string> {
  return call<{ id: string }>(client, "start", {
    command,
    args,
    env: [],
    cwd: "",
    ...extra,
  }).then((r) => r.id);
}

async function status(client: TelejobClient, id: string): Promise<Job> {
  return (await call<{ job: Job }>(client, "status", { id })).job;
}

function text(result: { data: Uint8Array } | { code: string }): string {
  assert.ok("data" in result, `logs failed: ${JSON.stringify(result)}`);
  return new TextDecoder().decode(result.data);
}

/** Runs `fn` with a server and clients for client1, client2 and admin. */
async function withServer(
  fn: (
    server: ServerProcess,
    clients: Record<"c1" | "c2" | "admin", TelejobClient>,
  ) => Promise<void>,
): Promise<void> {
  const server = await startServer();
  const clients = {
    c1: clientFor(server, "client1"),
    c2: clientFor(server, "client2"),
    admin: clientFor(server, "admin"),
  };
  try {
    await fn(server, clients);
  } finally {
    for (const client of Object.values(clients)) client.close();
    const result = await server.stop();
    assert.equal(result.code, 0, server.lines.slice(-10).join("\n"));
  }
}

Deno.test("seed scenario: start sleep, status, stop, status shows the stop", async () => {
  await withServer(async (_server, { c1 }) => {
    const id = await start(c1, "sleep", ["100"]);
    assert.match(id, /^[0-9]+$/);
    const running = await status(c1, id);
    assert.equal(running.state, RUNNING);
    assert.equal(running.owner, "client1");
    assert.equal(running.command, "sleep");
    assert.deepEqual(running.args, ["100"]);
    assert.equal(running.endedAt, undefined);

    const { job: stopped } = await call<{ job: Job }>(c1, "stop", {
      id,
      grace: { seconds: 2, nanos: 0 },
    });
    assert.equal(stopped.state, FINISHED);
    assert.equal(stopped.stopped, true);
    assert.equal(stopped.stoppedBy, "client1");
    assert.equal(stopped.signal, "SIGTERM");
    assert.ok(stopped.endedAt instanceof Date);

    const after = await status(c1, id);
    assert.equal(after.state, FINISHED);
    assert.equal(after.stopped, true);
  });
});

Deno.test("output: streamed exactly, with follow, offset and tail", async () => {
  await withServer(async (_server, { c1 }) => {
    const id = await start(c1, "sh", [
      "-c",
      "printf 'one\\n'; printf 'two\\n' >&2; sleep 0.3; printf 'three\\n'",
    ]);
    // Follow from the start: everything, in order, then the stream ends.
    assert.equal(
      text(await readLogs(c1, { id, follow: true })),
      "one\ntwo\nthree\n",
    );
    const job = await status(c1, id);
    assert.equal(job.exitCode, 0);
    assert.equal(job.outputBytes, 14);
    assert.equal(text(await readLogs(c1, { id, offset: 4 })), "two\nthree\n");
    assert.equal(text(await readLogs(c1, { id, tail: 6 })), "three\n");

    // Binary-safe through gRPC: every byte value, more than one message.
    const bin = await start(c1, "sh", [
      "-c",
      "i=0; while [ $i -lt 4 ]; do head -c 300000 /dev/zero | tr '\\0' '\\377'; i=$((i+1)); done; printf '\\000\\001\\002'",
    ]);
    const out = await readLogs(c1, { id: bin, follow: true });
    assert.ok("data" in out);
    assert.equal(out.data.length, 1_200_003);
    assert.ok(out.data.subarray(0, 1_200_000).every((b) => b === 0xff));
    assert.deepEqual([...out.data.subarray(1_200_000)], [0, 1, 2]);
  });
});

Deno.test("authorization: another user's job looks exactly like a missing one", async () => {
  await withServer(async (_server, { c1, c2, admin }) => {
    const id = await start(c1, "sleep", ["100"]);
    const missing = String(Number(id) + 1000);
    const shape = (f: { code: string; details: string }, which: string) => ({
      code: f.code,
      details: f.details.replaceAll(which, "<id>"),
    });

    const forMissing = shape(
      await failure(c2, "status", { id: missing }),
      missing,
    );
    assert.equal(forMissing.code, "NOT_FOUND");
    assert.deepEqual(
      shape(await failure(c2, "status", { id }), id),
      forMissing,
    );
    assert.deepEqual(
      shape(
        await failure(c2, "stop", { id, grace: { seconds: 0, nanos: 0 } }),
        id,
      ),
      shape(
        await failure(c2, "stop", {
          id: missing,
          grace: { seconds: 0, nanos: 0 },
        }),
        missing,
      ),
    );
    const streamOther = await readLogs(c2, { id, follow: true });
    const streamMissing = await readLogs(c2, { id: missing, follow: true });
    assert.ok("code" in streamOther && "code" in streamMissing);
    assert.deepEqual(shape(streamOther, id), shape(streamMissing, missing));
    assert.equal(streamOther.code, "NOT_FOUND");
    const { jobs } = await call<{ jobs: Job[] }>(c2, "list", {});
    assert.ok(!jobs.some((j) => j.id === id));

    // client2's failed stop did not touch it.
    assert.equal((await status(c1, id)).state, RUNNING);

    // The admin sees, lists and stops it.
    assert.equal((await status(admin, id)).owner, "client1");
    const all = await call<{ jobs: Job[] }>(admin, "list", {});
    assert.ok(all.jobs.some((j) => j.id === id));
    const { job } = await call<{ job: Job }>(admin, "stop", {
      id,
      grace: { seconds: 0, nanos: 0 },
    });
    assert.equal(job.stopped, true);
    assert.equal(job.stoppedBy, "admin");
  });
});

Deno.test("bad input: each a clear error with the right code, the server keeps serving", async () => {
  await withServer(async (server, { c1 }) => {
    const base = { command: "echo", args: [], env: [], cwd: "" };
    const cases: [
      string,
      "start" | "stop" | "status",
      unknown,
      string,
      RegExp,
    ][] = [
      [
        "empty command",
        "start",
        { ...base, command: "" },
        "INVALID_ARGUMENT",
        /^command: /,
      ],
      [
        "NUL in command",
        "start",
        { ...base, command: "ec\0ho" },
        "INVALID_ARGUMENT",
        /^command: .*NUL/,
      ],
      [
        "NUL in an argument",
        "start",
        { ...base, args: ["a", "b\0c"] },
        "INVALID_ARGUMENT",
        /^args\[1\]: .*NUL/,
      ],
      [
        "NUL in env",
        "start",
        { ...base, env: ["A=b\0"] },
        "INVALID_ARGUMENT",
        /^env\[0\]: .*NUL/,
      ],
      [
        "env without =",
        "start",
        { ...base, env: ["JUSTKEY"] },
        "INVALID_ARGUMENT",
        /^env\[0\]: .*KEY=VALUE/,
      ],
      [
        "relative cwd",
        "start",
        { ...base, cwd: "tmp" },
        "INVALID_ARGUMENT",
        /^cwd: .*absolute/,
      ],
      [
        "missing command",
        "start",
        { ...base, command: "no-such-command-xyz" },
        "INVALID_ARGUMENT",
        /^command: .*not found/,
      ],
      [
        "1 MB argument",
        "start",
        { ...base, args: ["x".repeat(1 << 20)] },
        "INVALID_ARGUMENT",
        /^args\[0\]: .*at most 131072 bytes/,
      ],
      [
        "100,000 arguments",
        "start",
        { ...base, args: Array(100_000).fill("x") },
        "INVALID_ARGUMENT",
        /^args: 100000 arguments given; at most 10000/,
      ],
      [
        "5 MB request",
        "start",
        { ...base, args: Array(50).fill("y".repeat(100_000)) },
        "RESOURCE_EXHAUSTED",
        /larger than max/,
      ],
      [
        "negative CPU",
        "start",
        { ...base, limits: { cpu: -1, memoryBytes: 0, pids: 0, io: [] } },
        "INVALID_ARGUMENT",
        /^limits\.cpu: /,
      ],
      [
        "NaN CPU",
        "start",
        { ...base, limits: { cpu: NaN, memoryBytes: 0, pids: 0, io: [] } },
        "INVALID_ARGUMENT",
        /^limits\.cpu: /,
      ],
      [
        "absurd CPU",
        "start",
        { ...base, limits: { cpu: 1e9, memoryBytes: 0, pids: 0, io: [] } },
        "INVALID_ARGUMENT",
        /^limits\.cpu: /,
      ],
      [
        "absurd memory",
        "start",
        { ...base, limits: { cpu: 0, memoryBytes: 1e15, pids: 0, io: [] } },
        "INVALID_ARGUMENT",
        /^limits\.memory_bytes: /,
      ],
      [
        "absurd pids",
        "start",
        { ...base, limits: { cpu: 0, memoryBytes: 0, pids: 1e12, io: [] } },
        "INVALID_ARGUMENT",
        /^limits\.pids: /,
      ],
      ["unknown id", "status", { id: "987654321" }, "NOT_FOUND", /not found/],
      ["empty id", "status", { id: "" }, "INVALID_ARGUMENT", /^id: missing/],
      [
        "malformed id",
        "status",
        { id: "../1" },
        "INVALID_ARGUMENT",
        /^id: .*decimal/,
      ],
      [
        "huge id",
        "status",
        { id: "9".repeat(5000) },
        "INVALID_ARGUMENT",
        /^id: .*decimal/,
      ],
      [
        "negative grace",
        "stop",
        { id: "1", grace: { seconds: -5, nanos: 0 } },
        "INVALID_ARGUMENT",
        /^grace: .*negative/,
      ],
      [
        "absurd grace",
        "stop",
        { id: "1", grace: { seconds: 10 * 365 * 86400, nanos: 0 } },
        "INVALID_ARGUMENT",
        /^grace: .*maximum/,
      ],
      [
        "malformed grace",
        "stop",
        { id: "1", grace: { seconds: 1, nanos: -5 } },
        "INVALID_ARGUMENT",
        /^grace: /,
      ],
    ];
    for (const [what, method, request, code, message] of cases) {
      const f = await failure(c1, method, request);
      assert.equal(f.code, code, `${what}: ${f.details}`);
      assert.match(f.details, message, what);
      assert.ok(server.alive(), `the server died on ${what}`);
    }
    // Logs validates too.
    const badLogs = await readLogs(c1, { id: "x" });
    assert.ok("code" in badLogs);
    assert.equal(badLogs.code, "INVALID_ARGUMENT");
    // No job was created by any of them.
    const { jobs } = await call<{ jobs: Job[] }>(c1, "list", {});
    assert.deepEqual(jobs, []);
    // And the server still works.
    const id = await start(c1, "true");
    assert.equal((await waitFinished(c1, id)).exitCode, 0);
  });
});

Deno.test("a malformed request message is INVALID_ARGUMENT, not a crash", async () => {
  await withServer(async (server) => {
    const raw = rawClient(server.port, {
      start: { path: "/telejob.v1.Telejob/Start" },
    });
    try {
      const result = await new Promise<grpc.ServiceError | null>((resolve) =>
        // Field 1 (command) claims 100 bytes but the message ends.
        raw.start(
          Buffer.from([0x0a, 0x64, 0x61]),
          (error: grpc.ServiceError | null) => resolve(error),
        )
      );
      assert.equal(result?.code, grpc.status.INVALID_ARGUMENT);
      assert.match(result!.details, /^Malformed request/);
    } finally {
      raw.close();
    }
    assert.ok(server.alive());
  });
});

Deno.test("one JSON log line per RPC with time, user, method, job id, outcome, duration", async () => {
  await withServer(async (server, { c1, c2 }) => {
    const from = server.lines.length;
    const id = await start(c1, "true");
    const started = await server.waitForLog((e) => e.method === "Start", from);
    assert.equal(started.user, "client1");
    assert.equal(started.jobId, id);
    assert.equal(started.outcome, "OK");
    assert.equal(typeof started.durationMs, "number");
    assert.ok(!Number.isNaN(Date.parse(started.time as string)));

    await failure(c2, "status", { id });
    const denied = await server.waitForLog((e) => e.method === "Status", from);
    assert.equal(denied.user, "client2");
    assert.equal(denied.jobId, id);
    assert.equal(denied.outcome, "NOT_FOUND");
  });
});

Deno.test("health service and server reflection answer with a client certificate", async () => {
  await withServer(async (server) => {
    const client = rawClient(server.port, {
      check: { path: "/grpc.health.v1.Health/Check" },
      reflect: {
        path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        requestStream: true,
        responseStream: true,
      },
    });
    try {
      // HealthCheckRequest{service: "telejob.v1.Telejob"} -> status SERVING (1).
      const name = Buffer.from("telejob.v1.Telejob");
      const health = await new Promise<Buffer>((resolve, reject) =>
        client.check(
          Buffer.concat([Buffer.from([0x0a, name.length]), name]),
          (error: Error | null, response: Buffer) =>
            error ? reject(error) : resolve(response),
        )
      );
      assert.deepEqual([...health], [0x08, 0x01]);

      // ServerReflectionRequest{list_services: ""}: field 7, empty string.
      const stream = client.reflect();
      const answer = new Promise<Buffer>((resolve, reject) => {
        stream.on("data", (data: Buffer) => resolve(data));
        stream.on("error", reject);
      });
      stream.write(Buffer.from([0x3a, 0x00]));
      const listed = (await answer).toString("latin1");
      stream.end();
      await new Promise((resolve) => stream.on("end", resolve).resume());
      for (const service of ["telejob.v1.Telejob", "grpc.health.v1.Health"]) {
        assert.ok(
          listed.includes(service),
          `reflection does not list ${service}`,
        );
      }
    } finally {
      client.close();
    }
  });
});

Deno.test("SIGTERM: open follow streams end with UNAVAILABLE, jobs stop, exit 0", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "telejob-sigterm-" });
  try {
    const server = await startServer({ args: ["--data-dir", dataDir] });
    const client = clientFor(server, "client1");
    let id: string;
    try {
      id = await start(client, "sleep", ["600"]);
      const from = server.lines.length;
      const stream = client.logs({ id, follow: true, offset: 0 });
      const ended = new Promise<string>((resolve) => {
        stream.on("data", () => {});
        stream.on(
          "error",
          (e: grpc.ServiceError) => resolve(grpc.status[e.code]),
        );
        stream.on("end", () => resolve("END"));
      });
      // A Status call on the same connection after the Logs call was sent
      // means the server has the stream open.
      await call(client, "status", { id });
      server.child.kill("SIGTERM");
      assert.equal(await ended, "UNAVAILABLE");
      const logsLine = await server.waitForLog(
        (e) => e.method === "Logs",
        from,
      );
      assert.equal(logsLine.outcome, "UNAVAILABLE");
      assert.equal((await server.stop()).code, 0);
      const events = server.logs().map((e) => e.event).filter(Boolean);
      assert.deepEqual(events.slice(-2), ["shutting_down", "stopped"]);
    } finally {
      client.close();
      await server.stop();
    }
    // The job was stopped by the shutdown, not lost in it.
    const again = await startServer({ args: ["--data-dir", dataDir] });
    const check = clientFor(again, "client1");
    try {
      const job = await status(check, id);
      assert.equal(job.state, FINISHED);
      assert.equal(job.lostInRestart, false);
    } finally {
      check.close();
      assert.equal((await again.stop()).code, 0);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a restarted server lists the earlier jobs with their output", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "telejob-restart-" });
  try {
    const first = await startServer({ args: ["--data-dir", dataDir] });
    const c1 = clientFor(first, "client1");
    let id: string;
    try {
      id = await start(c1, "echo", ["kept"]);
      await waitFinished(c1, id);
    } finally {
      c1.close();
      assert.equal((await first.stop()).code, 0);
    }
    const second = await startServer({ args: ["--data-dir", dataDir] });
    const again = clientFor(second, "client1");
    try {
      const job = await status(again, id);
      assert.equal(job.exitCode, 0);
      assert.equal(text(await readLogs(again, { id })), "kept\n");
    } finally {
      again.close();
      assert.equal((await second.stop()).code, 0);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

async function rssBytes(pid: number): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(text)?.[1]) * 1024;
}

Deno.test("a reader that stops reading holds back the server, not its memory; cancel ends the stream", async () => {
  await withServer(async (server, { c1 }) => {
    const size = 400 * 1024 * 1024;
    const before = await rssBytes(server.child.pid);
    const id = await start(c1, "head", ["-c", String(size), "/dev/zero"]);

    // A follower that reads one message and then nothing more.
    const from = server.lines.length;
    const stalled = c1.logs({ id, follow: true, offset: 0 });
    await new Promise<void>((resolve) => {
      stalled.once("data", () => {
        stalled.pause();
        resolve();
      });
    });
    const ended = new Promise<string>((resolve) => {
      stalled.on(
        "error",
        (e: grpc.ServiceError) => resolve(grpc.status[e.code]),
      );
      stalled.on("end", () => resolve("END"));
    });

    // Meanwhile the admin reads everything at full speed.
    const admin = clientFor(server, "admin");
    try {
      const all = await readLogs(admin, { id, follow: true });
      assert.ok("data" in all);
      assert.equal(all.data.length, size);
    } finally {
      admin.close();
    }
    assert.equal((await status(c1, id)).exitCode, 0);

    // The stalled stream's unread output stayed on disk, not in the server.
    const grown = (await rssBytes(server.child.pid)) - before;
    assert.ok(
      grown < 150 * 1024 * 1024,
      `server memory grew by ${
        Math.round(grown / 2 ** 20)
      } MiB with a stalled reader`,
    );

    stalled.cancel();
    assert.equal(await ended, "CANCELLED");
    const line = await server.waitForLog(
      (e) => e.method === "Logs" && e.user === "client1",
      from,
    );
    assert.equal(line.outcome, "CANCELLED");
    assert.ok(server.alive());
  });
});

Deno.test("per-user job quota: RESOURCE_EXHAUSTED for the user over it, others unaffected", async () => {
  const server = await startServer({ args: ["--max-jobs-per-user", "1"] });
  const c1 = clientFor(server, "client1");
  const c2 = clientFor(server, "client2");
  try {
    const first = await start(c1, "sleep", ["100"]);
    const over = await failure(c1, "start", {
      command: "sleep",
      args: ["100"],
      env: [],
      cwd: "",
    });
    assert.equal(over.code, "RESOURCE_EXHAUSTED");
    assert.match(over.details, /1/);
    const other = await start(c2, "sleep", ["100"]);
    await call(c1, "stop", { id: first, grace: { seconds: 0, nanos: 0 } });
    await call(c2, "stop", { id: other, grace: { seconds: 0, nanos: 0 } });
    // A finished job no longer counts.
    const again = await start(c1, "true");
    await waitFinished(c1, again);
  } finally {
    c1.close();
    c2.close();
    assert.equal((await server.stop()).code, 0);
  }
});
