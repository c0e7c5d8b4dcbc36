import assert from "node:assert/strict";
import {
  parseMountinfo,
  parseProcCgroup,
  pathBelowMount,
  readSelf,
  selfLayout,
} from "./mounts.ts";

// Copied from this (hybrid) host's /proc/self/mountinfo.
const HYBRID = `
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

Deno.test("parseMountinfo reads a hybrid host's cgroup mounts", () => {
  const mounts = parseMountinfo(HYBRID);
  assert.equal(mounts.length, 10);
  assert.deepEqual(mounts[0], {
    version: 1,
    mountPoint: "/sys/fs/cgroup/cpu",
    root: "/",
    controllers: ["cpu"],
    name: undefined,
  });
  const systemd = mounts.find((m) => m.name === "systemd");
  assert.deepEqual(systemd?.controllers, []);
  assert.deepEqual(mounts.at(-1), {
    version: 2,
    mountPoint: "/sys/fs/cgroup/unified",
    root: "/",
    controllers: [],
  });
});

Deno.test("parseMountinfo reads co-mounts, optional fields and escapes", () => {
  const mounts = parseMountinfo(
    "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct\n" +
      "31 25 0:27 /docker/abc /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,memory\n" +
      "29 25 0:25 / /sys/fs/cgroup rw shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n",
  );
  assert.deepEqual(mounts.map((m) => [m.version, m.mountPoint, m.root]), [
    [1, "/sys/fs/cgroup/cpu,cpuacct", "/"],
    [1, "/sys/fs/cgroup/my dir", "/docker/abc"],
    [2, "/sys/fs/cgroup", "/"],
  ]);
  assert.deepEqual(mounts[0].controllers, ["cpu", "cpuacct"]);
});

Deno.test("parseProcCgroup reads v1 and v2 lines", () => {
  const lines = parseProcCgroup(
    "9:name=systemd:/\n4:memory:/process_api/5887\n2:cpu,cpuacct:/a:b\n0::/\n",
  );
  assert.deepEqual(lines, [
    { id: 9, controllers: [], name: "systemd", path: "/" },
    {
      id: 4,
      controllers: ["memory"],
      name: undefined,
      path: "/process_api/5887",
    },
    // A colon inside the path belongs to the path.
    { id: 2, controllers: ["cpu", "cpuacct"], name: undefined, path: "/a:b" },
    { id: 0, controllers: [], name: undefined, path: "/" },
  ]);
});

Deno.test("pathBelowMount strips a bind-mounted root", () => {
  const mount = {
    version: 1 as const,
    mountPoint: "/sys/fs/cgroup/memory",
    root: "/docker/abc",
    controllers: ["memory"],
  };
  assert.equal(pathBelowMount(mount, "/docker/abc/x"), "/x");
  assert.equal(pathBelowMount(mount, "/docker/abc"), "/");
  assert.equal(pathBelowMount(mount, "/docker/abcd"), undefined);
  assert.equal(pathBelowMount(mount, "/other"), undefined);
  assert.equal(pathBelowMount({ ...mount, root: "/" }, "/other"), "/other");
});

Deno.test("readSelf finds this process in every mounted hierarchy", async () => {
  const { mounts, memberships } = await readSelf();
  assert.ok(mounts.length > 0, "no cgroup mounts");
  for (const mount of mounts) {
    const member = mount.version === 2
      ? memberships.find((m) => m.id === 0)
      : memberships.find((m) =>
        m.controllers.some((c) => mount.controllers.includes(c)) ||
        (m.name !== undefined && m.name === mount.name)
      );
    assert.ok(member, `not a member of ${mount.mountPoint}`);
  }
});

Deno.test("selfLayout keeps what it was given and reads only what is missing", async () => {
  const self = await readSelf();
  const given = { mounts: [], memberships: [] };
  const kept = await selfLayout(given);
  assert.equal(kept.mounts, given.mounts);
  assert.equal(kept.memberships, given.memberships);
  assert.deepEqual(await selfLayout({}), self);
  const half = await selfLayout({ mounts: given.mounts });
  assert.equal(half.mounts, given.mounts);
  assert.deepEqual(half.memberships, self.memberships);
});
