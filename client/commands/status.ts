/**
 * `telejob status`: one job as a table or JSON. Also owns the table help
 * and printing that `telejob list` shares.
 * @module
 */
import type { Job } from "../../proto/gen/telejob/v1/telejob.ts";
import { jobJson, jobTable } from "../table.ts";
import { type Command, type Context, firstPositional } from "./command.ts";

/** The help text that explains the job table's columns. */
export const TABLE_NOTES =
  `An OWNER column appears when the table shows other users' jobs (admins).
STATE is running, or for an ended job: stopped (by a user), exited, or lost
(it was running when an earlier server process died). EXIT is the exit code,
the name of the signal that ended it, oom (killed by the out-of-memory
killer), stopped (by a user), or output-limit (its output reached the cap).
--output wide adds USER and UID: the server account the job runs as.
Times are local; set the layout with --time-format.`;

/** Prints `jobs` as `--output` asks: one JSON object when `single`. */
export async function printJobs(
  ctx: Context,
  jobs: Job[],
  single: boolean,
): Promise<void> {
  if (ctx.json) {
    await ctx.out.json(single ? jobJson(jobs[0]) : jobs.map(jobJson));
  } else {
    // Only an admin sees other users' jobs; they get an OWNER column.
    const owner = jobs.some((job) => job.owner !== ctx.conn.user);
    await ctx.out.text(
      jobTable(jobs, { layout: ctx.layout, owner, wide: ctx.wide }),
    );
  }
}

/** `telejob status`. */
export const status: Command = {
  name: "status",
  spec: {
    name: "telejob status",
    usage: "[flags] ID",
    summary: "Show a job as a table (or JSON).",
    details: TABLE_NOTES,
    flags: [],
    positionals: { min: 1, max: 1, name: "job ID" },
  },
  jobId: firstPositional,
  async run(ctx): Promise<number> {
    await printJobs(
      ctx,
      [await ctx.conn.status(ctx.args.positionals[0])],
      true,
    );
    return 0;
  },
};
