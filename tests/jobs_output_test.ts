/**
 * Output streaming through the engine under load: many followers, and a
 * reader that stops reading.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { collect, withEngine } from "../server/jobs/_test_util.ts";

async function mkfifo(path: string): Promise<void> {
  const { code } = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(code, 0, `mkfifo ${path}`);
}

async function release(fifo: string): Promise<void> {
  const file = await Deno.open(fifo, { write: true });
  await file.write(new TextEncoder().encode("go\n"));
  file.close();
}

Deno.test("100 concurrent followers receive identical bytes", async () => {
  await withEngine(async (engine) => {
    const dir = await Deno.makeTempDir();
    await Deno.chmod(dir, 0o755); // jobs run as their owner's own uid
    try {
      const fifo = `${dir}/go`;
      await mkfifo(fifo);
      // The job waits for us, so every follower attaches before any output
      // and must follow it as it is written.
      const job = await engine.start("alice", {
        command: "sh",
        args: [
          "-c",
          'read x < "$1"; head -c 1048576 /dev/urandom; i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; head -c 65537 /dev/urandom',
          "sh",
          fifo,
        ],
      });
      const followers = Array.from({ length: 100 }, async () => {
        const hash = createHash("sha256");
        let bytes = 0;
        for await (
          const chunk of engine.logs("alice", job.id, { follow: true })
        ) {
          hash.update(chunk);
          bytes += chunk.length;
        }
        return `${bytes}:${hash.digest("hex")}`;
      });
      await release(fifo);
      const results = await Promise.all(followers);
      const whole = await collect(engine.logs("alice", job.id));
      const expected = `${whole.length}:${
        createHash("sha256").update(whole).digest("hex")
      }`;
      assert.ok(whole.length > 1048576 + 65537, `${whole.length}`);
      assert.deepEqual(new Set(results), new Set([expected]));
      const info = await engine.status("alice", job.id);
      assert.equal(info.exitCode, 0);
      assert.equal(info.outputBytes, whole.length);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("a reader that never reads stalls neither the job nor a fast reader", async () => {
  await withEngine(async (engine) => {
    const size = 32 * 1024 * 1024;
    const job = await engine.start("alice", {
      command: "sh",
      args: ["-c", `echo first; head -c ${size} /dev/zero; echo last`],
    });
    const slow = engine.logs("alice", job.id, { follow: true })[
      Symbol.asyncIterator
    ]();
    const first = await slow.next();
    assert.equal(first.done, false);
    // The slow reader now holds one chunk and reads no more.
    const fast = await collect(engine.logs("alice", job.id, { follow: true }));
    assert.equal(fast.length, 6 + size + 5);
    const info = await engine.status("alice", job.id);
    assert.equal(info.state, "finished");
    assert.equal(info.exitCode, 0);
    // Releasing the slow reader closes its file (the sanitizer checks).
    await slow.return?.();
  });
});

Deno.test("logs ends a follower on abort and releases its file", async () => {
  await withEngine(async (engine) => {
    const job = await engine.start("alice", {
      command: "sh",
      args: ["-c", "echo hello; exec sleep 1000"],
    });
    const controller = new AbortController();
    const seen: string[] = [];
    for await (
      const chunk of engine.logs("alice", job.id, {
        follow: true,
        signal: controller.signal,
      })
    ) {
      seen.push(new TextDecoder().decode(chunk));
      controller.abort();
    }
    assert.deepEqual(seen, ["hello\n"]);
    assert.equal((await engine.status("alice", job.id)).state, "running");
  });
});

Deno.test("a follower can start at a tail or an offset of a running job", async () => {
  await withEngine(async (engine) => {
    const dir = await Deno.makeTempDir();
    await Deno.chmod(dir, 0o755); // jobs run as their owner's own uid
    try {
      const fifo = `${dir}/go`;
      await mkfifo(fifo);
      const job = await engine.start("alice", {
        command: "sh",
        args: ["-c", 'echo first; read x < "$1"; echo second', "sh", fifo],
      });
      const decoder = new TextDecoder();
      // Wait until the first line is there, then attach followers.
      while (
        decoder.decode(await collect(engine.logs("alice", job.id))) === ""
      ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // Each follower must have taken its starting point (and delivered its
      // first chunk) before the job writes again, or "the last 3 bytes"
      // would already include the second line.
      const attach = async (
        options: { tail?: number; offset?: number },
      ): Promise<{ text: Promise<string> }> => {
        const chunks = engine.logs("alice", job.id, {
          follow: true,
          ...options,
        })
          [Symbol.asyncIterator]();
        const first = await chunks.next();
        assert.equal(first.done, false);
        // Wrapped: an async function returning a bare promise would wait
        // for it, i.e. for the job's end.
        return {
          text: (async () => {
            let text = decoder.decode(first.value);
            for (
              let r = await chunks.next();
              !r.done;
              r = await chunks.next()
            ) {
              text += decoder.decode(r.value);
            }
            return text;
          })(),
        };
      };
      const tail = await attach({ tail: 3 });
      const offset = await attach({ offset: 5 });
      const beyond = collect(
        engine.logs("alice", job.id, { follow: true, offset: 1000 }),
      );
      await release(fifo);
      assert.equal(await tail.text, "st\nsecond\n");
      assert.equal(await offset.text, "\nsecond\n");
      assert.equal(decoder.decode(await beyond), "");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
