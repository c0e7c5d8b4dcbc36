import assert from "node:assert/strict";
import { OutputDir, READ_CHUNK_BYTES, readOutput } from "./output.ts";
import { collect } from "./_test_util.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function withDir(
  fn: (dir: OutputDir, changes: (string | undefined)[]) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir();
  const changes: (string | undefined)[] = [];
  const dir = await OutputDir.open(`${root}/output`, {
    onChange: (id) => changes.push(id),
  });
  try {
    await fn(dir, changes);
  } finally {
    await dir.close();
    await Deno.remove(root, { recursive: true });
  }
}

function sh(script: string): Deno.ChildProcess {
  return new Deno.Command("/bin/sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

Deno.test("OutputDir wakes waiters when another process writes", async () => {
  await withDir(async (dir, changes) => {
    dir.create("7");
    await Deno.writeTextFile(`${dir.dir}/notes.txt`, "");
    const changed = dir.changed("7");
    // Readers of one job share one wake-up.
    assert.equal(dir.changed("7"), changed);
    const child = sh(
      `printf x >> ${dir.path("7")}; printf y >> ${dir.dir}/notes.txt`,
    );
    await changed;
    assert.equal((await child.status).code, 0);
    assert.ok(changes.includes("7"));
    assert.ok(!changes.includes("notes"));
    // A fresh promise after each wake-up.
    assert.notEqual(dir.changed("7"), changed);
    dir.wake("7");
  });
});

Deno.test("readOutput reads from an offset, a tail, and stops at the current end", async () => {
  await withDir(async (dir) => {
    dir.create("1");
    await Deno.writeTextFile(dir.path("1"), "0123456789");
    const source = {
      path: dir.path("1"),
      running: () => true,
      changed: () => dir.changed("1"),
      limit: 1 << 30,
    };
    assert.equal(text(await collect(readOutput(source))), "0123456789");
    assert.equal(
      text(await collect(readOutput(source, { offset: 4 }))),
      "456789",
    );
    assert.equal(text(await collect(readOutput(source, { offset: 40 }))), "");
    assert.equal(text(await collect(readOutput(source, { tail: 3 }))), "789");
    assert.equal(
      text(await collect(readOutput(source, { tail: 3, offset: 1 }))),
      "789",
    );
    assert.equal(
      text(await collect(readOutput(source, { tail: 99 }))),
      "0123456789",
    );
    // Never past the limit (the output cap).
    assert.equal(
      text(await collect(readOutput({ ...source, limit: 5 }))),
      "01234",
    );
    assert.equal(
      text(await collect(readOutput({ ...source, limit: 5 }, { tail: 2 }))),
      "34",
    );
    // A missing file reads as empty.
    assert.equal(
      (await collect(readOutput({ ...source, path: dir.path("2") }))).length,
      0,
    );
  });
});

Deno.test("readOutput round-trips random binary data in bounded chunks", async () => {
  await withDir(async (dir) => {
    const blob = new Uint8Array(1024 * 1024 + 17);
    for (let i = 0; i < blob.length; i += 65536) {
      crypto.getRandomValues(
        blob.subarray(i, Math.min(i + 65536, blob.length)),
      );
    }
    await Deno.writeFile(dir.path("3"), blob);
    const source = {
      path: dir.path("3"),
      running: () => false,
      changed: () => dir.changed("3"),
      limit: 1 << 30,
    };
    let largest = 0;
    const parts: Uint8Array[] = [];
    for await (const chunk of readOutput(source, { follow: true })) {
      largest = Math.max(largest, chunk.length);
      parts.push(chunk);
    }
    assert.ok(largest <= READ_CHUNK_BYTES);
    // Chunks are copies, not views of a reused buffer.
    const joined = new Uint8Array(blob.length);
    let at = 0;
    for (const part of parts) {
      joined.set(part, at);
      at += part.length;
    }
    assert.equal(at, blob.length);
    assert.deepEqual(joined, blob);
  });
});

Deno.test("readOutput with reuseBuffer reads into one buffer, bytes intact", async () => {
  await withDir(async (dir) => {
    const blob = new Uint8Array(1024 * 1024 + 17);
    for (let i = 0; i < blob.length; i += 65536) {
      crypto.getRandomValues(
        blob.subarray(i, Math.min(i + 65536, blob.length)),
      );
    }
    await Deno.writeFile(dir.path("4"), blob);
    const source = {
      path: dir.path("4"),
      running: () => false,
      changed: () => dir.changed("4"),
      limit: 1 << 30,
    };
    const buffers = new Set<ArrayBufferLike>();
    const joined = new Uint8Array(blob.length);
    let at = 0;
    let chunks = 0;
    for await (
      const chunk of readOutput(source, { follow: true, reuseBuffer: true })
    ) {
      assert.ok(chunk.length <= READ_CHUNK_BYTES);
      buffers.add(chunk.buffer);
      // The consumer's side of the bargain: done with the bytes on resume.
      joined.set(chunk, at);
      at += chunk.length;
      chunks++;
    }
    assert.ok(chunks > 4);
    assert.equal(buffers.size, 1);
    assert.equal(at, blob.length);
    assert.deepEqual(joined, blob);
  });
});

Deno.test("readOutput follows a writer until it has ended", async () => {
  await withDir(async (dir) => {
    dir.create("4");
    let running = true;
    const source = {
      path: dir.path("4"),
      running: () => running,
      changed: () => dir.changed("4"),
      limit: 1 << 30,
    };
    // The writer waits for a line from us before each next line, so the
    // follower must be woken by the watcher each time to see it.
    const writer = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        `for i in 1 2 3; do read go; echo line$i >> ${dir.path("4")}; done`,
      ],
      stdin: "piped",
      stdout: "null",
    }).spawn();
    const control = writer.stdin.getWriter();
    const encoder = new TextEncoder();
    await control.write(encoder.encode("go\n"));
    let seen = "";
    for await (const chunk of readOutput(source, { follow: true })) {
      seen += text(chunk);
      if (seen === "line1\n") await control.write(encoder.encode("go\n"));
      if (seen === "line1\nline2\n") {
        await control.write(encoder.encode("go\n"));
        await control.close();
        await writer.status;
        running = false;
        dir.wake("4");
      }
    }
    assert.equal(seen, "line1\nline2\nline3\n");
  });
});

Deno.test("readOutput ends early on abort and releases its fd", async () => {
  await withDir(async (dir) => {
    dir.create("5");
    const source = {
      path: dir.path("5"),
      running: () => true,
      changed: () => dir.changed("5"),
      limit: 1 << 30,
    };
    const controller = new AbortController();
    const reader = collect(
      readOutput(source, { follow: true, signal: controller.signal }),
    );
    // Let the reader reach its wait, then abort it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    assert.equal((await reader).length, 0);
    // The test sanitizer checks that the reader's file was closed.
  });
});

Deno.test("OutputDir.create never truncates an output file that is there", async () => {
  await withDir(async (dir) => {
    dir.create("7");
    await Deno.writeTextFile(dir.path("7"), "another job's output");
    assert.throws(() => dir.create("7"), Deno.errors.AlreadyExists);
    assert.equal(
      await Deno.readTextFile(dir.path("7")),
      "another job's output",
    );
  });
});
