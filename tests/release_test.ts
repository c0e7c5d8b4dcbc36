/**
 * The release workflow's pack and smoke-test steps, run here: the programs
 * staged as `deno compile` would embed them (tools/compile.ts) stand in for
 * the compiled binaries, behind two-line launchers with the binaries'
 * names; tools/package.sh packs them with the README, LICENSE and unit, and
 * tools/smoke_test.sh checks the archive as the workflow does (certificates
 * from `telejob-server certs`, a server, start, status, logs, stop, list).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PROGRAMS, stage } from "../tools/compile.ts";
import { VERSION } from "../version/mod.ts";
import { REPO } from "./server_harness.ts";

const TARGET = "x86_64-unknown-linux-gnu";

async function sh(args: string[]): Promise<{ code: number; err: string }> {
  const output = await new Deno.Command("sh", {
    args,
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    err: new TextDecoder().decode(output.stdout) +
      new TextDecoder().decode(output.stderr),
  };
}

Deno.test("a packed release passes the release smoke test", async () => {
  const dir = await Deno.makeTempDir({ prefix: "telejob-release-test-" });
  try {
    const bin = join(dir, "bin");
    await Deno.mkdir(bin);
    for (const program of PROGRAMS) {
      const entry = await stage(program, {
        dir: join(dir, "stage"),
        commit: "0123456789ab",
      });
      const launcher = join(bin, `${program.name}-${TARGET}`);
      await Deno.writeTextFile(
        launcher,
        `#!/bin/sh\nexec ${
          JSON.stringify(Deno.execPath())
        } run -A --quiet --frozen --config ${
          JSON.stringify(join(dir, "stage", "deno.json"))
        } ${JSON.stringify(entry)} "$@"\n`,
      );
      await Deno.chmod(launcher, 0o755);
    }
    const dist = join(dir, "dist");
    const packed = await sh(["tools/package.sh", VERSION, TARGET, bin, dist]);
    assert.equal(packed.code, 0, packed.err);
    const sums = await sh(["tools/package.sh", "--sums", VERSION, dist]);
    assert.equal(sums.code, 0, sums.err);
    const name = `telejob-${VERSION}-${TARGET}.tar.gz`;
    assert.match(
      await Deno.readTextFile(join(dist, "SHA256SUMS")),
      new RegExp(`^[0-9a-f]{64}  ${name.replaceAll(".", "\\.")}\n$`),
    );
    assert.equal(
      await Deno.readTextFile(join(dist, "VERSION")),
      `${VERSION}\n`,
    );

    const smoke = await sh(["tools/smoke_test.sh", join(dist, name)]);
    assert.equal(smoke.code, 0, smoke.err);
    assert.match(smoke.err, /smoke: passed\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
