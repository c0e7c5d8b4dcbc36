import assert from "node:assert/strict";
import {
  hostCpus,
  parseIo,
  parseLimitFlags,
  parseMemory,
  splitRdev,
} from "./limits.ts";
import { wholeDisk } from "./testing.ts";

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
