import assert from "node:assert/strict";
import { keyFileWarning, prepareDataDir, protectStore } from "./layout.ts";

Deno.test("the data dir is 0711 and the store 0600, also when they were looser", async () => {
  const parent = await Deno.makeTempDir();
  try {
    const dataDir = `${parent}/data`;
    await Deno.mkdir(dataDir, { mode: 0o777 });
    await Deno.chmod(dataDir, 0o777);
    await prepareDataDir(dataDir);
    assert.equal((await Deno.stat(dataDir)).mode! & 0o777, 0o711);
    await Deno.writeTextFile(`${dataDir}/jobs.db`, "", { mode: 0o644 });
    await Deno.writeTextFile(`${dataDir}/jobs.db-wal`, "", { mode: 0o644 });
    await protectStore(`${dataDir}/jobs.db`);
    for (const file of ["jobs.db", "jobs.db-wal"]) {
      assert.equal(
        (await Deno.stat(`${dataDir}/${file}`)).mode! & 0o777,
        0o600,
      );
    }
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("a key readable by group or others gets a warning that says the fix", async () => {
  const key = await Deno.makeTempFile();
  try {
    await Deno.chmod(key, 0o600);
    assert.equal(keyFileWarning(key), undefined);
    await Deno.chmod(key, 0o640);
    assert.match(keyFileWarning(key)!, /mode 0640.*chmod 600/);
  } finally {
    await Deno.remove(key);
  }
});
