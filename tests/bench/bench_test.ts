// Smoke test of the benchmark's pure helpers. No timing is asserted: the
// clock given to runConcurrent is a counter.
import assert from "node:assert/strict";
import { Cleanup } from "./cleanup.ts";
import { QUICK_PLAN } from "./plan.ts";
import { formatReport, Recorder } from "./report.ts";
import {
  formatBytes,
  formatNumber,
  formatTable,
  mbPerSecond,
  parseBenchArgs,
  parseSize,
  percentile,
  runConcurrent,
  runFor,
  summarize,
  verdict,
} from "./stats.ts";

Deno.test("percentile interpolates between ranks", () => {
  const samples = [5, 1, 4, 2, 3];
  assert.equal(percentile(samples, 0), 1);
  assert.equal(percentile(samples, 50), 3);
  assert.equal(percentile(samples, 100), 5);
  assert.equal(percentile(samples, 25), 2);
  assert.equal(percentile([1, 2], 50), 1.5);
  assert.equal(percentile([7], 99), 7);
  const hundred = Array.from({ length: 101 }, (_, i) => i);
  assert.equal(percentile(hundred, 99), 99);
  assert.throws(() => percentile([], 50), /no samples/);
  assert.throws(() => percentile([1], 101), /0\.\.100/);
});

Deno.test("summarize reports the order statistics and the mean", () => {
  const s = summarize([10, 0, 20, 30, 40]);
  assert.deepEqual(s, {
    count: 5,
    min: 0,
    p50: 20,
    p90: 36,
    p99: 39.6,
    max: 40,
    mean: 20,
  });
});

Deno.test("runConcurrent never exceeds the in-flight bound and runs each index once", async () => {
  const seen: number[] = [];
  let running = 0;
  let peak = 0;
  let clock = 0;
  const run = await runConcurrent(50, 4, async (i) => {
    running++;
    peak = Math.max(peak, running);
    await Promise.resolve();
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    seen.push(i);
    running--;
    return i * 2;
  }, { now: () => clock++ });
  assert.equal(peak, 4);
  assert.equal(run.maxInFlight, 4);
  assert.deepEqual([...seen].sort((a, b) => a - b), [...Array(50).keys()]);
  assert.equal(run.results.length, 50);
  assert.equal(run.errors.length, 0);
  assert.equal(run.elapsedMs, 1);
});

Deno.test("runConcurrent stops starting calls after a failure", async () => {
  let calls = 0;
  const run = await runConcurrent(100, 1, (i) => {
    calls++;
    return i === 3 ? Promise.reject(new Error("boom")) : Promise.resolve(i);
  });
  assert.equal(calls, 4);
  assert.equal(run.results.length, 3);
  assert.equal((run.errors[0] as Error).message, "boom");
  await assert.rejects(
    () => runConcurrent(1, 0, () => Promise.resolve()),
    /inFlight/,
  );
});

Deno.test("parseBenchArgs picks sections, quick mode and the JSON file", () => {
  assert.deepEqual(parseBenchArgs([]), {
    sections: ["floor", "engine", "api", "list", "hostile"],
    quick: false,
    json: undefined,
    markdown: undefined,
    help: false,
  });
  assert.deepEqual(parseBenchArgs(["api", "floor", "--quick", "--json", "x"]), {
    sections: ["floor", "api"],
    quick: true,
    json: "x",
    markdown: undefined,
    help: false,
  });
  assert.equal(parseBenchArgs(["--markdown", "r.md"]).markdown, "r.md");
  assert.equal(parseBenchArgs(["--json=y.json"]).json, "y.json");
  assert.throws(() => parseBenchArgs(["--json"]), /--json needs a file/);
  assert.throws(() => parseBenchArgs(["engin"]), /Unknown argument "engin"/);
});

Deno.test("verdict says whether a target is met and by how much it is missed", () => {
  assert.equal(verdict(1.5, { op: "<=", value: 2 }), "met");
  assert.equal(verdict(4, { op: "<=", value: 2 }), "missed 2.00x");
  assert.equal(verdict(1000, { op: ">=", value: 1000 }), "met");
  assert.equal(verdict(250, { op: ">=", value: 1000 }), "missed 4.00x");
});

Deno.test("number, size and table formatting", () => {
  assert.equal(formatNumber(0.01234), "0.012");
  assert.equal(formatNumber(1.234), "1.23");
  assert.equal(formatNumber(12.34), "12.3");
  assert.equal(formatNumber(123.4), "123");
  assert.equal(formatNumber(12345.6), "12,346");
  assert.equal(formatBytes(16 * 1024), "16.0 KiB");
  assert.equal(formatBytes(3 * 2 ** 30), "3.00 GiB");
  assert.equal(parseSize("10G"), 10 * 2 ** 30);
  assert.equal(parseSize("512m"), 512 * 2 ** 20);
  assert.equal(parseSize("4096"), 4096);
  assert.throws(() => parseSize("1.5G"), /Invalid size "1.5G"/);
  assert.equal(mbPerSecond(2e9, 2000), 1000);
  assert.equal(formatTable([["a", "bb"], ["ccc", "d"]]), "a    bb\nccc  d");
});

Deno.test("the report shows value, floor, target and verdict", () => {
  const rec = new Recorder();
  const quiet = console.error;
  console.error = () => {};
  try {
    rec.add({
      key: "engine.start.p50",
      label: "start p50",
      value: 3,
      unit: "ms",
      floor: 0.5,
      target: { op: "<=", value: 2 },
    });
    rec.note("ramp stopped at 100");
  } finally {
    console.error = quiet;
  }
  assert.equal(rec.value("engine.start.p50"), 3);
  const text = formatReport({
    machine: {
      date: "d",
      hostname: "h",
      kernel: "k",
      cpus: 2,
      cpuModel: "cpu",
      memTotalBytes: 2 ** 30,
      deno: "2",
      v8: "v",
      loadBefore: [0, 0, 0],
      fdLimit: "20000",
    },
    quick: true,
    sections: [{
      section: "engine",
      measurements: rec.measurements,
      notes: rec.notes,
      seconds: 1,
    }],
  });
  assert.match(
    text,
    /start p50\s+3\.00 ms\s+0\.50 ms\s+<= 2\.00 ms\s+missed 1\.50x/,
  );
  assert.match(text, /- ramp stopped at 100/);
  assert.ok(QUICK_PLAN.concurrentTarget < 15_000);
});

Deno.test("Cleanup runs every step newest first, also after one fails", async () => {
  const order: string[] = [];
  const cleanup = new Cleanup();
  cleanup.defer("a", () => {
    order.push("a");
  });
  const drop = cleanup.defer("dropped", () => {
    order.push("dropped");
  });
  cleanup.defer("b", () => {
    throw new Error("b failed");
  });
  cleanup.defer("c", () => {
    order.push("c");
  });
  drop();
  const quiet = console.error;
  console.error = () => {};
  try {
    await cleanup.run();
  } finally {
    console.error = quiet;
  }
  assert.deepEqual(order, ["c", "a"]);
  await cleanup.run();
  assert.deepEqual(order, ["c", "a"]);
});

Deno.test("runFor keeps the lanes busy until the duration has passed", async () => {
  let clock = 0;
  let running = 0;
  let peak = 0;
  const run = await runFor(10, 3, async () => {
    running++;
    peak = Math.max(peak, running);
    await Promise.resolve();
    clock++;
    running--;
  }, { now: () => clock });
  assert.equal(peak, 3);
  assert.ok(run.count >= 10 && run.count <= 12, `count ${run.count}`);
  assert.equal(run.elapsedMs, clock);
  await assert.rejects(
    () => runFor(10, 2, () => Promise.reject(new Error("down"))),
    /down/,
  );
});
