/**
 * The job engine: runs commands under cgroup limits, stops whole process
 * trees, keeps and streams every byte of output, and remembers every job
 * across restarts. It knows nothing of gRPC.
 *
 * ```ts ignore
 * import { detectDriver } from "../../cgroup/mod.ts";
 * import { JobEngine } from "./mod.ts";
 *
 * const engine = await JobEngine.open({
 *   dataDir: "/var/lib/telejob",
 *   cgroups: await detectDriver(),
 * });
 * const job = await engine.start("alice", { command: "echo", args: ["hi"] });
 * for await (const chunk of engine.logs("alice", job.id, { follow: true })) {
 *   await Deno.stdout.write(chunk);
 * }
 * await engine.shutdown();
 * ```
 *
 * Modules: `engine.ts` (the {@linkcode JobEngine}), `start.ts` (the start
 * path), `end.ts` (a job's end), `recovery.ts` (jobs a dead server left),
 * `output_cap.ts` (output-cap policing), `command.ts` (resolving the
 * command; the request rules are `common/validate.ts`), `output.ts` (output
 * files, the one watcher, readers), `store.ts` (job records in SQLite).
 * @module
 */
export * from "./types.ts";
export * from "./errors.ts";
export type { ListPage } from "./store.ts";
export {
  DEFAULT_GRACE_MS,
  DEFAULT_OUTPUT_LIMIT_BYTES,
  type EngineOptions,
  JobEngine,
} from "./engine.ts";
