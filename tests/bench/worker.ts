/**
 * Runs one benchmark section in a process of its own, so that each
 * section's memory readings start from a fresh process and a crash cannot
 * take the others down. Started by `mod.ts`; writes a `SectionResult` as
 * JSON to `--out`.
 *
 *     deno run -A --v8-flags=--expose-gc tests/bench/worker.ts SECTION \
 *       --out FILE --work-dir DIR --cgroup-parent NAME [--floors FILE] [--quick]
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Cleanup } from "./cleanup.ts";
import type { SectionContext } from "./context.ts";
import { planFor } from "./plan.ts";
import { Recorder, type SectionResult } from "./report.ts";
import { type Section, SECTIONS } from "./stats.ts";

/** Loads and runs one section's code. */
async function runSection(
  section: Section,
  ctx: SectionContext,
): Promise<void> {
  switch (section) {
    case "floor":
      return (await import("./floor.ts")).runFloor(ctx);
    case "engine":
      return (await import("./engine.ts")).runEngine(ctx);
    case "api":
      return (await import("./api.ts")).runApi(ctx);
    case "list":
      return (await import("./list.ts")).runList(ctx);
    case "hostile":
      return (await import("./hostile.ts")).runHostile(ctx);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      "work-dir": { type: "string" },
      "cgroup-parent": { type: "string" },
      floors: { type: "string" },
      quick: { type: "boolean", default: false },
    },
  });
  const section = positionals[0] as Section;
  if (!SECTIONS.includes(section) || !values.out || !values["work-dir"]) {
    throw new TypeError(
      "Usage: worker.ts floor|engine|api|list|hostile --out FILE --work-dir DIR --cgroup-parent NAME",
    );
  }
  const began = performance.now();
  const result = (error?: string): SectionResult => ({
    section,
    measurements: rec.measurements,
    notes: rec.notes,
    error,
    seconds: (performance.now() - began) / 1000,
  });
  const write = (r: SectionResult) =>
    Deno.writeTextFile(values.out!, JSON.stringify(r, null, 2));
  // Written after every number: a worker that dies (Deno's node:http2 has
  // aborted this process before) still leaves what it measured.
  const rec: Recorder = new Recorder(() =>
    Deno.writeTextFileSync(values.out!, JSON.stringify(result(), null, 2))
  );
  const cleanup = new Cleanup();

  // The parent sends SIGTERM on Ctrl-C or failure: undo what we made, keep
  // what was measured.
  const onTerm = async () => {
    console.error(`${section}: interrupted, cleaning up`);
    await cleanup.run();
    await write(result("interrupted"));
    Deno.exit(143);
  };
  Deno.addSignalListener("SIGTERM", onTerm);

  const ctx: SectionContext = {
    plan: planFor(values.quick),
    quick: values.quick,
    workDir: values["work-dir"],
    repoRoot: fileURLToPath(new URL("../..", import.meta.url)).replace(
      /\/$/,
      "",
    ),
    cgroupParent: values["cgroup-parent"] ?? `tjbench-${Deno.pid}`,
    rec,
    cleanup,
    floors: values.floors
      ? JSON.parse(await Deno.readTextFile(values.floors))
      : {},
  };
  let error: string | undefined;
  try {
    await runSection(section, ctx);
  } catch (e) {
    error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    console.error(`${section}: failed: ${error}`);
  } finally {
    await cleanup.run();
  }
  Deno.removeSignalListener("SIGTERM", onTerm);
  await write(result(error));
  // Whatever a failed section left pending (timers, a stuck engine) must
  // not keep the worker alive: the parent's backstop removes the rest.
  Deno.exit(0);
}

if (import.meta.main) await main();
