import assert from "node:assert/strict";
import { JobError } from "./errors.ts";
import {
  DEFAULT_UID_RANGE,
  Identities,
  parseIdRange,
  parseRunAs,
} from "./identity.ts";
import { JobStore } from "./store.ts";

Deno.test("parseRunAs takes CN=LOGIN[,LOGIN...] and refuses the rest", () => {
  assert.deepEqual(parseRunAs("alice=alice,www-data"), {
    owner: "alice",
    logins: ["alice", "www-data"],
  });
  assert.deepEqual(parseRunAs("*=nobody"), { owner: "*", logins: ["nobody"] });
  // A CN may itself contain "=": the last one separates.
  assert.deepEqual(parseRunAs("O=x=root"), { owner: "O=x", logins: ["root"] });
  for (const bad of ["alice", "=root", "alice=", "alice=a b", "alice=a,,b"]) {
    assert.throws(() => parseRunAs(bad), /Invalid --run-as/);
  }
});

Deno.test("parseIdRange takes FIRST-LAST above the system ids", () => {
  assert.deepEqual(parseIdRange("2000000000-2000999999"), DEFAULT_UID_RANGE);
  for (const bad of ["5-10", "3000-2000", "x", "1000-4294967295"]) {
    assert.throws(() => parseIdRange(bad), /Invalid --uid-range/);
  }
});

async function withIdentities(
  work: (
    open: (range?: { first: number; last: number }) => Identities,
    dir: string,
  ) => void | Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const store = JobStore.open(`${dir}/jobs.db`);
  try {
    await work((range) =>
      new Identities(store, {
        homeRoot: `${dir}/home`,
        uidRange: range,
        runAs: [{ owner: "alice", logins: ["nobody"] }, {
          owner: "*",
          logins: ["daemon"],
        }],
      }), dir);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("owners get distinct, stable identities with private homes", async () => {
  await withIdentities(async (open, dir) => {
    const alice = open().resolve("alice", undefined);
    const bob = open().resolve("bob", "");
    assert.equal(alice.uid, DEFAULT_UID_RANGE.first);
    assert.equal(bob.uid, DEFAULT_UID_RANGE.first + 1);
    assert.equal(alice.gid, alice.uid);
    assert.deepEqual(alice.groups, []);
    assert.equal(alice.home, `${dir}/home/telejob-${alice.uid}`);
    const info = await Deno.stat(alice.home);
    assert.equal(info.uid, alice.uid);
    assert.equal(info.mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${dir}/home`)).mode! & 0o777, 0o711);
    // A new Identities (a restarted server) finds the same ones.
    assert.equal(open().resolve("alice", undefined).uid, alice.uid);
  });
});

Deno.test("allocation skips ids the host uses and says when the range is full", async () => {
  await withIdentities((open) => {
    // 65534 is nobody's (and nogroup's) on Debian.
    const identities = open({ first: 65534, last: 65535 });
    assert.equal(identities.resolve("alice", undefined).uid, 65535);
    assert.throws(
      () => identities.resolve("bob", undefined),
      (error: unknown) =>
        error instanceof JobError && error.code === "resource_exhausted" &&
        /--uid-range \(65534-65535\) is taken/.test(error.message),
    );
  });
});

Deno.test("accounts only where the policy names them, root included", async () => {
  await withIdentities((open) => {
    const identities = open();
    assert.equal(identities.resolve("alice", "nobody").uid, 65534);
    assert.equal(identities.resolve("bob", "daemon").name, "daemon");
    for (const [owner, login] of [["bob", "nobody"], ["alice", "root"]]) {
      assert.throws(
        () => identities.resolve(owner, login),
        (error: unknown) =>
          error instanceof JobError && error.code === "permission_denied" &&
          error.message.includes(`--run-as '${owner}=${login}'`),
      );
    }
  });
});

Deno.test("a policy naming an unknown account is refused at start-up", async () => {
  const dir = await Deno.makeTempDir();
  const store = JobStore.open(`${dir}/jobs.db`);
  try {
    assert.throws(
      () =>
        new Identities(store, {
          homeRoot: `${dir}/home`,
          runAs: [{ owner: "alice", logins: ["no-such-login-telejob"] }],
        }),
      /no account no-such-login-telejob in \/etc\/passwd/,
    );
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
