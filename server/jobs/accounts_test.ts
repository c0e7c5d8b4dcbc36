import assert from "node:assert/strict";
import { lookupAccount, permits, unsearchable, usedIds } from "./accounts.ts";

async function accountFiles(): Promise<{ passwd: string; group: string }> {
  const dir = await Deno.makeTempDir();
  const passwd = `${dir}/passwd`;
  const group = `${dir}/group`;
  await Deno.writeTextFile(
    passwd,
    "# comment\nroot:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
  );
  await Deno.writeTextFile(
    group,
    "root:x:0:\nalice:x:1000:\nwheel:x:10:bob,alice\naudio:x:29:bob\n",
  );
  return { passwd, group };
}

Deno.test("lookupAccount reads uid, gid, home and supplementary groups", async () => {
  const files = await accountFiles();
  assert.deepEqual(lookupAccount("alice", files), {
    name: "alice",
    uid: 1000,
    gid: 1000,
    groups: [10],
    home: "/home/alice",
  });
  assert.equal(lookupAccount("bob", files), undefined);
  assert.equal(lookupAccount("# comment", files), undefined);
  assert.deepEqual([...usedIds(files)].sort((a, b) => a - b), [
    0,
    10,
    29,
    1000,
  ]);
});

Deno.test("the real nobody account is found", () => {
  assert.equal(lookupAccount("nobody")?.uid, 65534);
});

Deno.test("permits follows owner, group, others", () => {
  const file = {
    mode: 0o750,
    uid: 5,
    gid: 7,
    isDirectory: true,
  } as Deno.FileInfo;
  assert.ok(permits(file, { uid: 5, gid: 1, groups: [] }, 1));
  assert.ok(permits(file, { uid: 6, gid: 7, groups: [] }, 1));
  assert.ok(permits(file, { uid: 6, gid: 1, groups: [7] }, 1));
  assert.ok(!permits(file, { uid: 6, gid: 1, groups: [] }, 1));
  assert.ok(!permits(file, { uid: 6, gid: 7, groups: [] }, 2));
  assert.ok(permits(file, { uid: 0, gid: 0, groups: [] }, 7));
});

Deno.test("unsearchable names the first directory a uid cannot enter", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${dir}/a/b`, { recursive: true });
    await Deno.chmod(dir, 0o755);
    await Deno.chmod(`${dir}/a`, 0o700);
    const nobody = { uid: 65534, gid: 65534, groups: [] };
    assert.equal(unsearchable(`${dir}/a/b`, nobody), `${dir}/a`);
    assert.equal(unsearchable(dir, nobody), undefined);
    assert.equal(unsearchable(`${dir}/missing`, nobody), `${dir}/missing`);
    assert.equal(
      unsearchable(`${dir}/a/b`, { uid: 0, gid: 0, groups: [] }),
      undefined,
    );
    await Deno.chmod(`${dir}/a`, 0o711);
    assert.equal(unsearchable(`${dir}/a/b`, nobody), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
