/**
 * Start cost of the engine in one tree against another, interleaved:
 *
 *     deno run -A tests/bench/start_compare.ts ROOT_A ROOT_B [ROUNDS]
 *
 * Each round runs, for A then B, in a fresh child process of its own: 20
 * warm-up starts, 2,000 serial `engine.start` of `true` (p50, as the engine
 * section of `deno task bench` measures it) and 5,000 starts of `true` at 16
 * in flight (starts/s). ROOT_A and ROOT_B are checkouts (e.g. main and a
 * branch); each child imports the engine from its root. Rounds alternate so
 * both see the same load. Results are JSON lines on stdout. Needs root.
 * @module
 */
import { join } from "node:path";

const CHILD = `
const [root, parent] = Deno.args;
const { JobEngine } = await import(root + "/server/jobs/mod.ts");
const { detectDriver } = await import(root + "/cgroup/mod.ts");
const dataDir = await Deno.makeTempDir({ prefix: "tj-startcmp-" });
const engine = await JobEngine.open({ dataDir, cgroups: await detectDriver({ parent }) });
const until = async (ids) => { for (const id of ids) for await (const _ of engine.logs("bench", id, { follow: true })); };
const ids = [];
for (let i = 0; i < 20; i++) ids.push((await engine.start("bench", { command: "true" })).id);
await until(ids.splice(0));
const lat = [];
for (let i = 0; i < 2000; i++) {
  const t0 = performance.now();
  ids.push((await engine.start("bench", { command: "true" })).id);
  lat.push(performance.now() - t0);
}
await until(ids.splice(0));
lat.sort((a, b) => a - b);
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next++ < 5000) ids.push((await engine.start("bench", { command: "true" })).id);
}));
const rate = 5000 / ((performance.now() - t0) / 1000);
await until(ids.splice(0));
await engine.shutdown({ graceMs: 0 });
await Deno.remove(dataDir, { recursive: true });
console.log(JSON.stringify({ root, p50: lat[1000], p99: lat[1980], rate }));
`;

if (import.meta.main) {
  const [a, b, rounds = "3"] = Deno.args;
  if (!a || !b) {
    console.error("usage: start_compare.ts ROOT_A ROOT_B [ROUNDS]");
    Deno.exit(2);
  }
  const script = join(await Deno.makeTempDir(), "child.mjs");
  await Deno.writeTextFile(script, CHILD);
  for (let round = 0; round < Number(rounds); round++) {
    for (const root of [a, b]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          script,
          await Deno.realPath(root),
          `tjcmp-${Deno.pid}`,
        ],
        stderr: "inherit",
      }).output();
      const line = new TextDecoder().decode(out.stdout).trim();
      console.log(JSON.stringify({ round, ...JSON.parse(line || "{}") }));
    }
  }
}
