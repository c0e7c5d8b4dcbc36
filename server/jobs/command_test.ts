import assert from "node:assert/strict";
import { BASE_PATH, buildEnv, resolveCommand } from "./command.ts";
import { JobError } from "./errors.ts";

async function rejects(
  promise: Promise<unknown>,
  field: string,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof JobError, `not a JobError: ${error}`);
    assert.equal(error.code, "invalid_argument");
    assert.equal(error.field, field);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("resolveCommand resolves a name on the base PATH", async () => {
  const resolved = await resolveCommand({ command: "sh", args: ["-c", "x"] });
  assert.match(resolved.program, /^\/(usr\/)?bin\/sh$/);
  assert.equal(resolved.command, "sh");
  assert.deepEqual(resolved.args, ["-c", "x"]);
  assert.equal(resolved.cwd, "/");
  assert.equal(resolved.env.PATH, BASE_PATH);
  assert.ok(resolved.env.HOME);
});

Deno.test("resolveCommand uses the request's PATH", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/mytool`, "#!/bin/sh\n", { mode: 0o755 });
    const resolved = await resolveCommand({
      command: "mytool",
      env: [`PATH=${dir}`],
    });
    assert.equal(resolved.program, `${dir}/mytool`);
    await rejects(
      resolveCommand({ command: "mytool" }),
      "command",
      /not found/,
    );
    // The request's PATH replaces the base one.
    await rejects(
      resolveCommand({ command: "sh", env: [`PATH=${dir}`] }),
      "command",
      /not found/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveCommand refuses empty, missing and non-executable commands", async () => {
  await rejects(resolveCommand({ command: "" }), "command", /empty/);
  await rejects(
    resolveCommand({ command: "no-such-command-telejob" }),
    "command",
    /not found/,
  );
  await rejects(
    resolveCommand({ command: "/no/such/file" }),
    "command",
    /does not exist/,
  );
  await rejects(
    resolveCommand({ command: "/etc" }),
    "command",
    /not a regular/,
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/plain`, "data", { mode: 0o644 });
    await rejects(
      resolveCommand({ command: `${dir}/plain` }),
      "command",
      /not executable/,
    );
    await rejects(
      resolveCommand({ command: "plain", env: [`PATH=${dir}`] }),
      "command",
      /not executable/,
    );
    // A relative path is taken against the job's working directory.
    await rejects(
      resolveCommand({ command: "./plain", cwd: dir }),
      "command",
      /not executable/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveCommand refuses NUL bytes everywhere", async () => {
  await rejects(resolveCommand({ command: "ec\0ho" }), "command", /NUL/);
  await rejects(
    resolveCommand({ command: "echo", args: ["a", "b\0"] }),
    "args",
    /Argument 2 .*NUL/,
  );
  await rejects(
    resolveCommand({ command: "echo", env: ["A=\0"] }),
    "env",
    /NUL/,
  );
  await rejects(
    resolveCommand({ command: "echo", cwd: "/tmp\0" }),
    "cwd",
    /NUL/,
  );
});

Deno.test("resolveCommand refuses bad env entries", async () => {
  for (const entry of ["NOEQUALS", "=value", "1A=x", "A-B=x", "A B=x"]) {
    await rejects(
      resolveCommand({ command: "echo", env: [entry] }),
      "env",
      /KEY=VALUE/,
    );
  }
});

Deno.test("resolveCommand refuses a bad cwd", async () => {
  await rejects(
    resolveCommand({ command: "echo", cwd: "tmp" }),
    "cwd",
    /not absolute/,
  );
  await rejects(
    resolveCommand({ command: "echo", cwd: "/no/such/dir" }),
    "cwd",
    /does not exist/,
  );
  await rejects(
    resolveCommand({ command: "echo", cwd: "/etc/passwd" }),
    "cwd",
    /not a directory/,
  );
});

Deno.test("buildEnv starts clean and lets the request override", () => {
  const env = buildEnv(["A=1", "PATH=/x", "B=with=equals", "A=2", "E="], {
    home: "/home/h",
  });
  assert.deepEqual(env, {
    PATH: "/x",
    HOME: "/home/h",
    A: "2",
    B: "with=equals",
    E: "",
  });
});
