import assert from "node:assert/strict";
import { serverMain } from "./main.ts";

// The whole program (start-up, serving, signals) is tested as a real process
// in tests/server_*_test.ts; these cover the exits that need no server.

Deno.test("serverMain returns 0 for --help and 2 for a usage error", async () => {
  const log = console.log;
  const error = console.error;
  const out: string[] = [];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => out.push(a.join(" "));
  try {
    assert.equal(await serverMain(["--help"]), 0);
    assert.ok(out.join("\n").includes("Usage: telejob-server"));
    out.length = 0;
    assert.equal(await serverMain(["--no-such-flag"]), 2);
    assert.match(out.join("\n"), /Unknown flag --no-such-flag/);
  } finally {
    console.log = log;
    console.error = error;
  }
});
