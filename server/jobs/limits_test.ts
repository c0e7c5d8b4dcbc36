import assert from "node:assert/strict";
import { wholeDisk } from "../../cgroup/testing.ts";
import { hostCpus, hostMemoryBytes, type Limits } from "../../cgroup/mod.ts";
import { JobError } from "./errors.ts";
import { effectiveLimits } from "./limits.ts";

const disk = wholeDisk();

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
