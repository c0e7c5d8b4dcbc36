/**
 * Real enforcement: real processes started through the shim in real cgroups
 * of whichever driver this host has (v1 here, v2 inside the VM of
 * `deno task test:cgroup2`). Run as root.
 */
import assert from "node:assert/strict";
import { FORK_BOMB, isAlive, runJob, testDriver, waitFor } from "./testing.ts";
import { splitRdev } from "./limits.ts";
import type { CgroupDriver, JobCgroup } from "./types.ts";
import { V1Driver } from "./v1.ts";
import { V2Driver } from "./v2.ts";

const root = Deno.uid() === 0;
const ignore = !root || Deno.build.os !== "linux";
if (ignore) {
  console.warn("cgroup enforcement tests need root on Linux: skipped");
}

const PERL = "/usr/bin/perl";
const SH = "/bin/sh";

Deno.test({
  name: "job is in its cgroup before its first instruction",
  ignore,
  async fn() {
    await using t = await testDriver();
    const cgroup = await t.driver.create("first", {});
    await using job = await runJob(cgroup, "/bin/cat", ["/proc/self/cgroup"]);
    assert.equal((await job.child.status).code, 0);
    const lines = (await job.output()).split("\n").filter((l) => l !== "");
    const inJob = lines.filter((l) => l.endsWith(`/${cgroup.name}`));
    // One line per hierarchy the job uses: 6 on this v1 host, 1 on v2.
    assert.equal(inJob.length, cgroup.procsFiles.length, lines.join("\n"));
    for (const file of cgroup.procsFiles) {
      const dir = file.slice(0, -"/cgroup.procs".length);
      assert.ok(
        inJob.some((l) => dir.endsWith(l.slice(l.lastIndexOf(":") + 1))),
        `${dir} not in\n${lines.join("\n")}`,
      );
    }
  },
});

/** CPU share of one core a busy loop gets over `ms`, measured by the cgroup. */
async function cpuShare(
  cgroup: JobCgroup,
  ms: number,
): Promise<number> {
  await using job = await runJob(cgroup, SH, ["-c", "while :; do :; done"]);
  await waitFor(
    "the busy loop to start",
    async () =>
      (await cgroup.pids()).length > 0 &&
      (await cgroup.usage()).cpuUsec > 0,
  );
  const u0 = (await cgroup.usage()).cpuUsec;
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const u1 = (await cgroup.usage()).cpuUsec;
  const t1 = performance.now();
  assert.ok(job.child.pid > 0);
  return (u1 - u0) / ((t1 - t0) * 1000);
}

/**
 * Gives the test's parent cgroup the highest CPU weight, so that the
 * unlimited control gets its core even while other work loads this host;
 * the quota of the limited job is unaffected by weights.
 */
async function boostCpuWeight(driver: CgroupDriver): Promise<void> {
  if (driver instanceof V1Driver) {
    const cpu = driver.hierarchies.find((h) => h.controllers.includes("cpu"));
    if (cpu) await Deno.writeTextFile(`${cpu.parentDir}/cpu.shares`, "262144");
  } else if (driver instanceof V2Driver) {
    await Deno.writeTextFile(`${driver.parentDir}/cpu.weight`, "10000");
  }
}

Deno.test({
  name: "cpu: a busy loop under 0.2 CPU uses at most 25% of a CPU",
  ignore,
  async fn() {
    await using t = await testDriver();
    await boostCpuWeight(t.driver);
    const limited = await t.driver.create("cpu-limited", { cpu: 0.2 });
    const control = await t.driver.create("cpu-control", {});
    const [limitedShare, controlShare] = await Promise.all([
      cpuShare(limited, 2000),
      cpuShare(control, 2000),
    ]);
    console.log(
      `cpu share over 2 s: limited ${(limitedShare * 100).toFixed(1)}%, ` +
        `unlimited ${(controlShare * 100).toFixed(1)}%`,
    );
    assert.ok(limitedShare <= 0.25, `limited job used ${limitedShare}`);
    assert.ok(limitedShare > 0.05, `limited job barely ran: ${limitedShare}`);
    assert.ok(
      controlShare > 2 * limitedShare && controlShare > 0.4,
      `unlimited job used only ${controlShare} (limited ${limitedShare})`,
    );
  },
});

Deno.test({
  name:
    "memory: a job allocating past its limit is OOM-killed, the next is not",
  ignore,
  async fn() {
    await using t = await testDriver();
    const limit = 32 * 1024 * 1024;
    const hog = await t.driver.create("mem-hog", { memoryBytes: limit });
    {
      // perl is the job's main process, so the OOM kill is its exit status.
      await using job = await runJob(hog, PERL, [
        "-e",
        '$x = "x" x (256 << 20); print "survived\\n";',
      ]);
      const status = await job.child.status;
      assert.equal(status.signal, "SIGKILL", await job.output());
      assert.ok(!(await job.output()).includes("survived"));
    }
    assert.ok((await hog.oomKills()) >= 1, "oom_kill counter did not move");
    const peak = (await hog.usage()).memoryPeakBytes;
    assert.ok(peak <= limit + 1024 * 1024, `peak ${peak} above the limit`);

    const next = await t.driver.create("mem-next", { memoryBytes: limit });
    await using job = await runJob(next, PERL, [
      "-e",
      '$x = "x" x (4 << 20); print "ok\\n";',
    ]);
    assert.equal((await job.child.status).code, 0, await job.output());
    assert.equal(await job.output(), "ok\n");
    assert.equal(await next.oomKills(), 0);
  },
});

Deno.test({
  name: "pids: a fork bomb is contained and kill() still empties the cgroup",
  ignore,
  async fn() {
    await using t = await testDriver();
    const max = 16;
    const cgroup = await t.driver.create("bomb", { pids: max });
    await using job = await runJob(cgroup, PERL, ["-e", FORK_BOMB]);
    await waitFor(
      "forks to fail at the limit",
      async () => (await job.output()).includes("fork failed"),
    );
    const pids = await cgroup.pids();
    assert.ok(pids.length <= max, `${pids.length} processes, limit ${max}`);
    assert.ok(pids.length >= max / 2, `only ${pids.length} processes`);
    await cgroup.kill();
    assert.deepEqual(await cgroup.pids(), []);
    assert.ok(pids.every((pid) => !isAlive(pid)), "a bomb process survived");
    const status = await job.child.status;
    assert.equal(status.signal, "SIGKILL");
    await cgroup.remove();
    assert.ok(!(await t.driver.list()).includes(cgroup.name));
  },
});

/** A block device for the I/O test, and a function that releases it. */
async function blockDevice(): Promise<
  { path: string; release: () => Promise<void> }
> {
  const given = Deno.env.get("TELEJOB_TEST_BLOCK_DEVICE");
  if (given) return { path: given, release: async () => {} };
  const image = await Deno.makeTempFile({
    prefix: "telejob-loop-",
    dir: "/var/tmp",
  });
  try {
    await Deno.truncate(image, 16 * 1024 * 1024);
    const out = await new Deno.Command("losetup", {
      args: ["--find", "--show", image],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `losetup failed: ${new TextDecoder().decode(out.stderr)}`,
      );
    }
    const path = new TextDecoder().decode(out.stdout).trim();
    return {
      path,
      release: async () => {
        await new Deno.Command("losetup", { args: ["-d", path] }).output();
        await Deno.remove(image);
      },
    };
  } catch (error) {
    await Deno.remove(image);
    throw error;
  }
}

/** Runs dd in `cgroup` and returns its rate in bytes per second, from dd itself. */
async function ddRate(
  cgroup: JobCgroup,
  args: string[],
): Promise<number> {
  await using job = await runJob(cgroup, "/bin/dd", args);
  const status = await job.child.status;
  const output = await job.output();
  assert.equal(status.code, 0, output);
  const match = /^(\d+) bytes .* copied, ([\d.]+) s/m.exec(output);
  assert.ok(match, output);
  return Number(match[1]) / Number(match[2]);
}

Deno.test({
  name: "io: direct I/O to a block device is throttled",
  ignore,
  async fn() {
    const device = await blockDevice();
    try {
      const info = await Deno.stat(device.path);
      const { major, minor } = splitRdev(info.rdev!);
      const rate = 1024 * 1024;
      await using t = await testDriver();
      const limited = await t.driver.create("io-limited", {
        io: [{ major, minor, rbps: rate, wbps: rate }],
      });
      const control = await t.driver.create("io-control", {});
      const count = ["bs=256K", "count=8"]; // 2 MiB: about 2 s at 1 MiB/s
      const write = ["if=/dev/zero", `of=${device.path}`, "oflag=direct"];
      const read = [`if=${device.path}`, "of=/dev/null", "iflag=direct"];
      const limitedWrite = await ddRate(limited, [...write, ...count]);
      const limitedRead = await ddRate(limited, [...read, ...count]);
      const controlWrite = await ddRate(control, [...write, ...count]);
      const mib = (r: number) => (r / 1024 / 1024).toFixed(2);
      console.log(
        `direct I/O at 1 MiB/s: write ${mib(limitedWrite)} MiB/s, read ${
          mib(limitedRead)
        } MiB/s; unlimited write ${mib(controlWrite)} MiB/s`,
      );
      assert.ok(limitedWrite <= rate * 1.25, `write at ${limitedWrite} B/s`);
      assert.ok(limitedRead <= rate * 1.25, `read at ${limitedRead} B/s`);
      assert.ok(controlWrite > rate * 4, `unlimited at ${controlWrite} B/s`);
      const usage = await limited.usage();
      assert.ok(usage.ioWriteBytes >= 2 * 1024 * 1024, JSON.stringify(usage));
      assert.ok(usage.ioReadBytes >= 2 * 1024 * 1024, JSON.stringify(usage));
    } finally {
      await device.release();
    }
  },
});

// The main process ignores SIGTERM and starts three grandchildren that each
// left its parent (double fork) and its session (setsid) and ignore SIGTERM.
const STUBBORN = `
use POSIX ();
$| = 1;
$SIG{TERM} = "IGNORE";
for (1 .. 3) {
  my $pid = fork();
  if ($pid == 0) {
    POSIX::setsid();
    if (fork() == 0) { print "grandchild $$\\n"; sleep 1 while 1; }
    POSIX::_exit(0);
  }
  waitpid($pid, 0);
}
sleep 1 while 1;
`;

Deno.test({
  name: "kill: double-forked, setsid, SIGTERM-ignoring children do not survive",
  ignore,
  async fn() {
    await using t = await testDriver();
    const cgroup = await t.driver.create("stubborn", {});
    await using job = await runJob(cgroup, PERL, ["-e", STUBBORN]);
    const grandchildren = async () =>
      [...(await job.output()).matchAll(/grandchild (\d+)/g)].map((m) =>
        Number(m[1])
      );
    await waitFor(
      "three grandchildren",
      async () => (await grandchildren()).length === 3,
    );
    const all = [job.child.pid, ...await grandchildren()];
    await cgroup.signal("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(all.every(isAlive), "SIGTERM should have been ignored");
    assert.deepEqual(
      (await cgroup.pids()).sort(),
      all.sort(),
      "every process is in the cgroup",
    );
    await cgroup.kill();
    assert.deepEqual(await cgroup.pids(), []);
    assert.equal((await job.child.status).signal, "SIGKILL");
    for (const pid of all) assert.ok(!isAlive(pid), `pid ${pid} survived`);
    await cgroup.remove();
    assert.ok(!(await t.driver.list()).includes(cgroup.name));
  },
});
