/**
 * The startup shim alone, before and after the static helper, interleaved:
 *
 *     deno run -A tests/bench/shim_compare.ts OLD_ROOT [ROUNDS]
 *
 * OLD_ROOT is a checkout whose `cgroup/shim.ts` is the `/bin/sh` + setsid(1)
 * shim; this tree's is `telejob-shim`. Each round spawns `/bin/true` through
 * each shim 500 times serially (spawn to exit, p50) and 1,000 times at 16 in
 * flight (per second), into two plain files standing in for `cgroup.procs`
 * (no cgroup, no engine: the exec chain only). The new shim also drops to an
 * unprivileged uid, as a default job's does. JSON lines on stdout.
 * @module
 */
import { buildShim } from "../../shim/build.ts";
import { shimCommand } from "../../cgroup/shim.ts";

type Spawn = { program: string; args: string[] };

async function measure(spawn: Spawn): Promise<{ p50: number; rate: number }> {
  const cmd = new Deno.Command(spawn.program, {
    args: spawn.args,
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
    cwd: "/",
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  const times: number[] = [];
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now();
    await cmd.spawn().status;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next++ < 1000) await cmd.spawn().status;
  }));
  return { p50: times[250], rate: 1000 / ((performance.now() - t0) / 1000) };
}

if (import.meta.main) {
  const [oldRoot, rounds = "3"] = Deno.args;
  if (!oldRoot) {
    console.error("usage: shim_compare.ts OLD_ROOT [ROUNDS]");
    Deno.exit(2);
  }
  const old = await import(`${await Deno.realPath(oldRoot)}/cgroup/shim.ts`);
  const dir = await Deno.makeTempDir();
  const procsFiles = [`${dir}/a.procs`, `${dir}/b.procs`];
  for (const file of procsFiles) await Deno.writeTextFile(file, "");
  await Deno.chmod(dir, 0o755);
  const outputPath = `${dir}/out`;
  const before: Spawn = old.shimCommand("/bin/true", [], {
    procsFiles,
    outputPath,
  });
  const after: Spawn = shimCommand("/bin/true", [], {
    shim: await buildShim(),
    procsFiles,
    outputPath,
    cwd: "/",
    env: { PATH: "/usr/bin:/bin" },
    runAs: { uid: 2000000000, gid: 2000000000, groups: [] },
  });
  try {
    for (let round = 0; round < Number(rounds); round++) {
      for (const [name, spawn] of [["before", before], ["after", after]]) {
        const result = await measure(spawn as Spawn);
        console.log(JSON.stringify({ round, shim: name, ...result }));
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
