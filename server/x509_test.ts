import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { OID_CLIENT_AUTH, OID_SERVER_AUTH, parseCertificate } from "./x509.ts";

const TESTDATA = fileURLToPath(new URL("../tests/testdata", import.meta.url));

function der(name: string): Uint8Array {
  const pem = Deno.readTextFileSync(join(TESTDATA, `${name}.crt`));
  return new Uint8Array(new X509Certificate(pem).raw);
}

Deno.test("parseCertificate reads CN, extended key usage and validity", () => {
  const facts = parseCertificate(der("client1"));
  assert.deepEqual(facts.commonNames, ["client1"]);
  assert.deepEqual(facts.extKeyUsages, [OID_CLIENT_AUTH]);
  const node = new X509Certificate(
    Deno.readTextFileSync(join(TESTDATA, "client1.crt")),
  );
  assert.equal(facts.notBefore.getTime(), Date.parse(node.validFrom));
  assert.equal(facts.notAfter.getTime(), Date.parse(node.validTo));
});

Deno.test("parseCertificate: server EKU, no CN, and a CA without EKU", () => {
  assert.deepEqual(parseCertificate(der("client-server-eku")).extKeyUsages, [
    OID_SERVER_AUTH,
  ]);
  assert.deepEqual(parseCertificate(der("client-no-cn")).commonNames, []);
  assert.equal(parseCertificate(der("client-ca")).extKeyUsages, undefined);
});

Deno.test("parseCertificate throws on truncated or foreign input", () => {
  const good = der("client1");
  assert.throws(() => parseCertificate(good.subarray(0, good.length - 10)));
  assert.throws(() =>
    parseCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01]))
  );
  assert.throws(() => parseCertificate(new Uint8Array()));
  assert.throws(() => parseCertificate(new TextEncoder().encode("hello")));
});
