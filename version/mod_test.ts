import assert from "node:assert/strict";
import {
  commit,
  compatibilityKey,
  VERSION,
  versionMismatch,
  versionText,
} from "./mod.ts";

Deno.test("VERSION is deno.json's version", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  assert.equal(VERSION, config.version);
  assert.match(VERSION, /^\d+\.\d+\.\d+$/);
});

Deno.test("compatibilityKey: the major, or 0.MINOR before 1.0", () => {
  assert.equal(compatibilityKey("1.2.3"), "1");
  assert.equal(compatibilityKey("v2.0.0-rc.1"), "2");
  assert.equal(compatibilityKey("0.3.9"), "0.3");
  assert.equal(compatibilityKey("0.03.0"), "0.3");
  assert.equal(compatibilityKey("latest"), undefined);
  assert.equal(compatibilityKey("1.2"), undefined);
});

Deno.test("versionMismatch warns only across major versions", () => {
  const at = { address: "h:1", clientVersion: "1.4.0" };
  assert.equal(versionMismatch("1.0.0", at), undefined);
  assert.equal(versionMismatch("1.9.2", at), undefined);
  assert.equal(versionMismatch("garbage", at), undefined);
  assert.equal(
    versionMismatch("2.0.0", at),
    "Warning: the server at h:1 runs telejob-server 2.0.0, and this telejob is 1.4.0, a different major version: some calls may fail or be misread; install the CLI that matches the server",
  );
  assert.match(
    versionMismatch("0.2.0", { address: "h:1", clientVersion: "0.1.0" }) ??
      "",
    /^Warning: /,
  );
});

Deno.test("versionText names the program, version, commit, Deno and target", async () => {
  const text = await versionText("telejob");
  const sha = await commit();
  assert.equal(
    text,
    `telejob ${VERSION} (commit ${
      sha ?? "unknown"
    }, Deno ${Deno.version.deno}, ${Deno.build.target})`,
  );
  // From source, in this checkout, git knows the commit.
  const head = new TextDecoder().decode(
    (await new Deno.Command("git", {
      args: ["rev-parse", "--short=12", "HEAD"],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
    }).output()).stdout,
  ).trim();
  assert.ok(sha?.startsWith(head), `${sha} is not HEAD ${head}`);
});
