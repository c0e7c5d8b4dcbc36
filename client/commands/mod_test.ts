import assert from "node:assert/strict";
import { COMMANDS } from "./mod.ts";

Deno.test("COMMANDS: every command once, named as telejob calls it", () => {
  const names = COMMANDS.map((c) => c.name);
  assert.deepEqual(names, ["start", "run", "stop", "status", "list", "logs"]);
  for (const cmd of COMMANDS) {
    assert.equal(cmd.spec.name, `telejob ${cmd.name}`);
  }
});

Deno.test("COMMANDS: the commands about one job name it in errors", () => {
  const about = COMMANDS.filter((c) => c.jobId).map((c) => c.name);
  assert.deepEqual(about, ["stop", "status", "logs"]);
});
