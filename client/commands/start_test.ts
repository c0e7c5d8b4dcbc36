import assert from "node:assert/strict";
import { parseCommand } from "../../common/args.ts";
import { ValueError } from "../../common/units.ts";
import { start, startRequest } from "./start.ts";

const parse = (args: string[]) =>
  parseCommand(start.spec, args, { env: () => undefined });

Deno.test("startRequest: the command line as the server's StartRequest", () => {
  const req = startRequest(
    parse(["-e", "A=1", "--cpu", "0.5", "--memory", "1M", "ls", "-l"]),
  );
  assert.equal(req.command, "ls");
  assert.deepEqual(req.args, ["-l"]);
  assert.deepEqual(req.env, ["A=1"]);
  assert.equal(req.limits?.cpu, 0.5);
  assert.equal(req.limits?.memoryBytes, 1024 * 1024);
  assert.equal(req.limits?.pids, 0);
});

Deno.test("start.validate: a bad value names its flag", () => {
  assert.throws(
    () => start.validate!(parse(["-e", "=x", "ls"])),
    (err) =>
      err instanceof ValueError && /^Invalid --env "=x"/.test(err.message),
  );
  assert.throws(
    () => start.validate!(parse(["--pids", "0", "ls"])),
    ValueError,
  );
  // The server's rule for env keys (common/validate.ts), not just "has an =".
  for (const entry of ["1A=x", "A-B=x", "=x", "A"]) {
    assert.throws(
      () => start.validate!(parse(["-e", entry, "ls"])),
      (err) =>
        err instanceof ValueError &&
        err.message.startsWith(
          `Invalid --env ${JSON.stringify(entry)}: use KEY=VALUE`,
        ),
      entry,
    );
  }
  start.validate!(parse(["-e", "_a1=", "-e", "A=b=c", "ls"]));
});
