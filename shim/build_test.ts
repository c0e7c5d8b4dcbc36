import assert from "node:assert/strict";
import {
  buildShim,
  compilerFor,
  SHIM_BUILD_PATH,
  SHIM_SOURCE,
  shimBuildPath,
  shimIsStale,
} from "./build.ts";

Deno.test("a helper older than its source is rebuilt, else left alone", async () => {
  await buildShim();
  assert.equal(shimIsStale(), false);
  const built = (await Deno.stat(SHIM_BUILD_PATH)).mtime!;
  // Concurrent callers share one build.
  const [a, b] = await Promise.all([buildShim(), buildShim()]);
  assert.equal(a, b);
  assert.deepEqual((await Deno.stat(SHIM_BUILD_PATH)).mtime, built);
  const old = new Date(built.getTime() - 60_000);
  await Deno.utime(SHIM_BUILD_PATH, old, old);
  await Deno.utime(SHIM_SOURCE, new Date(), new Date());
  assert.equal(shimIsStale(), true);
  await buildShim();
  assert.equal(shimIsStale(), false);
});

Deno.test("each release architecture gets its own path and compiler", () => {
  assert.equal(shimBuildPath(), SHIM_BUILD_PATH);
  assert.equal(shimBuildPath("aarch64"), `${SHIM_BUILD_PATH}-aarch64`);
  const other = Deno.build.arch === "x86_64" ? "aarch64" : "x86_64";
  assert.equal(compilerFor(other), `${other}-linux-gnu-gcc`);
  assert.equal(compilerFor(Deno.build.arch), Deno.env.get("CC") || "gcc");
});
