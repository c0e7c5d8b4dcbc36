import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadTlsMaterial, TlsConfigError } from "./pem.ts";

const TESTDATA = fileURLToPath(new URL("../tests/testdata", import.meta.url));

Deno.test("loadTlsMaterial loads the test files and names the flag at fault", async () => {
  const material = await loadTlsMaterial({
    serverCert: join(TESTDATA, "server.crt"),
    serverKey: join(TESTDATA, "server.key"),
    clientCaCert: join(TESTDATA, "client-ca.crt"),
  });
  assert.equal(material.clientCaCerts.length, 1);
  await assert.rejects(
    loadTlsMaterial({
      serverCert: join(TESTDATA, "server.crt"),
      serverKey: join(TESTDATA, "server.key"),
      clientCaCert: join(TESTDATA, "client1.key"),
    }),
    (error) =>
      error instanceof TlsConfigError &&
      /--client-ca-cert .*no PEM certificate/.test(error.message),
  );
});
