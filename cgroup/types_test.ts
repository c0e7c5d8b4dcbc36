import assert from "node:assert/strict";
import {
  CFS_PERIOD_US,
  cpuQuotaUs,
  emptyUsage,
  limitNeeds,
  V1_HIERARCHY_OF,
} from "./types.ts";

Deno.test("cpuQuotaUs: cores per CFS period, at least the kernel's 1 ms", () => {
  assert.equal(CFS_PERIOD_US, 100000);
  assert.equal(cpuQuotaUs(0.5), 50000);
  assert.equal(cpuQuotaUs(2), 200000);
  assert.equal(cpuQuotaUs(0.001), 1000);
  assert.equal(cpuQuotaUs(0.00001), 1000);
});

Deno.test("limitNeeds names each limit's controller, which v1 maps to its hierarchy", () => {
  const needs = limitNeeds({
    cpu: 1,
    memoryBytes: 1,
    pids: 1,
    io: [{ major: 8, minor: 0, rbps: 1 }],
  });
  assert.deepEqual(needs.map((n) => n.controller), [
    "cpu",
    "memory",
    "pids",
    "io",
  ]);
  assert.deepEqual(needs.map((n) => V1_HIERARCHY_OF[n.controller]), [
    "cpu",
    "memory",
    "pids",
    "blkio",
  ]);
  assert.deepEqual(limitNeeds({ io: [] }), []);
  assert.deepEqual(emptyUsage(), {
    cpuUsec: 0,
    memoryPeakBytes: 0,
    ioReadBytes: 0,
    ioWriteBytes: 0,
  });
});
