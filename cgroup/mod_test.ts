import assert from "node:assert/strict";
import { detectDriver, V1Driver, V2Driver } from "./mod.ts";
import { parseProcCgroup } from "./mounts.ts";
import { removeDir } from "./fs.ts";
import { testParentPath } from "./testing.ts";

const ignore = Deno.uid() !== 0 || Deno.build.os !== "linux";

/** What this host is, judged from the mounts independently of the driver. */
function expectedVersion(): 1 | 2 {
  const mountinfo = Deno.readTextFileSync("/proc/self/mountinfo");
  const v1 = mountinfo.split("\n").some((line) =>
    / - cgroup cgroup .*\b(cpu|cpuacct|memory|blkio|pids|freezer)\b/.test(line)
  );
  return v1 ? 1 : 2;
}

Deno.test({
  name: "detectDriver picks the driver of this host, below our own cgroup",
  ignore,
  async fn() {
    const driver = await detectDriver();
    assert.equal(driver.version, expectedVersion());
    const own = parseProcCgroup(Deno.readTextFileSync("/proc/self/cgroup"));
    if (driver instanceof V1Driver) {
      assert.match(driver.parent, /^cgroup v1: /);
      for (const h of driver.hierarchies) {
        const line = own.find((m) =>
          m.controllers.some((c) => (h.controllers as string[]).includes(c))
        )!;
        assert.equal(
          h.parentDir,
          `${h.mountPoint}${line.path === "/" ? "" : line.path}`,
        );
      }
      // On this host the memory hierarchy has its own cgroup for us.
      assert.ok(
        driver.hierarchies.some((h) => h.controllers.includes("memory")),
      );
    } else {
      assert.ok(driver instanceof V2Driver);
      assert.match(driver.parent, /^cgroup v2: /);
    }
  },
});

Deno.test({
  name: "detectDriver takes --cgroup-parent, relative or absolute",
  ignore,
  async fn() {
    const name = `telejobtest-parent-${Deno.pid}-${Date.now().toString(36)}`;
    // Relative (below our own cgroup) on v1; absolute on v2, where the test
    // runner's cgroup may be shared and cannot have controllers enabled.
    const driver = await detectDriver({ parent: testParentPath(name) });
    const dirs = driver.parentDirs;
    try {
      for (const dir of dirs) {
        assert.ok(dir.endsWith(`/${name}`), dir);
        assert.ok((await Deno.stat(dir)).isDirectory);
      }
      const cgroup = await driver.create("p", {});
      assert.ok(
        cgroup.procsFiles.every((f) => f.includes(`/${name}/telejob-p/`)),
      );
      // list() finds job cgroups by their directories: a created one is
      // listed, a removed one is not (and nothing else below the parent is).
      assert.deepEqual(await driver.list(), ["telejob-p"]);
      await cgroup.remove();
      assert.deepEqual(await driver.list(), []);
    } finally {
      for (const dir of dirs) await removeDir(dir);
    }
    await assert.rejects(
      () => detectDriver({ parent: "../escape" }),
      /Invalid --cgroup-parent "\.\.\/escape": "\." and "\.\." are not allowed/,
    );
  },
});
