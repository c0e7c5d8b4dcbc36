/**
 * The startup shim (`telejob-shim`, built from `shim/telejob_shim.c`) with
 * real processes. Plain files stand in for `cgroup.procs` here (the shim
 * only writes its pid into them); entering real cgroups is proven in
 * `enforcement_test.ts`, and the isolation a server gives its jobs in
 * `tests/isolation_test.ts`.
 */
import assert from "node:assert/strict";
import { buildShim } from "../shim/build.ts";
import {
  type RunAs,
  SHIM_FAILURE_EXIT_CODE,
  shimCommand,
  type ShimOptions,
} from "./shim.ts";

const SHIM = await buildShim();
const ROOT: RunAs = { uid: 0, gid: 0, groups: [] };
const NOBODY: RunAs = { uid: 65534, gid: 65534, groups: [] };

interface Run {
  status: Deno.CommandStatus;
  pid: number;
  output: string;
  procs: string[];
}

async function run(
  command: string,
  args: string[],
  options: Partial<ShimOptions> & { output?: string } = {},
): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "telejob-shim-test-" });
  try {
    const procsFiles = options.procsFiles ??
      [`${dir}/a.procs`, `${dir}/b.procs`];
    // cgroup.procs files always exist; the shim opens them, never creates.
    for (const file of procsFiles) {
      await Deno.writeTextFile(file, "").catch(() => {});
    }
    const outputPath = `${dir}/output`;
    if (options.output !== undefined) {
      await Deno.writeTextFile(outputPath, options.output);
    }
    const shim = shimCommand(command, args, {
      shim: SHIM,
      cwd: "/",
      env: { PATH: "/usr/bin:/bin" },
      runAs: ROOT,
      ...options,
      procsFiles,
      outputPath,
    });
    assert.equal(shim.program, SHIM);
    const child = new Deno.Command(shim.program, {
      args: shim.args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      clearEnv: true,
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

Deno.test("a leading-dash argument reaches the command; a missing command is the shim's failure", async () => {
  const r = await run("/bin/echo", ["-e", "x"]);
  assert.equal(r.output, "x\n");
  const missing = await run("/no such/-cmd", ["a"]);
  assert.equal(missing.status.code, SHIM_FAILURE_EXIT_CODE);
  assert.equal(
    missing.output,
    "telejob-shim: cannot run /no such/-cmd as uid 0: No such file or directory\n",
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
      /^telejob-shim: could not move the job into its cgroup \(.*missing\/cgroup\.procs: No such file or directory\); the command was not run\n$/,
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
      shim: SHIM,
      procsFiles: [],
      outputPath: `${dir}/missing/output`,
      cwd: "/",
      env: {},
      runAs: ROOT,
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
  const options = {
    shim: SHIM,
    procsFiles: ["/x"],
    outputPath: "/y",
    cwd: "/",
    env: {},
    runAs: ROOT,
  };
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

Deno.test("the environment reaches the command exactly, and only it", async () => {
  const r = await run("/usr/bin/env", [], {
    env: { A: "1", B: "x=y z", LD_PRELOAD: "/nonexistent.so" },
  });
  assert.equal(r.status.code, 0, r.output);
  // The missing preload makes ld.so warn in the command, never in the shim.
  assert.match(r.output, /^A=1\nB=x=y z\nLD_PRELOAD=\/nonexistent\.so\n$/m);
});

Deno.test("the job runs as the identity, with no capabilities, no_new_privs and only fds 0-2", async () => {
  const r = await run("/bin/sh", [
    "-c",
    "id -u; id -g; id -G; grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; ls /proc/self/fd",
  ], { runAs: { ...NOBODY, groups: [1, 2] } });
  assert.equal(r.status.code, 0, r.output);
  const lines = r.output.trim().split("\n");
  assert.deepEqual(lines.slice(0, 3), ["65534", "65534", "65534 1 2"]);
  for (const line of lines.slice(3, 7)) {
    assert.match(line, /:\s+0000000000000000$/, line);
  }
  assert.match(lines[7], /^NoNewPrivs:\s+1$/);
  // ls's own directory fd is the 3 it lists; nothing else is open.
  assert.deepEqual(lines.slice(8), ["0", "1", "2", "3"]);
});

Deno.test("the shim's own fds do not reach the job, nor do inherited ones", async () => {
  // Deno opens no fd above 2 for its children; a wrapper shell leaks fd 7.
  const dir = await Deno.makeTempDir();
  try {
    const shim = shimCommand("/bin/ls", ["/proc/self/fd"], {
      shim: SHIM,
      procsFiles: [],
      outputPath: `${dir}/out`,
      cwd: "/",
      env: {},
      runAs: NOBODY,
    });
    const status = await new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'exec 7</dev/null; exec "$@"',
        "sh",
        shim.program,
        ...shim.args,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(status.code, 0);
    assert.equal(await Deno.readTextFile(`${dir}/out`), "0\n1\n2\n3\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the working directory is entered as the identity, after the drop", async () => {
  const dir = await Deno.makeTempDir(); // 0700 root: nobody may not enter
  try {
    const asRoot = await run("/bin/pwd", [], { cwd: dir });
    assert.equal(asRoot.output, `${dir}\n`);
    const asNobody = await run("/bin/pwd", [], { cwd: dir, runAs: NOBODY });
    assert.equal(asNobody.status.code, SHIM_FAILURE_EXIT_CODE);
    assert.equal(
      asNobody.output,
      `telejob-shim: cannot enter the working directory ${dir} as uid 65534: Permission denied; the command was not run\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the shim is static: no dynamic loader, so no LD_PRELOAD in it", async () => {
  const elf = await Deno.readFile(SHIM);
  // No PT_INTERP program header: the kernel runs it without ld.so.
  const view = new DataView(elf.buffer);
  const phoff = Number(view.getBigUint64(0x20, true));
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    assert.notEqual(
      view.getUint32(phoff + i * phentsize, true),
      3,
      "PT_INTERP",
    );
  }
});

Deno.test("the shim needs no environment of its own", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/procs`, "");
    const shim = shimCommand("/bin/echo", ["hi"], {
      shim: SHIM,
      procsFiles: [`${dir}/procs`],
      outputPath: `${dir}/out`,
      cwd: "/",
      env: {},
      runAs: ROOT,
    });
    const status = await new Deno.Command(shim.program, {
      args: shim.args,
      clearEnv: true,
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
