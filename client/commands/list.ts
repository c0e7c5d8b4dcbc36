/**
 * `telejob list`: all your jobs (an admin's: everyone's), oldest first.
 * @module
 */
import type { Command } from "./command.ts";
import { printJobs, TABLE_NOTES } from "./status.ts";

/** `telejob list`. */
export const list: Command = {
  name: "list",
  spec: {
    name: "telejob list",
    usage: "[flags]",
    summary: "Show all your jobs (an admin sees everyone's), oldest first.",
    details: TABLE_NOTES +
      "\nLong argument lists are cut (…) unless --wide (or --output wide) is given.",
    flags: [{
      name: "wide",
      type: "boolean",
      description:
        "Show everything: every argument in full, USER and UID (same as --output wide; --output json always has it all)",
    }],
    positionals: { max: 0, name: "argument" },
  },
  async run(ctx): Promise<number> {
    // One "wide" for list, as in kubectl: every argument and the account.
    if (ctx.args.boolean("wide")) ctx.wide = true;
    const jobs = await ctx.conn.list({ full: ctx.json || ctx.wide });
    jobs.sort((a, b) =>
      Number(a.id) - Number(b.id) || a.id.localeCompare(b.id)
    );
    await printJobs(ctx, jobs, false);
    return 0;
  },
};
