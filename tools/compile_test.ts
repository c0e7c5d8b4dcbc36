import assert from "node:assert/strict";
import { join } from "node:path";
import {
  compileArgs,
  compileMain,
  GEN_DIR,
  PROGRAMS,
  TARGETS,
  writeEntry,
} from "./compile.ts";

const server = PROGRAMS.find((p) => p.name === "telejob-server")!;

Deno.test("compileArgs: one binary per program and target, includes embedded", () => {
  assert.deepEqual(TARGETS, [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
  ]);
  assert.deepEqual(
    compileArgs(server, {
      entry: "/r/out/gen/telejob-server.ts",
      target: "aarch64-unknown-linux-gnu",
      outDir: "/r/out",
    }),
    [
      "compile",
      "-A",
      "--target",
      "aarch64-unknown-linux-gnu",
      "--include",
      "out/telejob-shim-aarch64",
      "--output",
      "/r/out/telejob-server-aarch64-unknown-linux-gnu",
      "/r/out/gen/telejob-server.ts",
    ],
  );
});

Deno.test("writeEntry bakes the commit into a module that runs the program", async () => {
  const dir = join(GEN_DIR, `test-${crypto.randomUUID()}`);
  try {
    const path = await writeEntry(server, { commit: "0123456789ab", dir });
    const text = await Deno.readTextFile(path);
    assert.match(text, /setBuildCommit\("0123456789ab"\);/);
    assert.match(
      text,
      /import \{ serverMain \} from "(\.\.\/)+server\/main\.ts";/,
    );
    assert.match(text, /Deno\.exit\(await serverMain\(Deno\.args\)\);/);
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", path, "--version"],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.match(
      new TextDecoder().decode(run.stdout),
      /^telejob-server \S+ \(commit 0123456789ab, /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compileMain refuses an unknown target before compiling", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(line);
  try {
    assert.equal(await compileMain(["--target", "mips-unknown-linux-gnu"]), 2);
  } finally {
    console.error = original;
  }
  assert.match(
    errors.join("\n"),
    /^Unknown --target "mips-unknown-linux-gnu": use one of x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu/,
  );
});
