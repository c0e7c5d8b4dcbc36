/**
 * `telejob logs`: a job's output, byte for byte, optionally following.
 * @module
 */
import { parseCount } from "../../common/units.ts";
import { type Command, firstPositional } from "./command.ts";

/** `telejob logs`. */
export const logs: Command = {
  name: "logs",
  spec: {
    name: "telejob logs",
    usage: "[flags] ID",
    summary:
      "Write a job's output (stdout and stderr as the job interleaved them) to stdout, byte for byte.",
    flags: [{
      name: "follow",
      short: "f",
      type: "boolean",
      description: "Keep writing new output until the job has ended",
    }, {
      name: "tail",
      short: "n",
      type: "string",
      value: "BYTES",
      description: "Start this many bytes before the end",
    }],
    positionals: { min: 1, max: 1, name: "job ID" },
  },
  validate(args): void {
    const tail = args.string("tail");
    if (tail !== undefined) parseCount("--tail", tail);
  },
  jobId: firstPositional,
  async run(ctx): Promise<number> {
    const tail = ctx.args.string("tail");
    const stream = ctx.conn.logs({
      id: ctx.args.positionals[0],
      follow: ctx.args.boolean("follow"),
      offset: 0,
      tail: tail === undefined ? undefined : parseCount("--tail", tail),
    });
    for await (const chunk of stream) await ctx.out.bytes(chunk);
    return 0;
  },
};
