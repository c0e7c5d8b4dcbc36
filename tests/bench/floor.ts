/**
 * The machine's floor: what a plain `Deno.Command` spawn and plain file
 * reads and writes cost here, so the engine's and the API's numbers can be
 * read against it.
 * @module
 */
import { READ_CHUNK_BYTES } from "../../server/jobs/output.ts";
import type { SectionContext } from "./context.ts";
import { fdHardLimit, perChild, ramp } from "./ramp.ts";
import { mbPerSecond, runConcurrent, summarize } from "./stats.ts";

const NULL_IO = { stdin: "null", stdout: "null", stderr: "null" } as const;

/** Latencies of plain spawns of `command`, in milliseconds. */
export interface SpawnLatencies {
  /** Until `spawn()` returned (the child has exec'd). */
  spawn: number[];
  /** Until the child's exit was observed. */
  exit: number[];
}

/**
 * Spawns `command` `count` times, one after the other. `options` go to
 * `Deno.Command` as they are (e.g. `detached`, which makes Deno fork
 * instead of using posix_spawn).
 */
export async function spawnLatencies(
  command: string,
  args: string[],
  count: number,
  options: Deno.CommandOptions = {},
): Promise<SpawnLatencies> {
  const spawn: number[] = [];
  const exit: number[] = [];
  const cmd = new Deno.Command(command, { args, ...NULL_IO, ...options });
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const child = cmd.spawn();
    const t1 = performance.now();
    await child.status;
    const t2 = performance.now();
    spawn.push(t1 - t0);
    exit.push(t2 - t0);
  }
  return { spawn, exit };
}

/** Spawn-and-exit cycles of `/bin/true` per second with `inFlight` at once. */
export async function spawnRate(
  count: number,
  inFlight: number,
): Promise<number> {
  const cmd = new Deno.Command("/bin/true", NULL_IO);
  const run = await runConcurrent(count, inFlight, async () => {
    await cmd.spawn().status;
  });
  if (run.errors.length > 0) throw run.errors[0];
  return run.results.length / (run.elapsedMs / 1000);
}

/** Writes `bytes` zero bytes to `path` with `head`, as a job would. */
export async function writeZeros(path: string, bytes: number): Promise<void> {
  const output = await new Deno.Command("/bin/sh", {
    args: ["-c", 'exec head -c "$0" /dev/zero > "$1"', String(bytes), path],
    ...NULL_IO,
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `Writing ${path} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
}

/**
 * Flushes dirty pages to disk, so that the next writer starts below the
 * kernel's dirty-page thresholds and is not throttled to the disk's speed
 * by an earlier phase's data.
 */
export async function syncDisks(): Promise<void> {
  await new Deno.Command("sync", { stdin: "null" }).output();
}

/** Reads `path` to its end in reads of the engine's chunk size. */
export async function readFileBytes(path: string): Promise<number> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(READ_CHUNK_BYTES);
  let total = 0;
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) return total;
    total += n;
  }
}

/** Runs the floor section. */
export async function runFloor(ctx: SectionContext): Promise<void> {
  const { plan, rec } = ctx;

  console.error("floor: spawn latency of /bin/true");
  await spawnLatencies("/bin/true", [], 50); // warm-up
  const t = await spawnLatencies("/bin/true", [], plan.latencyCount);
  const spawn = summarize(t.spawn);
  const exit = summarize(t.exit);
  const detail = `${plan.latencyCount} serial Deno.Command spawns`;
  rec.add({
    key: "floor.spawn.p50",
    label: "spawn /bin/true p50",
    value: spawn.p50,
    unit: "ms",
    detail,
  });
  rec.add({
    key: "floor.spawn.p99",
    label: "spawn /bin/true p99",
    value: spawn.p99,
    unit: "ms",
    detail,
  });
  rec.add({
    key: "floor.spawn_exit.p50",
    label: "spawn to exit of /bin/true p50",
    value: exit.p50,
    unit: "ms",
    detail,
  });

  const detached = await spawnLatencies("/bin/true", [], plan.latencyCount, {
    detached: true,
  });
  rec.add({
    key: "floor.spawn_detached.p50",
    label: "spawn /bin/true with detached: true p50",
    value: summarize(detached.spawn).p50,
    unit: "ms",
    detail: `${plan.latencyCount} serial spawns; detached (setsid) makes ` +
      `Deno fork() instead of posix_spawn, so its cost grows with the ` +
      `parent's memory`,
  });

  console.error("floor: /bin/sh exec shim");
  const shim = await spawnLatencies(
    "/bin/sh",
    ["-c", 'exec "$0" "$@"', "/bin/true"],
    plan.latencyCount,
  );
  rec.add({
    key: "floor.shim_exit.p50",
    label: "spawn to exit via /bin/sh exec shim p50",
    value: summarize(shim.exit).p50,
    unit: "ms",
    detail: `${plan.latencyCount} serial spawns of sh -c 'exec "$0"' /bin/true`,
  });

  console.error(`floor: spawns per second, ${plan.inFlight} in flight`);
  rec.add({
    key: "floor.rate",
    label: `spawn+exit of /bin/true, ${plan.inFlight} in flight`,
    value: await spawnRate(plan.rateCount, plan.inFlight),
    unit: "/s",
    detail: `${plan.rateCount} spawns, each awaited to its exit`,
  });

  console.error(
    `floor: ramp of plain sleep children to ${plan.concurrentTarget}`,
  );
  const children: Deno.ChildProcess[] = [];
  ctx.cleanup.defer("kill floor sleep children", async () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
    await Promise.all(children.map((c) => c.status));
    children.length = 0;
  });
  const sleep = new Deno.Command("sleep", { args: ["3600"], ...NULL_IO });
  const sleepSpawn: number[] = [];
  const result = await ramp(
    () => {
      const t0 = performance.now();
      children.push(sleep.spawn());
      sleepSpawn.push(performance.now() - t0);
      return Promise.resolve();
    },
    {
      target: plan.concurrentTarget,
      step: plan.rampStep,
      inFlight: 1,
      budgetMs: plan.rampBudgetMs,
      fdLimit: await fdHardLimit(),
      fdReserve: 200,
    },
  );
  const each = perChild(result);
  const rampDetail = `${result.reached} sleep children of one Deno process`;
  rec.add({
    key: "floor.sleep.reached",
    label: "concurrent sleep children",
    value: result.reached,
    unit: "",
    detail: rampDetail,
  });
  rec.add({
    key: "floor.sleep.rss_per_child",
    label: "RSS per sleep child",
    value: each.rss / 1024,
    unit: "KiB",
    detail: rampDetail,
  });
  rec.add({
    key: "floor.sleep.heap_per_child",
    label: "V8 heap per sleep child",
    value: each.heapUsed / 1024,
    unit: "KiB",
    detail: rampDetail,
  });
  rec.add({
    key: "floor.sleep.fds_per_child",
    label: "fds per sleep child",
    value: each.fds,
    unit: "",
    detail: rampDetail,
  });
  rec.add({
    key: "floor.sleep.spawn.p50",
    label: "spawn sleep p50 during the ramp",
    value: summarize(sleepSpawn).p50,
    unit: "ms",
    detail: rampDetail,
  });
  rec.note(`plain sleep ramp: ${result.reason}`);
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(children.map((c) => c.status));
  children.length = 0;

  console.error("floor: file write and read throughput");
  const file = `${ctx.workDir}/floor.out`;
  ctx.cleanup.defer(
    "remove floor file",
    () => Deno.remove(file).catch(() => {}),
  );
  await syncDisks();
  let t0 = performance.now();
  await writeZeros(file, plan.oneFollowerBytes);
  rec.add({
    key: "floor.write",
    label: "head -c N /dev/zero > file",
    value: mbPerSecond(plan.oneFollowerBytes, performance.now() - t0),
    unit: "MB/s",
    detail: `${plan.oneFollowerBytes / 2 ** 20} MiB`,
  });
  t0 = performance.now();
  const read = await readFileBytes(file);
  rec.add({
    key: "floor.read1",
    label: `read the file, ${READ_CHUNK_BYTES / 1024} KiB reads`,
    value: mbPerSecond(read, performance.now() - t0),
    unit: "MB/s",
    detail: `${read / 2 ** 20} MiB from the page cache`,
  });
  await Deno.remove(file);

  await writeZeros(file, plan.manyFollowerBytes);
  t0 = performance.now();
  const reads = await Promise.all(
    Array.from({ length: plan.manyFollowers }, () => readFileBytes(file)),
  );
  const total = reads.reduce((a, b) => a + b, 0);
  rec.add({
    key: "floor.read_many",
    label: `${plan.manyFollowers} readers of one file, aggregate`,
    value: mbPerSecond(total, performance.now() - t0),
    unit: "MB/s",
    detail: `${plan.manyFollowers} x ${plan.manyFollowerBytes / 2 ** 20} MiB, ${
      READ_CHUNK_BYTES / 1024
    } KiB reads`,
  });
  await Deno.remove(file);
}
