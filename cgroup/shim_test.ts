/**
 * The shim with real processes. Plain files stand in for `cgroup.procs` here
 * (the shim only writes its pid into them); entering real cgroups is proven
 * in `enforcement_test.ts`.
 */
import assert from "node:assert/strict";
import { SHIM_FAILURE_EXIT_CODE, shimCommand } from "./shim.ts";

interface Run {
  status: Deno.CommandStatus;
  pid: number;
  output: string;
  procs: string[];
}

async function run(
  command: string,
  args: string[],
  options: { procsFiles?: string[]; output?: string } = {},
): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "telejob-shim-test-" });
  try {
    const procsFiles = options.procsFiles ??
      [`${dir}/a.procs`, `${dir}/b.procs`];
    const outputPath = `${dir}/output`;
    if (options.output !== undefined) {
      await Deno.writeTextFile(outputPath, options.output);
    }
    const shim = shimCommand(command, args, { procsFiles, outputPath });
    assert.equal(shim.program, "/bin/sh");
    const child = new Deno.Command(shim.program, {
      args: shim.args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
      cwd: "/",
    }).spawn();
    const status = await child.status;
    const procs: string[] = [];
    for (const file of procsFiles) {
      procs.push(await Deno.readTextFile(file).catch(() => "<missing>"));
    }
    const output = await Deno.readTextFile(outputPath).catch(() => "<missing>");
    return { status, pid: child.pid, output, procs };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("shim writes its own pid into every procs file, then execs", async () => {
  // $PPID of the command is the shim's parent: the shim exec'd, it did not fork.
  const r = await run("/bin/sh", ["-c", 'echo "pid=$$"']);
  assert.equal(r.status.code, 0, r.output);
  assert.deepEqual(r.procs, [`${r.pid}\n`, `${r.pid}\n`]);
  assert.equal(r.output, `pid=${r.pid}\n`);
});

Deno.test("arguments are passed verbatim, never interpreted by the shell", async () => {
  const hostile = [
    "$(touch /tmp/telejob-pwned)",
    "`id`",
    "'; echo injected; '",
    '" && echo injected',
    "a\nb",
    "$1 $@ $$",
    "*",
    "",
    "--",
    "-n",
    "\\",
    "é ü 🙂",
  ];
  const r = await run("/usr/bin/printf", ["[%s]\\n", ...hostile]);
  assert.equal(r.status.code, 0, r.output);
  assert.equal(r.output, hostile.map((a) => `[${a}]\n`).join(""));
  await assert.rejects(() => Deno.stat("/tmp/telejob-pwned"));
});

Deno.test("a leading-dash argument reaches the command; a missing command exits 127", async () => {
  const r = await run("/bin/echo", ["-e", "x"]);
  assert.equal(r.output, "x\n");
  const missing = await run("/no such/-cmd", ["a"]);
  assert.equal(missing.status.code, 127);
  assert.match(
    missing.output,
    /failed to execute \/no such\/-cmd: No such file or directory/,
  );
});

Deno.test("stdout and stderr share one fd, appended to the output file", async () => {
  const r = await run(
    "/bin/sh",
    ["-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2; read x; echo read=$?"],
    { output: "earlier\n" },
  );
  assert.equal(r.output, "earlier\n1\n2\n3\n4\nread=1\n");
});

Deno.test("stdout and stderr use one open file description (O_APPEND)", async () => {
  const r = await run("/bin/sh", [
    "-c",
    "readlink /proc/self/fd/1 /proc/self/fd/2; grep flags /proc/self/fdinfo/1",
  ]);
  const [out, err, flags] = r.output.trim().split("\n");
  assert.equal(out, err);
  assert.ok(out.endsWith("/output"), out);
  // 02000 is O_APPEND (octal flags in fdinfo).
  const value = parseInt(flags.split(/\s+/)[1], 8);
  assert.ok(value & 0o2000, flags);
});

Deno.test("the command never runs when a procs file cannot be written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const marker = `${dir}/ran`;
    const r = await run("/usr/bin/touch", [marker], {
      procsFiles: [`${dir}/ok.procs`, `${dir}/missing/cgroup.procs`],
    });
    assert.equal(r.status.code, SHIM_FAILURE_EXIT_CODE);
    assert.match(
      r.output,
      /telejob: could not move the job into its cgroup \(.*missing\/cgroup\.procs\); the command was not run/,
    );
    await assert.rejects(() => Deno.stat(marker), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the command never runs when the output file cannot be opened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const marker = `${dir}/ran`;
    const shim = shimCommand("/usr/bin/touch", [marker], {
      procsFiles: [],
      outputPath: `${dir}/missing/output`,
    });
    const status = await new Deno.Command(shim.program, {
      args: shim.args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(status.code, SHIM_FAILURE_EXIT_CODE);
    await assert.rejects(() => Deno.stat(marker), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shimCommand refuses NUL bytes and an empty command", () => {
  const options = { procsFiles: ["/x"], outputPath: "/y" };
  assert.throws(
    () => shimCommand("", [], options),
    /Invalid command: it is empty/,
  );
  assert.throws(
    () => shimCommand("/bin/echo", ["ok", "a\0b"], options),
    /Invalid argument 2: it contains a NUL byte/,
  );
  assert.throws(
    () => shimCommand("/bin/e\0cho", [], options),
    /Invalid command: it contains a NUL byte/,
  );
});

Deno.test("many and large arguments pass through", async () => {
  const args = Array.from({ length: 5000 }, (_, i) => `arg${i}`);
  args.push("x".repeat(100_000));
  const r = await run("/bin/sh", [
    "-c",
    'echo "$#"; echo "${#5001}"',
    "sh",
    ...args,
  ]);
  assert.equal(r.output, "5001\n100000\n");
});

Deno.test("the shim needs no PATH: it uses shell builtins only", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const shim = shimCommand("/bin/echo", ["hi"], {
      procsFiles: [`${dir}/procs`],
      outputPath: `${dir}/out`,
    });
    const status = await new Deno.Command(shim.program, {
      args: shim.args,
      clearEnv: true,
      env: {},
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(status.code, 0);
    assert.equal(await Deno.readTextFile(`${dir}/out`), "hi\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
