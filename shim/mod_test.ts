import assert from "node:assert/strict";
import { locateShim, SHIM_BUILD_PATH } from "./mod.ts";

Deno.test("from source, the helper is built into out/ and found there", async () => {
  const path = await locateShim({ dataDir: "/nonexistent" });
  assert.equal(path, SHIM_BUILD_PATH);
  assert.ok((await Deno.stat(path)).mode! & 0o111);
});

Deno.test("--shim must name an executable file", async () => {
  await assert.rejects(
    () => locateShim({ path: "/etc/passwd", dataDir: "/nonexistent" }),
    /--shim \/etc\/passwd is not an executable file/,
  );
  assert.equal(
    await locateShim({ path: SHIM_BUILD_PATH, dataDir: "/nonexistent" }),
    SHIM_BUILD_PATH,
  );
});
