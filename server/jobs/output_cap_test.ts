import assert from "node:assert/strict";
import { finalSize, OutputCap } from "./output_cap.ts";
import type { RunningJob } from "./running.ts";

Deno.test("finalSize truncates output past the cap and says it was reached", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/1.out`;
    Deno.writeTextFileSync(path, "abc");
    assert.deepEqual(await finalSize(path, 10), {
      bytes: 3,
      limitReached: false,
    });
    Deno.writeTextFileSync(path, "0123456789abc");
    assert.deepEqual(await finalSize(path, 10), {
      bytes: 10,
      limitReached: true,
    });
    assert.equal(Deno.readTextFileSync(path), "0123456789");
    assert.deepEqual(await finalSize(`${dir}/none.out`, 10), {
      bytes: 0,
      limitReached: false,
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("OutputCap kills a job at the cap, then truncates, and leaves an ending job alone", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const killed: string[] = [];
    const cap = new OutputCap({
      limit: 4,
      path: (id) => `${dir}/${id}.out`,
      kill: (job) => {
        killed.push(job.info.id);
        return Promise.resolve();
      },
    });
    const job = (id: string, phase: RunningJob["phase"]): RunningJob =>
      ({
        info: { id, outputLimitReached: false },
        phase,
        capCheckedAt: 0,
      }) as unknown as RunningJob;
    Deno.writeTextFileSync(`${dir}/1.out`, "123456");
    Deno.writeTextFileSync(`${dir}/2.out`, "123456");
    Deno.writeTextFileSync(`${dir}/3.out`, "12");
    const [over, ending, under] = [
      job("1", "running"),
      job("2", "ending"),
      job("3", "running"),
    ];
    for (const j of [over, ending, under]) cap.schedule(j);
    await over.capCheck;
    assert.deepEqual(killed, ["1"]);
    assert.equal(over.info.outputLimitReached, true);
    assert.equal(Deno.readTextFileSync(`${dir}/1.out`), "1234");
    assert.equal(ending.info.outputLimitReached, false);
    assert.equal(under.info.outputLimitReached, false);
    // A second event within the interval arms one timer; release it.
    cap.schedule(under);
    clearTimeout(under.capTimer);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
