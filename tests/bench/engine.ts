/**
 * The engine section: the in-process `JobEngine` with a temporary data dir
 * and the host's real cgroup driver, measured against the floor section's
 * plain spawns and file reads.
 * @module
 */
import {
  type CgroupDriver,
  detectDriver,
  type JobCgroup,
  shimCommand,
} from "../../cgroup/mod.ts";
import { JobEngine, type JobInfo } from "../../server/jobs/mod.ts";
import { buildShim } from "../../shim/build.ts";
import { DEFAULT_UID_RANGE } from "../../server/jobs/identity.ts";
import { resolveCommand } from "../../server/jobs/command.ts";
import { JobStore } from "../../server/jobs/store.ts";
import type { Limits } from "../../cgroup/types.ts";
import type { SectionContext } from "./context.ts";
import {
  readFileBytes,
  spawnLatencies,
  spawnRate,
  syncDisks,
  writeZeros,
} from "./floor.ts";
import {
  delay,
  freeDiskBytes,
  MemorySampler,
  readMemory,
  resetPeakRss,
} from "./proc.ts";
import { cpuTimeOf, formatHotspots, profilePhase } from "./profile.ts";
import { fdHardLimit, perChild, ramp } from "./ramp.ts";
import { formatBytes, mbPerSecond, runConcurrent, summarize } from "./stats.ts";

const USER = "bench";
const GiB = 2 ** 30;

/** Time spent in each cgroup driver call, for the breakdown of a start. */
export class DriverTimings {
  readonly calls = new Map<string, { count: number; ms: number }>();

  /** Adds one call of `name` that took `ms`. */
  record(name: string, ms: number): void {
    const entry = this.calls.get(name) ?? { count: 0, ms: 0 };
    entry.count++;
    entry.ms += ms;
    this.calls.set(name, entry);
  }

  /** Forgets every call so far. */
  reset(): void {
    this.calls.clear();
  }

  /** `name: n calls, mean x ms` lines. */
  describe(): string {
    return [...this.calls.entries()].map(([name, { count, ms }]) =>
      `${name}: ${count} calls, mean ${(ms / count).toFixed(3)} ms`
    ).join("; ");
  }
}

async function timed<T>(
  timings: DriverTimings,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings.record(name, performance.now() - t0);
  }
}

function timedSync<T>(timings: DriverTimings, name: string, fn: () => T): T {
  const t0 = performance.now();
  try {
    return fn();
  } finally {
    timings.record(name, performance.now() - t0);
  }
}

function timedCgroup(cgroup: JobCgroup, timings: DriverTimings): JobCgroup {
  return {
    get name() {
      return cgroup.name;
    },
    get procsFiles() {
      return cgroup.procsFiles;
    },
    get paths() {
      return cgroup.paths;
    },
    pids: () => timedSync(timings, "cgroup.pids", () => cgroup.pids()),
    signal: (s) => timedSync(timings, "cgroup.signal", () => cgroup.signal(s)),
    kill: (options) =>
      timed(timings, "cgroup.kill", () => cgroup.kill(options)),
    oomKills: () =>
      timedSync(timings, "cgroup.oomKills", () => cgroup.oomKills()),
    usage: () => timedSync(timings, "cgroup.usage", () => cgroup.usage()),
    remove: () => timed(timings, "cgroup.remove", () => cgroup.remove()),
  };
}

/**
 * Wraps a driver so that every call is timed. The engine takes any
 * {@linkcode CgroupDriver}, so this needs no change to the engine.
 */
export function timedDriver(
  driver: CgroupDriver,
  timings: DriverTimings,
): CgroupDriver {
  return {
    get version() {
      return driver.version;
    },
    get parent() {
      return driver.parent;
    },
    get parentDirs() {
      return driver.parentDirs;
    },
    create: async (name, limits) =>
      timedCgroup(
        await timed(
          timings,
          "driver.create",
          () => driver.create(name, limits),
        ),
        timings,
      ),
    open: (name) => timedCgroup(driver.open(name), timings),
    list: () => timed(timings, "driver.list", () => driver.list()),
  };
}

/** Waits until every job in `ids` has finished (polling status: harness only). */
async function waitFinished(
  engine: JobEngine,
  ids: Iterable<string>,
): Promise<void> {
  let pending = [...ids];
  while (pending.length > 0) {
    const still: string[] = [];
    for (const id of pending) {
      const info = await engine.status(USER, id);
      if (info.state === "running") still.push(id);
    }
    pending = still;
    if (pending.length > 0) await delay(20);
  }
}

/** Reads a job's output to the end, counting bytes; resolves with the count. */
async function follow(
  engine: JobEngine,
  id: string,
  options: { follow: boolean },
): Promise<number> {
  let bytes = 0;
  for await (const chunk of engine.logs(USER, id, options)) {
    bytes += chunk.byteLength;
  }
  return bytes;
}

/** Runs the engine section. */
export async function runEngine(ctx: SectionContext): Promise<void> {
  const { plan, rec, floors } = ctx;

  // The engine section may run without the floor section: measure the
  // spawn floor here then, with fewer samples.
  if (floors["floor.spawn.p50"] === undefined) {
    console.error(
      "engine: no floor section in this run; measuring spawn floor",
    );
    const t = await spawnLatencies("/bin/true", [], plan.latencyCount / 2);
    floors["floor.spawn.p50"] = summarize(t.spawn).p50;
    floors["floor.spawn.p99"] = summarize(t.spawn).p99;
    floors["floor.rate"] = await spawnRate(plan.rateCount / 2, plan.inFlight);
    const file = `${ctx.workDir}/floor.out`;
    let t0 = performance.now();
    await writeZeros(file, plan.manyFollowerBytes);
    floors["floor.write"] = mbPerSecond(
      plan.manyFollowerBytes,
      performance.now() - t0,
    );
    t0 = performance.now();
    floors["floor.read1"] = mbPerSecond(
      await readFileBytes(file),
      performance.now() - t0,
    );
    await Deno.remove(file);
  }

  const raw = await detectDriver({ parent: ctx.cgroupParent });
  rec.note(`cgroup driver: ${raw.parent}`);
  const timings = new DriverTimings();
  const driver = timedDriver(raw, timings);

  console.error("engine: cgroup driver alone");
  const limits: Limits = { cpu: 0.5, memoryBytes: 512 * 2 ** 20, pids: 1000 };
  for (
    const [label, key, jobLimits] of [
      ["no limits", "plain", {}],
      ["cpu+memory+pids limits", "limits", limits],
    ] as const
  ) {
    const create: number[] = [];
    const remove: number[] = [];
    for (let i = 0; i < plan.latencyCount / 4; i++) {
      const t0 = performance.now();
      const cg = await raw.create(`bench-${key}-${i}`, jobLimits);
      const t1 = performance.now();
      await cg.remove();
      remove.push(performance.now() - t1);
      create.push(t1 - t0);
    }
    rec.add({
      key: `engine.cgroup_create_${key}.p50`,
      label: `cgroup create, ${label}, p50`,
      value: summarize(create).p50,
      unit: "ms",
      detail:
        `${create.length} serial driver.create calls (cgroup v${raw.version})`,
    });
    rec.add({
      key: `engine.cgroup_remove_${key}.p50`,
      label: `cgroup remove (empty), ${label}, p50`,
      value: summarize(remove).p50,
      unit: "ms",
      detail: `${remove.length} serial remove calls`,
    });
  }

  const dataDir = `${ctx.workDir}/data`;
  await Deno.mkdir(dataDir, { recursive: true });
  const outputLimitBytes = Math.max(plan.bigJobBytes, plan.oneFollowerBytes) +
    GiB;
  const engine = await JobEngine.open({
    dataDir,
    cgroups: driver,
    outputLimitBytes,
  });
  let shutDown = false;
  ctx.cleanup.defer("shut the engine down", async () => {
    if (!shutDown) await engine.shutdown({ graceMs: 0 });
  });

  // First, while the process holds nothing but the engine: server memory is
  // then the engine's, not what earlier phases left in the heap.
  await measureBigJob(ctx, engine, dataDir);

  console.error("engine: spawn floor at this process's size");
  // The same spawn as the engine's (shim through /bin/sh, own session, clean
  // environment) from this process, now that it holds the engine: the cost
  // of fork() grows with the parent's mapped memory.
  const shimArgs = ["-c", 'exec "$0" "$@"', "/bin/true"];
  for (
    const [key, label, options] of [
      ["plain", "posix_spawn", {}],
      ["detached", "detached (fork)", {
        detached: true,
        clearEnv: true,
        env: { PATH: "/usr/bin:/bin" },
        cwd: "/",
      }],
    ] as const
  ) {
    const t = await spawnLatencies(
      "/bin/sh",
      shimArgs,
      plan.latencyCount / 2,
      options,
    );
    rec.add({
      key: `engine.floor_spawn_${key}.p50`,
      label: `floor here: spawn sh shim, ${label}, p50`,
      value: summarize(t.spawn).p50,
      unit: "ms",
      detail:
        `${t.spawn.length} serial Deno.Command spawns from the engine's ` +
        `process (RSS ${((await readMemory()).rss / 1e6).toFixed(0)} MB)`,
    });
  }

  await measureStartParts(ctx, raw);
  await measureShimFloor(ctx, raw);

  console.error("engine: start latency");
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    ids.push((await engine.start(USER, { command: "true" })).id);
  }
  await waitFinished(engine, ids.splice(0));
  timings.reset();
  const latencies: number[] = [];
  for (let i = 0; i < plan.latencyCount; i++) {
    const t0 = performance.now();
    const info = await engine.start(USER, { command: "true" });
    latencies.push(performance.now() - t0);
    ids.push(info.id);
  }
  const startDetail = `${plan.latencyCount} serial engine.start of "true" ` +
    `(resolved on PATH), no limits; driver: ${timings.describe()}`;
  const lat = summarize(latencies);
  rec.add({
    key: "engine.start.p50",
    label: "start p50",
    value: lat.p50,
    unit: "ms",
    floor: floors["floor.spawn.p50"],
    target: { op: "<=", value: 2 },
    detail: startDetail,
  });
  rec.add({
    key: "engine.start.p99",
    label: "start p99",
    value: lat.p99,
    unit: "ms",
    floor: floors["floor.spawn.p99"],
    detail: startDetail,
  });
  await waitFinished(engine, ids.splice(0));

  // The same with jobs that outlive the measurement: no job's end (usage
  // read, cgroup removal, store update) competes with the next start.
  const sleepers: string[] = [];
  const quiet: number[] = [];
  for (let i = 0; i < plan.latencyCount / 2; i++) {
    const t0 = performance.now();
    const info = await engine.start(USER, { command: "sleep", args: ["600"] });
    quiet.push(performance.now() - t0);
    sleepers.push(info.id);
  }
  rec.add({
    key: "engine.start_quiet.p50",
    label: "start p50, no job ending meanwhile",
    value: summarize(quiet).p50,
    unit: "ms",
    floor: floors["floor.spawn.p50"],
    target: { op: "<=", value: 2 },
    detail: `${quiet.length} serial starts of "sleep 600"`,
  });
  rec.add({
    key: "engine.start_quiet.p99",
    label: "start p99, no job ending meanwhile",
    value: summarize(quiet).p99,
    unit: "ms",
    floor: floors["floor.spawn.p99"],
    detail: `${quiet.length} serial starts of "sleep 600"`,
  });
  const stopStart = performance.now();
  await Promise.all(
    sleepers.map((id) => engine.stop(USER, id, { graceMs: 0 })),
  );
  rec.add({
    key: "engine.stop_many",
    label: "stop, grace 0, all at once, per job",
    value: (performance.now() - stopStart) / sleepers.length,
    unit: "ms",
    detail: `${sleepers.length} running sleep jobs stopped concurrently`,
  });

  const limited: number[] = [];
  for (let i = 0; i < plan.latencyCount / 4; i++) {
    const t0 = performance.now();
    const info = await engine.start(USER, { command: "true", limits });
    limited.push(performance.now() - t0);
    ids.push(info.id);
  }
  rec.add({
    key: "engine.start_limits.p50",
    label: "start with cpu+memory+pids limits p50",
    value: summarize(limited).p50,
    unit: "ms",
    floor: floors["floor.spawn.p50"],
    target: { op: "<=", value: 2 },
    detail: `${limited.length} serial starts with per-job limits`,
  });
  await waitFinished(engine, ids.splice(0));

  console.error(`engine: starts per second, ${plan.inFlight} in flight`);
  timings.reset();
  let startsMs = 0;
  const { cpuMs, wallMs } = await cpuTimeOf(async () => {
    const t0 = performance.now();
    const run = await runConcurrent(plan.rateCount, plan.inFlight, async () => {
      const info = await engine.start(USER, { command: "true" });
      ids.push(info.id);
    });
    if (run.errors.length > 0) throw run.errors[0];
    startsMs = performance.now() - t0;
    await waitFinished(engine, ids.splice(0));
  });
  rec.add({
    key: "engine.rate",
    label: `starts/s, ${plan.inFlight} in flight`,
    value: plan.rateCount / (startsMs / 1000),
    unit: "/s",
    floor: floors["engine.floor_life.rate"] ?? floors["floor.rate"],
    target: { op: ">=", value: 1000 },
    detail: `${plan.rateCount} starts of "true"; floor: the same job lives ` +
      `(cgroup, shim, counters, removal) at the same concurrency with no ` +
      `engine; plain spawn+exit of /bin/true: ${
        (floors["floor.rate"] ?? 0).toFixed(0)
      }/s`,
  });
  rec.add({
    key: "engine.rate_done",
    label: `jobs started and finished /s, ${plan.inFlight} in flight`,
    value: plan.rateCount / (wallMs / 1000),
    unit: "/s",
    floor: floors["floor.rate"],
    detail: "until every job's end was recorded",
  });
  rec.add({
    key: "engine.cpu_per_job",
    label: "server CPU per job (start to end)",
    value: cpuMs / plan.rateCount,
    unit: "ms",
    detail:
      `process CPU time (all threads) over the run; driver: ${timings.describe()}`,
  });

  console.error("engine: CPU profile of starts");
  const profiled = await profilePhase(async () => {
    const run = await runConcurrent(
      plan.rateCount / 2,
      plan.inFlight,
      async () => {
        const info = await engine.start(USER, { command: "true" });
        ids.push(info.id);
      },
    );
    if (run.errors.length > 0) throw run.errors[0];
    await waitFinished(engine, ids.splice(0));
  }, ctx.repoRoot);
  rec.note(
    `CPU profile of ${
      plan.rateCount / 2
    } starts at ${plan.inFlight} in flight ` +
      `(${(profiled.cpuMs / profiled.wallMs * 100).toFixed(0)}% of a core, ` +
      `main thread idle ${profiled.summary.idlePercent.toFixed(0)}%), ` +
      `self time by file:\n${formatHotspots(profiled.summary.files)}\n` +
      `by function:\n${formatHotspots(profiled.summary.functions)}`,
  );

  await measureOutput(ctx, engine);
  await measureRamp(ctx, engine);

  console.error("engine: shutdown");
  const t0 = performance.now();
  shutDown = true;
  const finished = await Promise.race([
    engine.shutdown({ graceMs: 0 }).then(() => true),
    delay(300_000).then(() => false),
  ]);
  if (!finished) {
    rec.note("engine shutdown did not finish within 300 s");
    return;
  }
  rec.add({
    key: "engine.shutdown",
    label: "shutdown with the ramp's jobs running (grace 0)",
    value: (performance.now() - t0) / 1000,
    unit: "s",
  });
}

async function measureOutput(
  ctx: SectionContext,
  engine: JobEngine,
): Promise<void> {
  const { plan, rec, floors } = ctx;
  console.error("engine: output throughput to one follower");
  const one = plan.oneFollowerBytes;
  await syncDisks();
  let t0 = performance.now();
  const job = await engine.start(USER, {
    command: "head",
    args: ["-c", String(one), "/dev/zero"],
  });
  let bytes = await follow(engine, job.id, { follow: true });
  rec.add({
    key: "engine.follow1",
    label: "1 follower of a job writing, live",
    value: mbPerSecond(bytes, performance.now() - t0),
    unit: "MB/s",
    floor: floors["floor.write"],
    target: { op: ">=", value: 1000 },
    detail: `head -c ${formatBytes(one)} /dev/zero, follow from start to ` +
      `end; floor: the same head writing a file alone`,
  });
  if (bytes !== one) rec.note(`follower got ${bytes} of ${one} bytes`);
  t0 = performance.now();
  bytes = await follow(engine, job.id, { follow: true });
  rec.add({
    key: "engine.replay1",
    label: "1 follower of finished output",
    value: mbPerSecond(bytes, performance.now() - t0),
    unit: "MB/s",
    floor: floors["floor.read1"],
    target: { op: ">=", value: 1000 },
    detail: `${
      formatBytes(one)
    } from the page cache; floor: plain file reads of the same size`,
  });

  console.error(`engine: output throughput to ${plan.manyFollowers} followers`);
  const many = plan.manyFollowerBytes;
  await syncDisks();
  t0 = performance.now();
  const fan = await engine.start(USER, {
    command: "head",
    args: ["-c", String(many), "/dev/zero"],
  });
  const followers = Array.from({ length: plan.manyFollowers }, async () => {
    const n = await follow(engine, fan.id, { follow: true });
    return { n, ms: performance.now() - t0 };
  });
  const done = await Promise.all(followers);
  const total = done.reduce((a, b) => a + b.n, 0);
  const slowest = Math.max(...done.map((d) => d.ms));
  rec.add({
    key: "engine.follow_many",
    label: `${plan.manyFollowers} followers, live, aggregate`,
    value: mbPerSecond(total, slowest),
    unit: "MB/s",
    detail:
      `head -c ${formatBytes(many)} /dev/zero with ${plan.manyFollowers} ` +
      `followers from the start; slowest follower ${
        mbPerSecond(many, slowest).toFixed(0)
      } MB/s`,
  });
  if (done.some((d) => d.n !== many)) {
    rec.note(`some of the ${plan.manyFollowers} followers missed bytes`);
  }
  t0 = performance.now();
  const replays = await Promise.all(
    Array.from(
      { length: plan.manyFollowers },
      () => follow(engine, fan.id, { follow: true }),
    ),
  );
  rec.add({
    key: "engine.replay_many",
    label: `${plan.manyFollowers} followers of finished output, aggregate`,
    value: mbPerSecond(
      replays.reduce((a, b) => a + b, 0),
      performance.now() - t0,
    ),
    unit: "MB/s",
    floor: floors["floor.read_many"],
    detail: `${plan.manyFollowers} x ${formatBytes(many)}`,
  });
}

async function measureBigJob(
  ctx: SectionContext,
  engine: JobEngine,
  dataDir: string,
): Promise<void> {
  const { plan, rec } = ctx;
  let size = plan.bigJobBytes;
  const free = await freeDiskBytes(dataDir);
  // Leave room for everything else on the disk: 2 GiB and a tenth.
  const room = Math.floor((free - 2 * GiB) * 0.9);
  if (room < size) {
    const scaled = Math.max(0, Math.floor(room / GiB) * GiB);
    rec.note(
      `only ${formatBytes(free)} free on the data dir's file system: the ` +
        `big job writes ${formatBytes(scaled)} instead of ${formatBytes(size)}`,
    );
    size = scaled;
  }
  if (size === 0) return;
  console.error("engine: server CPU while a job writes, no reader");
  {
    const quietBytes = Math.min(size, 2 * GiB);
    await syncDisks();
    let id = "";
    const { cpuMs, wallMs } = await cpuTimeOf(async () => {
      id = (await engine.start(USER, {
        command: "head",
        args: ["-c", String(quietBytes), "/dev/zero"],
      })).id;
      await waitFinished(engine, [id]);
    });
    rec.add({
      key: "engine.write_no_reader.cpu",
      label: "server CPU while a job writes, no reader",
      value: (100 * cpuMs) / wallMs,
      unit: "% of a core",
      detail: `head -c ${formatBytes(quietBytes)} /dev/zero, ${
        mbPerSecond(quietBytes, wallMs).toFixed(0)
      } MB/s; the server only watches the output directory (inotify)`,
    });
    await Deno.remove(`${dataDir}/output/${id}.out`).catch(() => {});
  }

  console.error(
    `engine: server memory while a job writes ${formatBytes(size)}`,
  );
  await syncDisks();
  const before = await readMemory();
  await resetPeakRss();
  const sampler = new MemorySampler(50);
  let job!: JobInfo;
  let bytes = 0;
  const { cpuMs, wallMs: ms } = await cpuTimeOf(async () => {
    job = await engine.start(USER, {
      command: "head",
      args: ["-c", String(size), "/dev/zero"],
    });
    bytes = await follow(engine, job.id, { follow: true });
  });
  const peaks = sampler.stop();
  rec.add({
    key: "engine.big_job.cpu",
    label: "server CPU while it runs (with its follower)",
    value: (100 * cpuMs) / ms,
    unit: "% of a core",
    detail: `${(cpuMs / 1000).toFixed(1)} s CPU over ${
      (ms / 1000).toFixed(1)
    } s, all threads`,
  });
  const after = await readMemory();
  const peak = Math.max(after.peakRss, peaks.rss);
  rec.add({
    key: "engine.big_job.peak_rss",
    label: `peak server RSS while a job writes ${formatBytes(size)}`,
    value: peak / 1e6,
    unit: "MB",
    target: { op: "<=", value: 200 },
    detail:
      `one follower reading along; RSS before ${
        (before.rss / 1e6).toFixed(0)
      } MB, peak V8 heap ${(peaks.heapUsed / 1e6).toFixed(0)} MB ` +
      `(${peaks.samples} samples, VmHWM reset at the start)`,
  });
  rec.add({
    key: "engine.big_job.rss_growth",
    label: "server RSS growth during the big job",
    value: (peak - before.rss) / 1e6,
    unit: "MB",
  });
  rec.add({
    key: "engine.big_job.follow",
    label: "its follower, live",
    value: mbPerSecond(bytes, ms),
    unit: "MB/s",
    detail: `${formatBytes(bytes)} received`,
  });
  const info = await engine.status(USER, job.id);
  if (info.outputLimitReached) {
    rec.note("the big job hit the output cap; raise outputLimitBytes");
  }
  // Free the disk at once rather than at the end of the run.
  await Deno.remove(`${dataDir}/output/${job.id}.out`).catch(() => {});
}

async function measureRamp(
  ctx: SectionContext,
  engine: JobEngine,
): Promise<void> {
  const { plan, rec, floors } = ctx;
  console.error(`engine: ramp of sleep jobs to ${plan.concurrentTarget}`);
  const starts: number[] = [];
  const result = await ramp(async () => {
    const t0 = performance.now();
    await engine.start(USER, { command: "sleep", args: ["3600"] });
    starts.push(performance.now() - t0);
  }, {
    target: plan.concurrentTarget,
    step: plan.rampStep,
    inFlight: plan.inFlight,
    budgetMs: plan.rampBudgetMs,
    fdLimit: await fdHardLimit(),
    fdReserve: 300,
  });
  const each = perChild(result);
  const detail = `${result.reached} sleep jobs, ${plan.inFlight} starts in ` +
    `flight, sampled after a full GC every ${plan.rampStep}`;
  rec.add({
    key: "engine.concurrent",
    label: "concurrent sleep jobs",
    value: result.reached,
    unit: "",
    floor: floors["floor.sleep.reached"],
    // A quick run ramps to a few hundred only: no verdict on the count.
    target: ctx.quick ? undefined : { op: ">=", value: 15_000 },
    detail,
  });
  rec.add({
    key: "engine.rss_per_job",
    label: "server RSS per running job",
    value: each.rss / 1024,
    unit: "KiB",
    floor: floors["floor.sleep.rss_per_child"],
    target: { op: "<=", value: 16 },
    detail,
  });
  rec.add({
    key: "engine.heap_per_job",
    label: "V8 heap per running job",
    value: each.heapUsed / 1024,
    unit: "KiB",
    floor: floors["floor.sleep.heap_per_child"],
    detail,
  });
  rec.add({
    key: "engine.fds_per_job",
    label: "fds per running job",
    value: each.fds,
    unit: "",
    floor: floors["floor.sleep.fds_per_child"],
    detail,
  });
  if (starts.length > 0) {
    rec.add({
      key: "engine.ramp_start.p50",
      label: `start latency p50 during the ramp (${plan.inFlight} in flight)`,
      value: summarize(starts).p50,
      unit: "ms",
      floor: floors["floor.sleep.spawn.p50"],
      detail,
    });
  }
  const last = result.samples.at(-1);
  rec.note(
    `sleep-job ramp: ${result.reason} (${
      (result.elapsedMs / 1000).toFixed(0)
    } s; at the end RSS ${((last?.rss ?? 0) / 2 ** 20).toFixed(0)} MiB, ` +
      `heap ${((last?.heapUsed ?? 0) / 2 ** 20).toFixed(0)} MiB, ${
        last?.fds ?? 0
      } fds)`,
  );
}

/**
 * The steps of a start, each timed alone with the engine's own modules and
 * the real driver, serially: PATH lookup, job-store insert, output file
 * creation, cgroup creation and limit writes. With the spawn floor measured
 * above they account for a start.
 */
async function measureStartParts(
  ctx: SectionContext,
  driver: CgroupDriver,
): Promise<void> {
  const { plan, rec } = ctx;
  console.error("engine: the parts of a start, each alone");
  const n = plan.latencyCount / 2;
  const time = async (fn: (i: number) => Promise<unknown> | unknown) => {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fn(i);
      xs.push(performance.now() - t0);
    }
    return summarize(xs).p50;
  };
  const dir = `${ctx.workDir}/parts`;
  await Deno.mkdir(dir, { recursive: true });
  const store = JobStore.open(`${dir}/jobs.db`);
  const created: JobCgroup[] = [];
  const undo = ctx.cleanup.defer("close the parts store", async () => {
    store.close();
    for (const cg of created) await cg.remove();
  });
  const parts: [string, string, number][] = [
    [
      "resolve",
      "resolve the command on PATH",
      await time(() => resolveCommand({ command: "true" })),
    ],
    [
      "insert",
      "job-store insert (node:sqlite, WAL)",
      await time(() =>
        store.insert({
          owner: USER,
          command: "/usr/bin/true",
          args: [],
          cwd: "/",
          startedAt: new Date(),
          limits: {},
        })
      ),
    ],
    [
      "output",
      "create the output file",
      await time((i) => Deno.writeFile(`${dir}/${i}.out`, new Uint8Array(0))),
    ],
    [
      "cgroup",
      `cgroup create (v${driver.version}), no limits`,
      await time(async (i) => {
        // Removal is not part of a start: all are removed afterwards.
        created.push(await driver.create(`parts-${i}`, {}));
      }),
    ],
  ];
  undo();
  store.close();
  for (const cg of created) await cg.remove();
  for (const [key, label, value] of parts) {
    rec.add({
      key: `engine.part_${key}.p50`,
      label: `part of a start: ${label}, p50`,
      value,
      unit: "ms",
      detail: `${n} serial calls, each alone`,
    });
  }
}

/** The shim floor runs as a default identity would: unprivileged. */
const BENCH_IDENTITY = {
  uid: DEFAULT_UID_RANGE.first,
  gid: DEFAULT_UID_RANGE.first,
  groups: [],
};

/**
 * The floor of a job start that no engine can beat: the real startup shim
 * (cgroup.procs writes, output redirection, setsid, exec) spawned from this
 * process into an existing cgroup and awaited, serially and 16 at a time.
 */
async function measureShimFloor(
  ctx: SectionContext,
  driver: CgroupDriver,
): Promise<void> {
  const { plan, rec, floors } = ctx;
  console.error("engine: the startup shim alone (no engine)");
  const cg = await driver.create("bench-shim", {});
  const undo = ctx.cleanup.defer("remove the shim cgroup", () => cg.remove());
  const shimPath = await buildShim();
  const shimOptions = {
    shim: shimPath,
    outputPath: `${ctx.workDir}/shim.out`,
    cwd: "/",
    env: { PATH: "/usr/bin:/bin" },
    runAs: BENCH_IDENTITY,
  };
  const shim = shimCommand("/bin/true", [], {
    ...shimOptions,
    procsFiles: cg.procsFiles,
  });
  const cmd = new Deno.Command(shim.program, {
    args: shim.args,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  const exits: number[] = [];
  for (let i = 0; i < plan.latencyCount / 2; i++) {
    const t0 = performance.now();
    await cmd.spawn().status;
    exits.push(performance.now() - t0);
  }
  const run = await runConcurrent(
    plan.rateCount / 2,
    plan.inFlight,
    async () => {
      await cmd.spawn().status;
    },
  );
  // The whole kernel side of a job's life with no engine around it: a new
  // cgroup, the shim into it, the counters read, the cgroup removed.
  let n = 0;
  const life = async () => {
    const job = await driver.create(`bench-life-${n++}`, {});
    const s = shimCommand("/bin/true", [], {
      ...shimOptions,
      procsFiles: job.procsFiles,
    });
    await new Deno.Command(s.program, {
      args: s.args,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().status;
    await job.oomKills();
    await job.usage();
    await job.kill();
    await job.remove();
  };
  const lives = await runConcurrent(plan.rateCount / 2, plan.inFlight, life);
  undo();
  await cg.remove();
  const lifeRate = lives.results.length / (lives.elapsedMs / 1000);
  floors["engine.floor_life.rate"] = lifeRate;
  const detail = `telejob-shim (cgroup/shim.ts) for /bin/true as uid ` +
    `${BENCH_IDENTITY.uid} into ` +
    `one cgroup (${cg.procsFiles.length} cgroup.procs writes), no engine`;
  rec.add({
    key: "engine.floor_shim.exit.p50",
    label: "floor here: the shim, spawn to exit p50",
    value: summarize(exits).p50,
    unit: "ms",
    detail: `${exits.length} serial; ${detail}`,
  });
  const rate = run.results.length / (run.elapsedMs / 1000);
  floors["engine.floor_shim.rate"] = rate;
  rec.add({
    key: "engine.floor_shim.rate",
    label: `floor here: the shim, spawn+exit, ${plan.inFlight} in flight`,
    value: rate,
    unit: "/s",
    detail: `${run.results.length} runs; ${detail}`,
  });
  rec.add({
    key: "engine.floor_life.rate",
    label:
      `floor here: cgroup create, shim, counters, remove, ${plan.inFlight} ` +
      "in flight",
    value: lifeRate,
    unit: "/s",
    detail: `${lives.results.length} job lives with the driver and the shim ` +
      "but no engine (no store, no watcher, no bookkeeping)",
  });
}
