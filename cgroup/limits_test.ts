import assert from "node:assert/strict";
import { JobError } from "../server/jobs/errors.ts";
import {
  effectiveLimits,
  hostCpus,
  hostMemoryBytes,
  parseIo,
  parseLimitFlags,
  parseMemory,
  splitRdev,
} from "./limits.ts";
import type { Limits } from "./types.ts";

/** A whole-disk block device of this host: its path and MAJ:MIN. */
function wholeDisk():
  | { path: string; major: number; minor: number }
  | undefined {
  for (const entry of Deno.readDirSync("/sys/block")) {
    const path = `/dev/${entry.name}`;
    try {
      if (!Deno.statSync(path).isBlockDevice) continue;
    } catch {
      continue;
    }
    const [major, minor] = Deno.readTextFileSync(`/sys/block/${entry.name}/dev`)
      .trim().split(":").map(Number);
    return { path, major, minor };
  }
  return undefined;
}

function partition(): string | undefined {
  for (const entry of Deno.readDirSync("/sys/class/block")) {
    try {
      Deno.statSync(`/sys/class/block/${entry.name}/partition`);
      return Deno.readTextFileSync(`/sys/class/block/${entry.name}/dev`).trim();
    } catch {
      continue;
    }
  }
  return undefined;
}

const disk = wholeDisk();

/** Asserts that `fn` rejects with an Error whose message matches `expected`. */
async function rejects(
  fn: () => Promise<unknown>,
  expected: RegExp,
  context = "",
): Promise<void> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof Error, String(error));
    assert.match(error.message, expected, context);
    return;
  }
  assert.fail(`expected a rejection ${context}`);
}

Deno.test("parseLimitFlags accepts the seed's flags", async () => {
  assert.deepEqual(
    await parseLimitFlags({ cpuLimit: "0.2", memoryLimit: "2000" }),
    { cpu: 0.2, memoryBytes: 2000 * 1024 },
  );
  assert.deepEqual(await parseLimitFlags({}), {});
  assert.deepEqual(await parseLimitFlags({ pidsLimit: "100", ioLimit: [] }), {
    pids: 100,
  });
});

Deno.test("memory sizes: KiB by default, units are powers of 1024", () => {
  assert.equal(parseMemory("2000"), 2000 * 1024);
  assert.equal(parseMemory("512K"), 512 * 1024);
  assert.equal(parseMemory("512M"), 512 * 1024 * 1024);
  assert.equal(parseMemory("512mib"), 512 * 1024 * 1024);
  assert.equal(parseMemory("2G"), 2 * 1024 ** 3);
  assert.equal(parseMemory("1.5G"), 1.5 * 1024 ** 3);
  assert.equal(parseMemory("1048576B"), 1024 * 1024);
});

Deno.test("invalid flags name the flag and what is allowed", async () => {
  const cases: [Parameters<typeof parseLimitFlags>[0], RegExp][] = [
    [
      { cpuLimit: "abc" },
      /^Invalid --cpu-limit "abc": expected a number of CPUs greater than 0, like 0\.5$/,
    ],
    [
      { cpuLimit: "0" },
      /--cpu-limit "0": expected a number of CPUs greater than 0/,
    ],
    [{ cpuLimit: "-1" }, /--cpu-limit "-1": expected a number/],
    [{ cpuLimit: "NaN" }, /--cpu-limit "NaN"/],
    [
      { cpuLimit: "0.001" },
      /--cpu-limit "0\.001": the smallest CPU limit is 0\.01/,
    ],
    [
      { cpuLimit: String(hostCpus() + 1) },
      new RegExp(`at most ${hostCpus()}, the number of CPUs on this host`),
    ],
    [{ memoryLimit: "" }, /--memory-limit "": expected a positive size/],
    [{ memoryLimit: "-5" }, /--memory-limit "-5"/],
    [
      { memoryLimit: "12Q" },
      /--memory-limit "12Q": unknown unit; use K, M, G or T/,
    ],
    [{ memoryLimit: "4" }, /--memory-limit "4": at least 64K/],
    [
      { memoryLimit: "1000T" },
      /--memory-limit "1000T": at most .*physical memory/,
    ],
    [
      { pidsLimit: "0" },
      /--pids-limit "0": expected a whole number .* at least 1/,
    ],
    [{ pidsLimit: "1.5" }, /--pids-limit "1\.5"/],
    [{ pidsLimit: "99999999" }, /--pids-limit "99999999": at most 4194304/],
    [{ ioLimit: [""] }, /--io-limit "": expected "MAJ:MIN rbps=N/],
    [
      { ioLimit: ["sda wbps=1"] },
      /--io-limit "sda wbps=1": the device must be MAJ:MIN/,
    ],
    [{ ioLimit: ["/nonexistent wbps=1"] }, /cannot stat \/nonexistent/],
    [{ ioLimit: ["/dev/null wbps=1"] }, /\/dev\/null is not a block device/],
    [
      { ioLimit: ["9999:9999 wbps=1"] },
      /no block device 9999:9999 on this host/,
    ],
  ];
  for (const [flags, expected] of cases) {
    await rejects(
      () => parseLimitFlags(flags),
      expected,
      JSON.stringify(flags),
    );
  }
});

Deno.test({
  name: "io limits: MAJ:MIN or a device path, rates with units",
  ignore: disk === undefined,
  async fn() {
    const { path, major, minor } = disk!;
    assert.deepEqual(
      await parseIo(`${major}:${minor} rbps=1M wbps=2048 riops=10`),
      {
        major,
        minor,
        rbps: 1024 * 1024,
        wbps: 2048,
        riops: 10,
      },
    );
    assert.deepEqual(await parseIo(`  ${path}   wiops=5 `), {
      major,
      minor,
      wiops: 5,
    });
    const bad: [string, RegExp][] = [
      [`${major}:${minor}`, /give at least one of rbps=N/],
      [`${major}:${minor} wbps=0`, /wbps must be a whole number from 1/],
      [`${major}:${minor} wbps=-1`, /"wbps=-1" is not one of rbps=N/],
      [`${major}:${minor} speed=3`, /"speed=3" is not one of/],
      [`${major}:${minor} riops=3K`, /riops counts operations/],
      [`${major}:${minor} rbps=1 rbps=2`, /rbps is given twice/],
    ];
    for (const [value, expected] of bad) {
      await rejects(() => parseIo(value), expected, value);
    }
    await rejects(
      () =>
        parseLimitFlags({
          ioLimit: [`${major}:${minor} rbps=1`, `${path} wbps=1`],
        }),
      /device .* is limited twice; give one --io-limit per device/,
    );
  },
});

Deno.test({
  name: "io limits refuse a partition",
  ignore: partition() === undefined,
  async fn() {
    await rejects(
      () => parseIo(`${partition()} wbps=1`),
      /is a partition; limit the whole disk/,
    );
  },
});

Deno.test("splitRdev decodes Linux device numbers", () => {
  assert.deepEqual(splitRdev(0x0700), { major: 7, minor: 0 });
  assert.deepEqual(splitRdev(0xfd01), { major: 253, minor: 1 });
  // minor 256 and major 259 (nvme) use the extended encoding.
  assert.deepEqual(splitRdev(0x10300 + 0x100000), { major: 259, minor: 256 });
});

function fieldOf(fn: () => unknown): { field?: string; message: string } {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof JobError, String(error));
    assert.equal(error.code, "invalid_argument");
    return { field: error.field, message: error.message };
  }
  assert.fail("expected a JobError");
}

Deno.test("effectiveLimits: the server's limits are defaults and ceilings", () => {
  const ceiling: Limits = { cpu: 0.5, memoryBytes: 64 << 20, pids: 100 };
  assert.deepEqual(effectiveLimits(undefined, ceiling), ceiling);
  assert.deepEqual(effectiveLimits({}, {}), {});
  assert.deepEqual(
    effectiveLimits({ cpu: 0.2, memoryBytes: 32 << 20, pids: 10 }, ceiling),
    { cpu: 0.2, memoryBytes: 32 << 20, pids: 10 },
  );
  assert.deepEqual(effectiveLimits({ pids: 10 }, {}), { pids: 10 });

  let e = fieldOf(() => effectiveLimits({ cpu: 0.6 }, ceiling));
  assert.equal(e.field, "limits.cpu");
  assert.match(
    e.message,
    /^Invalid CPU limit 0\.6: at most 0\.5, the server's limit$/,
  );
  e = fieldOf(() => effectiveLimits({ memoryBytes: 65 << 20 }, ceiling));
  assert.equal(e.field, "limits.memory_bytes");
  assert.match(e.message, /at most 67108864 bytes \(64M\), the server's limit/);
  e = fieldOf(() => effectiveLimits({ pids: 101 }, ceiling));
  assert.equal(e.field, "limits.pids");
  assert.match(e.message, /at most 100, the server's limit/);
});

Deno.test("effectiveLimits refuses absurd values with the field name", () => {
  const cases: [Limits, string, RegExp][] = [
    [{ cpu: -1 }, "limits.cpu", /greater than 0/],
    [{ cpu: NaN }, "limits.cpu", /greater than 0/],
    [{ cpu: Infinity }, "limits.cpu", /greater than 0/],
    [{ cpu: hostCpus() * 2 }, "limits.cpu", /number of CPUs on this host/],
    [{ memoryBytes: 4096 }, "limits.memory_bytes", /at least 64K/],
    [
      { memoryBytes: 1.5 },
      "limits.memory_bytes",
      /a positive whole number of bytes/,
    ],
    [
      { memoryBytes: -1 },
      "limits.memory_bytes",
      /a positive whole number of bytes/,
    ],
    [
      { memoryBytes: hostMemoryBytes() + 4096 },
      "limits.memory_bytes",
      /physical memory of this host/,
    ],
    [{ pids: 0 }, "limits.pids", /at least 1/],
    [{ pids: 2.5 }, "limits.pids", /whole number/],
    [{ io: [{ major: -1, minor: 0, rbps: 1 }] }, "limits.io", /whole numbers/],
    [
      { io: [{ major: 9999, minor: 9999, rbps: 1 }] },
      "limits.io",
      /no block device/,
    ],
  ];
  for (const [requested, field, expected] of cases) {
    const e = fieldOf(() => effectiveLimits(requested, {}));
    assert.equal(e.field, field, JSON.stringify(requested));
    assert.match(e.message, expected, JSON.stringify(requested));
  }
});

Deno.test({
  name: "effectiveLimits merges per-device I/O limits, tighter only",
  ignore: disk === undefined,
  fn() {
    const { major, minor } = disk!;
    const ceiling: Limits = { io: [{ major, minor, rbps: 1000, wbps: 1000 }] };
    assert.deepEqual(
      effectiveLimits({ io: [{ major, minor, wbps: 10, wiops: 5 }] }, ceiling),
      {
        io: [{ major, minor, rbps: 1000, wbps: 10, wiops: 5 }],
      },
    );
    // The ceiling is not changed by a job's request.
    assert.deepEqual(ceiling.io, [{ major, minor, rbps: 1000, wbps: 1000 }]);
    let e = fieldOf(() =>
      effectiveLimits({ io: [{ major, minor, rbps: 1001 }] }, ceiling)
    );
    assert.equal(e.field, "limits.io");
    assert.match(
      e.message,
      new RegExp(
        `^Invalid I/O limit for ${major}:${minor}: rbps may be at most 1000, the server's limit$`,
      ),
    );
    e = fieldOf(() => effectiveLimits({ io: [{ major, minor }] }, ceiling));
    assert.match(e.message, /give at least one of rbps, wbps, riops, wiops/);
    e = fieldOf(() =>
      effectiveLimits({
        io: [{ major, minor, rbps: 1 }, { major, minor, wbps: 1 }],
      }, ceiling)
    );
    assert.match(e.message, /listed twice/);
    e = fieldOf(() =>
      effectiveLimits({ io: [{ major, minor, rbps: 0 }] }, ceiling)
    );
    assert.match(e.message, /rbps must be a whole number from 1/);
  },
});
