/**
 * A job server with default flags, as an operator would start one, for the
 * layout tests (`v2_layouts_test.ts`): the test puts this process in the
 * cgroup layout under test (a shared session scope, a delegated service
 * cgroup, a private cgroup namespace) and reads one JSON line from it.
 *
 * It opens the engine on the cgroups `detectDriver()` picks without
 * `--cgroup-parent`, then proves each limit is enforced by the kernel:
 * a busy loop under `cpu 0.2` (its share of a CPU measured from
 * `/proc/PID/stat`), a memory hog under 32 MiB (OOM-killed, as
 * `memory.events` counts), a fork bomb under `pids 16` (forks fail, at
 * most 16 processes), direct writes under io.max `wbps=1M`.
 *
 * Usage: deno run -A layout_server.ts DATA_DIR (the io check runs when
 * `TELEJOB_LAYOUT_IO_DEVICE` names a scratch block device)
 * @module
 */
import { detectDriver } from "../../cgroup/mod.ts";
import { splitRdev } from "../../cgroup/limits.ts";
import { FORK_BOMB } from "../../cgroup/testing.ts";
import { JobEngine } from "../../server/jobs/mod.ts";

const [dataDir] = Deno.args;
const decoder = new TextDecoder();

async function output(engine: JobEngine, id: string): Promise<string> {
  let text = "";
  for await (const chunk of engine.logs("op", id)) {
    text += decoder.decode(chunk);
  }
  return text;
}

async function until(what: string, check: () => Promise<boolean>) {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** CPU time of `pid` in seconds (utime + stime; USER_HZ is 100 on Linux). */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const cgroups = await detectDriver();
// The io writer needs root (a raw block device); the policy grants it.
const engine = await JobEngine.open({
  dataDir,
  cgroups,
  runAs: [{ owner: "op", logins: ["root"] }],
});
const report: Record<string, unknown> = {
  version: cgroups.version,
  parent: cgroups.parent,
  placement: cgroups.placement,
  server: Deno.readTextFileSync("/proc/self/cgroup").trim(),
};
try {
  // CPU: the loop runs in the shell itself, whose pid it prints first.
  const busy = await engine.start("op", {
    command: "sh",
    args: ["-c", "echo $$; while :; do :; done"],
    limits: { cpu: 0.2 },
  });
  await until(
    "the busy loop",
    async () => (await output(engine, busy.id)) !== "",
  );
  const pid = Number((await output(engine, busy.id)).trim());
  report.job = Deno.readTextFileSync(`/proc/${pid}/cgroup`).trim();
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  report.cpuShare = (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
  await engine.stop("op", busy.id, { graceMs: 0 });

  // Memory: tail holds all of its input (no newline in it).
  const hog = await engine.start("op", {
    command: "sh",
    args: ["-c", "head -c 100M /dev/zero | tail"],
    limits: { memoryBytes: 32 * 1024 * 1024 },
  });
  await until(
    "the memory hog to end",
    async () => (await engine.status("op", hog.id)).state === "finished",
  );
  report.oomKilled = (await engine.status("op", hog.id)).oomKilled;

  // Disk: 2 MiB of direct writes under wbps=1M take about 2 s, not the
  // fraction of a second the scratch disk needs unthrottled.
  const device = Deno.env.get("TELEJOB_LAYOUT_IO_DEVICE");
  if (device) {
    const { major, minor } = splitRdev(Deno.statSync(device).rdev!);
    const writer = await engine.start("op", {
      user: "root",
      command: "dd",
      args: [
        `of=${device}`,
        "if=/dev/zero",
        "bs=64K",
        "count=32",
        "oflag=direct",
      ],
      limits: { io: [{ major, minor, wbps: 1024 * 1024 }] },
    });
    await until(
      "the writer to end",
      async () => (await engine.status("op", writer.id)).state === "finished",
    );
    const info = await engine.status("op", writer.id);
    const seconds = (info.endedAt!.getTime() - info.startedAt.getTime()) / 1000;
    report.ioWriteBytes = info.usage.ioWriteBytes;
    report.ioRate = info.usage.ioWriteBytes / seconds;
  }

  const max = 16;
  const bomb = await engine.start("op", {
    command: "perl",
    args: ["-e", FORK_BOMB],
    limits: { pids: max },
  });
  await until(
    "forks to fail at the limit",
    async () => (await output(engine, bomb.id)).includes("fork failed"),
  );
  const [name] = (await cgroups.list()).filter((n) =>
    n.endsWith(`-${bomb.id}`)
  );
  report.bombProcesses = (await cgroups.open(name).pids()).length;
  await engine.stop("op", bomb.id, { graceMs: 0 });
  report.leftCgroups = await cgroups.list();
} catch (error) {
  report.error = error instanceof Error ? error.stack : String(error);
} finally {
  await engine.shutdown({ graceMs: 0 });
}
console.log(JSON.stringify(report));
