/**
 * The cgroup layouts Telejob meets on real cgroup v2 hosts, each with a job
 * server started with default flags (`layout_server.ts`) and each proving
 * the kernel enforces the limits there: a busy loop's CPU share from
 * `/proc`, an OOM kill from `memory.events`, a fork bomb held by `pids.max`,
 * direct writes held by `io.max` (on the VM's scratch disk).
 *
 * 1. A shared login session scope (`/user.slice/session-7.scope` with a
 *    shell in it), controllers enabled only at the root, as systemd leaves
 *    it: job cgroups go to `/telejob` at the root.
 * 2. A systemd service with `Delegate=yes`, the server alone in it: the
 *    server moves into a leaf and the jobs go below its cgroup.
 * 3. A privileged container: a private cgroup namespace with a writable
 *    `/sys/fs/cgroup` (`unshare -C -m` and a cgroup2 mount), the server alone
 *    at its root: as 2, inside the namespace.
 *
 * The nested-cgroup escape (layout 4) is `server/jobs/engine_subtree_test.ts`
 * and `tests/jobs_restart_test.ts`, which the suite also runs here.
 *
 * Only runs inside the VM of `deno task test:cgroup2` (`TELEJOB_VM=1`): it
 * builds cgroups at the root of a pure v2 hierarchy.
 * @module
 */
import assert from "node:assert/strict";
import { removeTree } from "../../cgroup/fs.ts";
import { waitFor } from "../../cgroup/testing.ts";

const inVm = Deno.env.get("TELEJOB_VM") === "1";
const root = "/sys/fs/cgroup";
const server = new URL("./layout_server.ts", import.meta.url).pathname;

interface Report {
  version: number;
  parent: string;
  placement: string;
  server: string;
  job: string;
  cpuShare: number;
  oomKilled: boolean;
  bombProcesses: number;
  leftCgroups: string[];
  ioWriteBytes?: number;
  ioRate?: number;
  error?: string;
}

/**
 * Runs the server in cgroup `dir` (`sh` joins it, then execs the server,
 * through `unshare -C -m` and a fresh cgroup2 mount with `namespace`: the
 * kernel refuses the same cgroup2 superblock twice on one mount point, so
 * the host's mount goes first, as a container never had it).
 */
async function runServer(
  dir: string,
  options: { namespace?: boolean; io?: boolean } = {},
): Promise<Report> {
  const dataDir = await Deno.makeTempDir({ prefix: "telejob-layout-" });
  const run = '"$2" run -A --no-check "$3" "$4"';
  const script = options.namespace
    ? `echo $$ > "$1/cgroup.procs" && exec unshare -C -m sh -c 'umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$0" run -A --no-check "$1" "$2"' "$2" "$3" "$4"`
    : `echo $$ > "$1/cgroup.procs" && exec ${run}`;
  try {
    const { code, stdout } = await new Deno.Command("/bin/sh", {
      args: ["-c", script, "sh", dir, Deno.execPath(), server, dataDir],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
      env: options.io ? { TELEJOB_LAYOUT_IO_DEVICE: ioDevice() } : {},
    }).output();
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, text);
    const report = JSON.parse(text.trim().split("\n").at(-1)!) as Report;
    console.log(JSON.stringify(report));
    assert.equal(report.error, undefined, report.error ?? "");
    return report;
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** The VM's scratch disk, which the io check overwrites. */
function ioDevice(): string {
  const device = Deno.env.get("TELEJOB_TEST_BLOCK_DEVICE");
  assert.ok(device, "TELEJOB_TEST_BLOCK_DEVICE is not set");
  return device;
}

/** The limits held, whatever the layout. */
function assertEnforced(report: Report): void {
  assert.equal(report.version, 2);
  assert.ok(
    report.cpuShare <= 0.3,
    `a busy loop under cpu 0.2 used ${report.cpuShare} of a CPU`,
  );
  assert.ok(report.cpuShare > 0.05, `the busy loop barely ran`);
  assert.equal(report.oomKilled, true, "memory.events counted no OOM kill");
  assert.ok(
    report.bombProcesses <= 16 && report.bombProcesses >= 8,
    `${report.bombProcesses} fork bomb processes under pids 16`,
  );
  assert.deepEqual(report.leftCgroups, []);
  if (report.ioRate !== undefined) {
    assert.ok(report.ioWriteBytes! >= 2 * 1024 * 1024, "the writer wrote");
    assert.ok(
      report.ioRate! <= 1.5 * 1024 * 1024,
      `direct writes under wbps=1M ran at ${report.ioRate} bytes/s`,
    );
  }
}

/** Makes cgroups (paths below the root); disposing removes them bottom-up. */
async function cgroups(
  ...paths: string[]
): Promise<AsyncDisposable> {
  for (const path of paths) await Deno.mkdir(`${root}${path}`);
  return {
    async [Symbol.asyncDispose]() {
      for (const path of paths.toReversed()) await removeTree(`${root}${path}`);
    },
  };
}

Deno.test({
  name:
    "v2 layout: from a shared session scope, default flags put jobs in /telejob and enforce limits",
  ignore: !inVm,
  async fn() {
    const scope = "/user.slice/session-7.scope";
    await using _made = await cgroups("/user.slice", scope, "/telejob");
    // The login shell that shares the scope with the server.
    const shell = new Deno.Command("/bin/sh", {
      args: ["-c", `echo $$ > ${root}${scope}/cgroup.procs && exec sleep 600`],
      stdin: "null",
    }).spawn();
    try {
      await waitFor(
        "the shell to join the scope",
        () =>
          Deno.readTextFileSync(`${root}${scope}/cgroup.procs`).includes(
            String(shell.pid),
          ),
      );
      // Every limit, io too, for the layout the issue was found in.
      const report = await runServer(`${root}${scope}`, { io: true });
      assert.ok(report.ioRate !== undefined, "the io check ran");
      assert.match(report.parent, new RegExp(`^cgroup v2: ${root}/telejob `));
      assert.match(
        report.placement,
        new RegExp(
          `own cgroup ${scope} holds other processes \\(pids ${shell.pid}\\)`,
        ),
      );
      assert.equal(report.server, `0::${scope}`, "the server stayed put");
      assert.match(report.job, /^0::\/telejob\/telejob-[0-9a-f]+-1$/);
      assertEnforced(report);
      // The session is as systemd left it.
      assert.equal(
        Deno.readTextFileSync(`${root}${scope}/cgroup.subtree_control`).trim(),
        "",
      );
    } finally {
      shell.kill("SIGKILL");
      await shell.status;
    }
  },
});

Deno.test({
  name:
    "v2 layout: a delegated service cgroup keeps the jobs; the server moves into a leaf",
  ignore: !inVm,
  async fn() {
    const service = "/system.slice/telejob.service";
    await using _made = await cgroups("/system.slice", service);
    // systemd's Delegate=yes: the slice passes the controllers on.
    Deno.writeTextFileSync(
      `${root}/system.slice/cgroup.subtree_control`,
      "+cpu +memory +io +pids",
    );
    const report = await runServer(`${root}${service}`);
    assert.match(report.placement, /is delegated to it/);
    assert.equal(report.server, `0::${service}/telejob-server`);
    assert.match(
      report.job,
      new RegExp(`^0::${service}/telejob-[0-9a-f]+-1$`),
    );
    assertEnforced(report);
  },
});

Deno.test({
  name:
    "v2 layout: in a private cgroup namespace the server alone at its root keeps the jobs",
  ignore: !inVm,
  async fn() {
    const container = `/container-${Deno.pid}`;
    await using _made = await cgroups(container);
    const report = await runServer(`${root}${container}`, { namespace: true });
    assert.match(report.placement, /own cgroup \/ is delegated to it/);
    // Paths as the namespace shows them; the host sees them below container.
    assert.equal(report.server, "0::/telejob-server");
    assert.match(report.job, /^0::\/telejob-[0-9a-f]+-1$/);
    assertEnforced(report);
  },
});
