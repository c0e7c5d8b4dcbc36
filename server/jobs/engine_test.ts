import assert from "node:assert/strict";
import { detectDriver } from "../../cgroup/mod.ts";
import { JobEngine } from "./engine.ts";
import { JobError } from "./errors.ts";
import {
  collect,
  pidsWithMarker,
  removeParent,
  testParent,
  text,
  until,
  withEngine,
} from "./_test_util.ts";

function isJobError(code: string, field?: string, message?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof JobError, `not a JobError: ${error}`);
    assert.equal(error.code, code);
    assert.equal(error.field, field);
    if (message) assert.match(error.message, message);
    return true;
  };
}

Deno.test("a failed start removes only what it made, and its id is not reused", async () => {
  await withEngine(async (engine, { dataDir, cgroups }) => {
    // An output file that is not this start's (as if an id were handed out
    // twice): the start fails and must leave the file alone.
    const foreign = `${dataDir}/output/1.out`;
    await Deno.writeTextFile(foreign, "someone else's output");
    await assert.rejects(
      engine.start("alice", { command: "true" }),
      Deno.errors.AlreadyExists,
    );
    assert.equal(await Deno.readTextFile(foreign), "someone else's output");
    assert.deepEqual(await engine.list("alice"), []);
    assert.deepEqual(await cgroups.list(), []);
    const job = await engine.start("alice", { command: "true" });
    assert.equal(job.id, "2");
  });
});

Deno.test("start refuses bad requests and creates nothing", async () => {
  await withEngine(async (engine, { dataDir, cgroups }) => {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/plain`, "", { mode: 0o644 });
    const bad: [Parameters<typeof engine.start>[1], string][] = [
      [{ command: "" }, "command"],
      [{ command: "no-such-command-telejob" }, "command"],
      [{ command: `${dir}/plain` }, "command"],
      [{ command: "echo", args: ["a\0b"] }, "args"],
      [{ command: "ec\0ho" }, "command"],
      [{ command: "echo", env: ["A=\0"] }, "env"],
      [{ command: "echo", env: ["NOT AN ENTRY"] }, "env"],
      [{ command: "echo", cwd: "relative" }, "cwd"],
      [{ command: "echo", cwd: "/no/such/dir" }, "cwd"],
      [{ command: "echo", limits: { cpu: -1 } }, "limits.cpu"],
    ];
    try {
      for (const [request, field] of bad) {
        await assert.rejects(
          engine.start("alice", request),
          isJobError("invalid_argument", field),
          JSON.stringify(request),
        );
      }
      assert.deepEqual(await engine.list("alice"), []);
      assert.deepEqual(await cgroups.list(), []);
      assert.deepEqual([...Deno.readDirSync(`${dataDir}/output`)], []);
      // The next id is still 1: nothing was recorded.
      const job = await engine.start("alice", { command: "true" });
      assert.equal(job.id, "1");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("a job is in its cgroup from its first instruction", async () => {
  await withEngine(async (engine, { cgroups }) => {
    const job = await engine.start("alice", {
      command: "cat",
      args: ["/proc/self/cgroup"],
    });
    const output = text(
      await collect(engine.logs("alice", job.id, { follow: true })),
    );
    const lines = output.trim().split("\n");
    assert.ok(lines.length > 0, output);
    // Every hierarchy the driver uses shows the job's own cgroup.
    const controllers = cgroups.version === 1
      ? ["cpu", "cpuacct", "memory", "pids", "blkio", "freezer"]
      : [""];
    for (const controller of controllers) {
      const line = lines.find((l) => {
        const [, list] = l.split(":");
        return controller === ""
          ? l.startsWith("0::")
          : list.split(",").includes(controller);
      });
      assert.ok(line, `no ${controller} line in ${output}`);
      assert.match(line, new RegExp(`/telejob-[0-9a-f]{8}-${job.id}$`), output);
    }
    const info = await engine.status("alice", job.id);
    assert.equal(info.state, "finished");
    assert.equal(info.exitCode, 0);
    assert.deepEqual(await cgroups.list(), []);
  });
});

Deno.test("stdout and stderr interleave as on a terminal", async () => {
  await withEngine(async (engine) => {
    const job = await engine.start("alice", {
      command: "sh",
      args: [
        "-c",
        "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; printf tail >&2",
      ],
    });
    const output = text(
      await collect(engine.logs("alice", job.id, { follow: true })),
    );
    assert.equal(
      output,
      "out1\nerr1\nout2\nerr2\nout3\nerr3\nout4\nerr4\nout5\nerr5\ntail",
    );
  });
});

Deno.test("a job sees a clean env, its cwd, stdin /dev/null and its own session", async () => {
  await withEngine(async (engine) => {
    const dir = await Deno.realPath(await Deno.makeTempDir());
    // alice's job runs as her own unprivileged uid: it must be let in.
    await Deno.chmod(dir, 0o755);
    try {
      const job = await engine.start("alice", {
        command: "sh",
        args: [
          "-c",
          'echo "$PATH|$HOME|$FOO|$(pwd)"; env | sort | cut -d= -f1 | tr "\\n" " "; echo; ' +
          'read x; echo "read=$?"; ' +
          'ps -o sid= -p $$ | tr -d " "; echo $$',
        ],
        env: ["FOO=bar baz"],
        cwd: dir,
      });
      const output = text(
        await collect(engine.logs("alice", job.id, { follow: true })),
      );
      const [first, names, read, sid, pid] = output.trim().split("\n");
      assert.match(
        first,
        new RegExp(`^/usr/local/sbin:.*:/bin\\|/.*\\|bar baz\\|${dir}$`),
      );
      assert.equal(read, "read=1", "stdin is at EOF");
      assert.equal(sid, pid, "the job leads its own session");
      for (const name of names.trim().split(" ")) {
        assert.ok(
          [
            "FOO",
            "HOME",
            "PATH",
            "PWD",
            "SHLVL",
            "_",
            "OLDPWD",
            "USER",
            "LOGNAME",
          ].includes(name),
          name,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("random binary output round-trips exactly", async () => {
  await withEngine(async (engine) => {
    const dir = await Deno.makeTempDir();
    await Deno.chmod(dir, 0o755); // jobs run as their owner's own uid
    try {
      const blob = new Uint8Array(1024 * 1024);
      for (let i = 0; i < blob.length; i += 65536) {
        crypto.getRandomValues(blob.subarray(i, i + 65536));
      }
      await Deno.writeFile(`${dir}/blob`, blob);
      const job = await engine.start("alice", {
        command: "cat",
        args: [`${dir}/blob`],
      });
      const followed = await collect(
        engine.logs("alice", job.id, { follow: true }),
      );
      assert.deepEqual(followed, blob);
      assert.deepEqual(await collect(engine.logs("alice", job.id)), blob);
      assert.deepEqual(
        await collect(engine.logs("alice", job.id, { offset: 1000 })),
        blob.subarray(1000),
      );
      assert.deepEqual(
        await collect(engine.logs("alice", job.id, { tail: 777 })),
        blob.subarray(blob.length - 777),
      );
      // With reuseBuffer every chunk is a view of the same buffer, so the
      // consumer copies each before asking for the next.
      const copied = new Uint8Array(blob.length);
      const buffers = new Set<ArrayBufferLike>();
      let at = 0;
      for await (
        const chunk of engine.logs("alice", job.id, { reuseBuffer: true })
      ) {
        buffers.add(chunk.buffer);
        copied.set(chunk, at);
        at += chunk.length;
      }
      assert.equal(buffers.size, 1);
      assert.equal(at, blob.length);
      assert.deepEqual(copied, blob);
      assert.equal(
        (await engine.status("alice", job.id)).outputBytes,
        blob.length,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("exit codes, signal names and stops are reported", async () => {
  await withEngine(async (engine) => {
    const code = await engine.start("alice", {
      command: "sh",
      args: ["-c", "exit 3"],
    });
    const code137 = await engine.start("alice", {
      command: "sh",
      args: ["-c", "exit 137"],
    });
    const signaled = await engine.start("alice", {
      command: "sh",
      args: ["-c", "kill -USR1 $$"],
    });
    await collect(engine.logs("alice", code.id, { follow: true }));
    await collect(engine.logs("alice", code137.id, { follow: true }));
    await collect(engine.logs("alice", signaled.id, { follow: true }));

    const a = await engine.status("alice", code.id);
    assert.equal(a.state, "finished");
    assert.equal(a.exitCode, 3);
    assert.equal(a.signal, undefined);
    assert.equal(a.stopped, false);
    assert.ok(a.endedAt && a.endedAt >= a.startedAt);
    const b = await engine.status("alice", code137.id);
    assert.equal(b.exitCode, 137, "an exit code of 137 is not a signal");
    assert.equal(b.signal, undefined);
    assert.equal(b.oomKilled, false);
    const c = await engine.status("alice", signaled.id);
    assert.equal(c.signal, "SIGUSR1");
    assert.equal(c.exitCode, undefined);

    const sleeper = await engine.start("alice", {
      command: "sleep",
      args: ["1000"],
    });
    assert.equal(sleeper.state, "running");
    const running = await engine.status("alice", sleeper.id);
    assert.equal(running.state, "running");
    assert.equal(running.endedAt, undefined);
    const stopped = await engine.stop("alice", sleeper.id);
    assert.equal(stopped.state, "finished");
    assert.equal(stopped.signal, "SIGTERM");
    assert.equal(stopped.stopped, true);
    assert.equal(stopped.stoppedBy, "alice");
    // Stopping a finished job is fine and changes nothing.
    assert.deepEqual(await engine.stop("alice", sleeper.id), stopped);
    assert.deepEqual(await engine.status("alice", sleeper.id), stopped);
  });
});

Deno.test("grace 0 kills at once; a job ignoring SIGTERM is killed after the grace", async () => {
  await withEngine(async (engine) => {
    const script = "trap '' TERM; echo ready; while :; do sleep 1; done";
    const a = await engine.start("alice", {
      command: "sh",
      args: ["-c", script],
    });
    const b = await engine.start("alice", {
      command: "sh",
      args: ["-c", script],
    });
    for (const job of [a, b]) {
      await until(
        "ready",
        async () =>
          text(await collect(engine.logs("alice", job.id))).includes("ready"),
      );
    }
    const [killed, graced, again] = await Promise.all([
      engine.stop("alice", a.id, { graceMs: 0 }),
      engine.stop("alice", b.id, { graceMs: 100 }),
      engine.stop("alice", b.id, { graceMs: 100 }),
    ]);
    assert.equal(killed.signal, "SIGKILL");
    assert.equal(killed.stopped, true);
    assert.equal(graced.signal, "SIGKILL");
    assert.deepEqual(again, graced, "concurrent stops end the same way");
  });
});

Deno.test("a stop right after start reaches the job even before it is in its cgroup", async () => {
  // The shim needs a moment to write itself into the cgroup; a stop in that
  // window must still end the job instead of signalling an empty cgroup.
  await withEngine(async (engine, { cgroups }) => {
    for (let i = 0; i < 20; i++) {
      const job = await engine.start("alice", {
        command: "sleep",
        args: ["1000"],
      });
      // Were SIGTERM lost, the kill after the grace would end it instead.
      const info = await engine.stop("alice", job.id, { graceMs: 1000 });
      assert.equal(info.state, "finished");
      assert.equal(info.signal, "SIGTERM");
    }
    assert.deepEqual(await cgroups.list(), []);
  });
});

Deno.test("stop leaves no process of a job whose children double-fork, setsid and ignore SIGTERM", async () => {
  await withEngine(async (engine, { cgroups }) => {
    const marker = `${1000000 + Math.floor(Math.random() * 1000000)}`;
    const script = [
      "trap '' TERM",
      // Double fork: the grandchild is orphaned and leads a new session.
      `( setsid sh -c 'trap "" TERM; sleep "$1" & sleep "$1" & wait' sh "$1" & )`,
      'sleep "$1" &',
      "while :; do sleep 1; done",
    ].join("\n");
    const job = await engine.start("alice", {
      command: "sh",
      args: ["-c", script, "sh", marker],
    });
    await until(
      "the process tree",
      async () => (await pidsWithMarker(marker)).length >= 4,
    );
    const info = await engine.stop("alice", job.id, { graceMs: 200 });
    assert.equal(info.stopped, true);
    assert.equal(info.signal, "SIGKILL");
    assert.deepEqual(await pidsWithMarker(marker), []);
    assert.deepEqual(await cgroups.list(), []);
  });
});

Deno.test("a job of another owner does not exist for them; admins see all", async () => {
  await withEngine(async (engine) => {
    const job = await engine.start("alice", {
      command: "sleep",
      args: ["1000"],
    });
    const missing = await engine.stop("alice", "999").catch((e) => e);
    assert.ok(missing instanceof JobError && missing.code === "not_found");
    for (
      const call of [
        () => engine.status("bob", job.id),
        () => engine.stop("bob", job.id),
        () => collect(engine.logs("bob", job.id)),
      ]
    ) {
      const error = await call().catch((e) => e);
      assert.ok(error instanceof JobError);
      assert.equal(error.code, "not_found");
      assert.equal(
        error.message,
        missing.message.replace("999", job.id),
        "same message as for a job that does not exist",
      );
    }
    assert.deepEqual(await engine.list("bob"), []);
    assert.equal((await engine.status("alice", job.id)).state, "running");

    for (
      const bad of [
        "",
        "0",
        "-1",
        "01",
        "abc",
        "1.5",
        "1e3",
        " 1",
        "99999999999999999999",
      ]
    ) {
      await assert.rejects(
        engine.status("alice", bad),
        isJobError("invalid_argument", "id", /not valid/),
        bad,
      );
    }
    await assert.rejects(
      collect(engine.logs("alice", job.id, { offset: -1 })),
      isJobError("invalid_argument", "offset"),
    );
    await assert.rejects(
      collect(engine.logs("alice", job.id, { tail: 1.5 })),
      isJobError("invalid_argument", "tail"),
    );
    await assert.rejects(
      engine.stop("alice", job.id, { graceMs: -5 }),
      isJobError("invalid_argument", "graceMs"),
    );

    const bobs = await engine.start("bob", { command: "true" });
    const all = await engine.list("root");
    assert.deepEqual(all.map((j) => j.id), [job.id, bobs.id]);
    assert.deepEqual((await engine.list("alice")).map((j) => j.id), [job.id]);
    assert.equal((await engine.status("root", job.id)).owner, "alice");
    const stopped = await engine.stop("root", job.id, { graceMs: 0 });
    assert.equal(stopped.stoppedBy, "root");
    assert.equal(stopped.owner, "alice");
  }, { admins: ["root"] });
});

Deno.test("the per-user quota counts running jobs", async () => {
  await withEngine(async (engine) => {
    const a = await engine.start("alice", { command: "sleep", args: ["1000"] });
    await engine.start("alice", { command: "sleep", args: ["1000"] });
    await assert.rejects(
      engine.start("alice", { command: "sleep", args: ["1000"] }),
      isJobError("resource_exhausted", undefined, /2 jobs/),
    );
    // Other users have their own quota.
    await engine.start("bob", { command: "sleep", args: ["1000"] });
    await engine.stop("alice", a.id, { graceMs: 0 });
    const c = await engine.start("alice", { command: "sleep", args: ["1000"] });
    assert.equal(c.state, "running");
  }, { maxJobsPerUser: 2 });
});

Deno.test("the output cap kills the job and keeps exactly the first cap bytes", async () => {
  const cap = 200_000;
  await withEngine(async (engine, { dataDir }) => {
    const job = await engine.start("alice", {
      command: "yes",
      args: ["0123456789"],
    });
    const followed = await collect(
      engine.logs("alice", job.id, { follow: true }),
    );
    const info = await engine.status("alice", job.id);
    assert.equal(info.state, "finished");
    assert.equal(info.outputLimitReached, true);
    assert.equal(info.signal, "SIGKILL");
    assert.equal(info.outputBytes, cap);
    assert.equal(followed.length, cap);
    assert.equal(
      (await Deno.stat(`${dataDir}/output/${job.id}.out`)).size,
      cap,
    );
    assert.equal(text(followed.subarray(0, 22)), "0123456789\n0123456789\n");

    const small = await engine.start("alice", {
      command: "echo",
      args: ["fine"],
    });
    await collect(engine.logs("alice", small.id, { follow: true }));
    assert.equal(
      (await engine.status("alice", small.id)).outputLimitReached,
      false,
    );
  }, { outputLimitBytes: cap });
});

Deno.test("a job past its memory limit is reported OOM-killed; the next is fine", async () => {
  await withEngine(async (engine) => {
    // The main process itself is the victim: tail keeps its whole
    // newline-free input in memory. (With a shell around it, the shell's
    // own write after the kill may need page cache the full cgroup cannot
    // give, and be OOM-killed too.)
    const job = await engine.start("alice", {
      command: "tail",
      args: ["/dev/zero"],
      limits: { memoryBytes: 32 * 1024 * 1024 },
    });
    await collect(engine.logs("alice", job.id, { follow: true }));
    const info = await engine.status("alice", job.id);
    assert.equal(info.oomKilled, true, JSON.stringify(info));
    assert.equal(info.signal, "SIGKILL");
    assert.equal(info.exitCode, undefined);
    assert.ok(
      info.usage.memoryPeakBytes > 16 * 1024 * 1024,
      `${info.usage.memoryPeakBytes}`,
    );
    assert.ok(info.usage.memoryPeakBytes <= 32 * 1024 * 1024 + 4096);
    assert.deepEqual(info.limits.memoryBytes, 32 * 1024 * 1024);

    const next = await engine.start("alice", {
      command: "sh",
      args: ["-c", "head -c 8M /dev/zero | tail | wc -c"],
      limits: { memoryBytes: 32 * 1024 * 1024 },
    });
    const nextOutput = text(
      await collect(engine.logs("alice", next.id, { follow: true })),
    );
    const nextInfo = await engine.status("alice", next.id);
    assert.equal(nextOutput.trim(), String(8 * 1024 * 1024));
    assert.equal(nextInfo.oomKilled, false);
    assert.equal(nextInfo.exitCode, 0);
  });
});

Deno.test("usage is read from the job's cgroup", async () => {
  await withEngine(async (engine) => {
    const job = await engine.start("alice", {
      command: "sh",
      args: ["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"],
    });
    await collect(engine.logs("alice", job.id, { follow: true }));
    const info = await engine.status("alice", job.id);
    assert.ok(info.usage.cpuUsec > 10_000, JSON.stringify(info.usage));
    assert.ok(info.usage.memoryPeakBytes > 0, JSON.stringify(info.usage));
  });
});

Deno.test("shutdown stops every job and refuses new ones", async () => {
  await withEngine(async (engine) => {
    const a = await engine.start("alice", { command: "sleep", args: ["1000"] });
    const follower = collect(engine.logs("alice", a.id, { follow: true }));
    await engine.shutdown({ graceMs: 1000 });
    await follower;
    await assert.rejects(
      engine.start("alice", { command: "true" }),
      isJobError("unavailable"),
    );
    await assert.rejects(
      engine.status("alice", a.id),
      isJobError("unavailable"),
    );
  });
});

Deno.test("after a graceful shutdown a new engine lists the stopped jobs", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "telejob-engine-test-" });
  const parent = testParent();
  const cgroups = await detectDriver({ parent });
  try {
    let engine = await JobEngine.open({ dataDir, cgroups });
    const done = await engine.start("alice", {
      command: "sh",
      args: ["-c", "echo done; exit 4"],
    });
    await collect(engine.logs("alice", done.id, { follow: true }));
    const sleeper = await engine.start("alice", {
      command: "sh",
      args: ["-c", "echo sleeping; exec sleep 1000"],
    });
    await until(
      "output",
      async () =>
        text(await collect(engine.logs("alice", sleeper.id))) === "sleeping\n",
    );
    await engine.shutdown({ graceMs: 5000 });

    engine = await JobEngine.open({ dataDir, cgroups });
    try {
      const [a, b] = await engine.list("alice");
      assert.equal(a.exitCode, 4);
      assert.equal(b.state, "finished");
      assert.equal(b.stopped, true);
      assert.equal(b.stoppedBy, undefined);
      assert.equal(b.signal, "SIGTERM");
      assert.equal(b.lostInRestart, false);
      assert.equal(
        text(await collect(engine.logs("alice", b.id, { follow: true }))),
        "sleeping\n",
      );
    } finally {
      await engine.shutdown();
    }
  } finally {
    await removeParent(cgroups);
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("two engines below one cgroup parent keep their jobs apart", async () => {
  // Two servers with their own data dirs in one cgroup (both at job id 1):
  // neither may collide on the other's cgroup name or sweep the other's
  // running job away as stale when it starts.
  await withEngine(async (first, { cgroups }) => {
    const firstJob = await first.start("alice", {
      command: "sleep",
      args: ["600"],
    });
    const secondDir = await Deno.makeTempDir({
      prefix: "telejob-engine-test-",
    });
    const second = await JobEngine.open({ dataDir: secondDir, cgroups });
    try {
      const secondJob = await second.start("alice", {
        command: "sleep",
        args: ["600"],
      });
      assert.equal(secondJob.id, firstJob.id);
      assert.equal(
        (await first.status("alice", firstJob.id)).state,
        "running",
        "the second engine's start-up sweep left the first one's job alone",
      );
      assert.equal((await cgroups.list()).length, 2);
    } finally {
      await second.shutdown({ graceMs: 0 });
      await Deno.remove(secondDir, { recursive: true });
    }
    assert.equal((await first.status("alice", firstJob.id)).state, "running");
    assert.equal((await cgroups.list()).length, 1);
  });
});
