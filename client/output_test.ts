import assert from "node:assert/strict";
import { isBrokenPipe } from "./errors.ts";
import { Output } from "./output.ts";

const closed = {
  write(): Promise<number> {
    return Promise.reject(new Deno.errors.BrokenPipe("closed"));
  },
};

Deno.test("Output: a closed stdout is the quiet brokenPipe end", async () => {
  const out = new Output({ stdout: closed });
  await assert.rejects(() => out.text("x"), (err) => isBrokenPipe(err));
});

Deno.test("Output: short writes are resumed; error never throws", async () => {
  const got: number[] = [];
  const stdout = {
    write(p: Uint8Array): Promise<number> {
      got.push(p[0]);
      return Promise.resolve(1);
    },
  };
  await new Output({ stdout, stderr: closed }).bytes(Uint8Array.of(1, 2, 3));
  assert.deepEqual(got, [1, 2, 3]);
  await new Output({ stderr: closed }).error("nowhere");
});
