/**
 * The default placement on cgroup v2, on fake hierarchies (directories and
 * files standing in for cgroupfs) laid out like the hosts users run on; the
 * real kernel's side is in the VM suite's `tests/vm/v2_layouts_test.ts`.
 */
import assert from "node:assert/strict";
import type { CgroupMount } from "./mounts.ts";
import { fakeTree } from "./testing.ts";
import { createV2Driver, type V2Driver, type V2DriverOptions } from "./v2.ts";

const ALL = "cpuset cpu io memory hugetlb pids rdma misc\n";

function read(path: string): string {
  return Deno.readTextFileSync(path).trim();
}

/**
 * A fake hierarchy for the placement tests: the root offers every
 * controller; `cgroups` adds cgroups (path → [procs, controllers]). The
 * kernel makes a new cgroup's files; the fake pre-creates `/telejob`'s.
 * `place(own)` gives the driver a server with pid 123 in cgroup `own` gets.
 */
async function placementTree(
  cgroups: Record<string, [string, string]>,
): Promise<
  AsyncDisposable & {
    root: string;
    place(own: string, options?: V2DriverOptions): Promise<V2Driver>;
  }
> {
  const files: Record<string, string> = {
    "cgroup.controllers": ALL,
    "cgroup.subtree_control": "\n",
    "cgroup.procs": "1\n",
    "telejob/cgroup.controllers": "cpu io memory pids\n",
    "telejob/cgroup.subtree_control": "\n",
    "telejob/cgroup.type": "domain\n",
  };
  for (const [path, [procs, controllers]] of Object.entries(cgroups)) {
    files[`${path}/cgroup.procs`] = procs;
    files[`${path}/cgroup.controllers`] = controllers;
    files[`${path}/cgroup.subtree_control`] = "\n";
    files[`${path}/cgroup.type`] = "domain\n";
  }
  const root = await fakeTree(files);
  const mount: CgroupMount = {
    version: 2,
    mountPoint: root,
    root: "/",
    controllers: [],
  };
  return {
    root,
    place: (own, options = {}) =>
      createV2Driver({
        mounts: [mount],
        memberships: [{ id: 0, controllers: [], path: own }],
        pid: 123,
        ...options,
      }),
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

Deno.test("v2 placement: a shared session scope sends jobs to /telejob at the root", async () => {
  // A login shell's scope: the server, the shell and sudo in one cgroup,
  // controllers enabled only at the root (as systemd leaves a session).
  const scope = "/user.slice/session-7.scope";
  await using tree = await placementTree({
    "user.slice": ["", "cpu io memory pids\n"],
    [scope.slice(1)]: ["77\n123\n78\n", "\n"],
  });
  const driver = await tree.place(scope);
  assert.equal(driver.parentDir, `${tree.root}/telejob`);
  assert.equal(driver.serverLeaf, undefined, "nobody moved");
  assert.match(
    driver.placement,
    /own cgroup \/user\.slice\/session-7\.scope holds other processes \(pids 77 78\).*below \/telejob at the hierarchy's root/,
  );
  // Controllers enabled from the root down; the shared slice untouched.
  for (const dir of [tree.root, `${tree.root}/telejob`]) {
    assert.equal(
      read(`${dir}/cgroup.subtree_control`),
      "+cpu +memory +io +pids",
    );
  }
  assert.equal(read(`${tree.root}/user.slice/cgroup.subtree_control`), "");
});

Deno.test("v2 placement: alone but without delegated controllers is not delegated", async () => {
  const service = "/system.slice/telejob.service";
  await using tree = await placementTree({
    "system.slice": ["", "cpu io memory pids\n"],
    [service.slice(1)]: ["123\n", "memory pids\n"],
  });
  const driver = await tree.place(service);
  assert.equal(driver.parentDir, `${tree.root}/telejob`);
  assert.match(
    driver.placement,
    /the cpu, io controllers are not delegated to the server's own cgroup/,
  );
});

Deno.test("v2 placement: a delegated service cgroup keeps the jobs, the server moves to a leaf", async () => {
  const service = "system.slice/telejob.service";
  // Also when the server starts again inside the leaf it moved into before.
  for (const own of [service, `${service}/telejob-server`]) {
    await using tree = await placementTree({
      "system.slice": ["", "cpu io memory pids\n"],
      [service]: [own === service ? "123\n" : "", "cpu io memory pids\n"],
      [`${service}/telejob-server`]: [own === service ? "" : "123\n", "\n"],
      // A job cgroup of an earlier run does not make the cgroup shared.
      [`${service}/telejob-ab12cd34-1`]: ["", "\n"],
    });
    const driver = await tree.place(`/${own}`);
    assert.equal(driver.parentDir, `${tree.root}/${service}`, own);
    assert.match(driver.placement, /is delegated to it/);
    assert.equal(
      read(`${tree.root}/${service}/cgroup.subtree_control`),
      "+cpu +memory +io +pids",
    );
    assert.equal(read(`${tree.root}/system.slice/cgroup.subtree_control`), "");
  }
});

Deno.test("v2 placement: the root cgroup is shared with the whole system", async () => {
  await using tree = await placementTree({});
  const driver = await tree.place("/", { pid: 1 });
  assert.equal(driver.parentDir, `${tree.root}/telejob`);
  assert.match(driver.placement, /runs in the root cgroup/);
});

Deno.test("v2 start-up: server limits needing a controller the parent lacks are refused", async () => {
  // The operator chose a parent below a slice that passes on no io.
  await using tree = await placementTree({ "jobs": ["", "cpu memory pids\n"] });
  await assert.rejects(
    () =>
      tree.place("/", {
        parent: "/jobs",
        limits: { io: [{ major: 8, minor: 0, wbps: 1 }] },
      }),
    new RegExp(
      `The server's --io-limit needs the io controller, but ${tree.root}/jobs/cgroup\\.subtree_control does not enable it .*echo \\+io > cgroup\\.subtree_control.*Delegate=io.* or drop --io-limit`,
    ),
  );
  // What the kernel would show after the first call's write.
  await Deno.writeTextFile(
    `${tree.root}/jobs/cgroup.subtree_control`,
    "cpu memory pids\n",
  );
  const driver = await tree.place("/", { parent: "/jobs", limits: { cpu: 1 } });
  assert.deepEqual([...driver.controllers].sort(), ["cpu", "memory", "pids"]);
});

Deno.test("v2 placement: an absolute parent leaves the operator's cgroups above it alone", async () => {
  // Even a server in the root cgroup does not enable controllers in a cgroup
  // it neither made nor was given: what that passes on is the operator's call.
  await using tree = await placementTree({
    "ops": ["", "cpu io memory pids\n"],
    "ops/jobs": ["", "memory\n"],
  });
  const driver = await tree.place("/", { parent: "/ops/jobs" });
  assert.equal(read(`${tree.root}/ops/cgroup.subtree_control`), "");
  assert.equal(read(`${tree.root}/ops/jobs/cgroup.subtree_control`), "+memory");
  assert.equal(driver.parentDir, `${tree.root}/ops/jobs`);
});
