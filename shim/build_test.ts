import assert from "node:assert/strict";
import {
  buildShim,
  SHIM_BUILD_PATH,
  SHIM_SOURCE,
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
