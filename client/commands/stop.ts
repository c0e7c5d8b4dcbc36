/**
 * `telejob stop`: SIGTERM, then SIGKILL after the grace period.
 * @module
 */
import { parseDuration } from "../../common/units.ts";
import { jobJson } from "../table.ts";
import { type Command, firstPositional } from "./command.ts";

/** `telejob stop`. */
export const stop: Command = {
  name: "stop",
  spec: {
    name: "telejob stop",
    usage: "[flags] ID",
    summary:
      "Stop a job: SIGTERM to all its processes, SIGKILL to what is left after the grace period. Stopping an ended job is not an error.",
    flags: [{
      name: "grace",
      type: "string",
      value: "DURATION",
      default: "10s",
      description: "Time between SIGTERM and SIGKILL, like 10s, 500ms or 0",
    }],
    positionals: { min: 1, max: 1, name: "job ID" },
  },
  validate(args): void {
    parseDuration("--grace", args.string("grace")!);
  },
  jobId: firstPositional,
  async run(ctx): Promise<number> {
    const id = ctx.args.positionals[0];
    const graceMs = parseDuration("--grace", ctx.args.string("grace")!);
    const job = await ctx.conn.stop(id, { graceMs });
    if (ctx.json && job) await ctx.out.json(jobJson(job));
    return 0;
  },
};
