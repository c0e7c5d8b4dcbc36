import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { certsMain } from "./certs.ts";

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const log = console.log;
  const error = console.error;
  const out: string[] = [];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => out.push(a.join(" "));
  try {
    const code = await certsMain(args, { log: (l) => out.push(l) });
    return { code, out: out.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("certs: usage errors exit 2 naming the flag, before writing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "telejob-certs-cli-" });
  try {
    const target = join(dir, "pki");
    for (
      const [args, message] of [
        [[], /^Missing --dir/],
        [
          ["--dir", target, "--days", "0"],
          /^Invalid --days "0": .* 1 to 36500/,
        ],
        [["--dir", target, "--user", "a/b"], /^Invalid --user "a\/b"/],
        [
          ["--dir", target, "--server-name", "a b"],
          /^Invalid --server-name "a b"/,
        ],
        [["--dir", target, "extra"], /^Unexpected argument "extra"/],
      ] as [string[], RegExp][]
    ) {
      const result = await run(args);
      assert.equal(result.code, 2, args.join(" "));
      assert.match(result.out, message);
    }
    assert.deepEqual(await readdir(dir), []);
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: telejob-server certs --dir DIR/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("certs: a file in the way exits 1 with what to do", async () => {
  const dir = await Deno.makeTempDir({ prefix: "telejob-certs-cli-" });
  try {
    await Deno.writeTextFile(join(dir, "client-ca.crt"), "x");
    const result = await run(["--dir", dir]);
    assert.equal(result.code, 1);
    assert.match(
      result.out,
      /client-ca\.key is missing but .*client-ca\.crt exists/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
