/**
 * The registry of `telejob` commands, in the order `telejob --help` lists
 * them. A new command is a file here and one line below.
 * @module
 */
import type { Command } from "./command.ts";
import { list } from "./list.ts";
import { logs } from "./logs.ts";
import { run } from "./run.ts";
import { start } from "./start.ts";
import { status } from "./status.ts";
import { stop } from "./stop.ts";

export type { Command, Context } from "./command.ts";

/** Every command, in help order. */
export const COMMANDS: readonly Command[] = [
  start,
  run,
  stop,
  status,
  list,
  logs,
];
