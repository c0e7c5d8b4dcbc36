import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  checkDenoVersion,
  ClientVerifier,
  verifyClientCertificate,
} from "./tls.ts";

const TESTDATA = fileURLToPath(new URL("../tests/testdata", import.meta.url));

function cert(name: string): X509Certificate {
  return new X509Certificate(
    Deno.readTextFileSync(join(TESTDATA, `${name}.crt`)),
  );
}
function der(name: string): Uint8Array {
  return new Uint8Array(cert(name).raw);
}
const cas = [cert("client-ca")];

Deno.test("verifyClientCertificate accepts a client certificate and names its user", () => {
  for (const name of ["client1", "admin"]) {
    const verdict = verifyClientCertificate(der(name), cas);
    assert.ok(verdict.ok);
    assert.equal(verdict.user, name);
    // Long streams end when the certificate does (service.ts).
    assert.ok(verdict.notAfter instanceof Date);
  }
});

Deno.test("verifyClientCertificate refuses each bad certificate itself, whatever TLS did", () => {
  const reason = (name: string): string => {
    const verdict = verifyClientCertificate(der(name), cas);
    assert.ok(!verdict.ok, `${name} was accepted`);
    return verdict.reason;
  };
  assert.match(reason("client-wrong-ca"), /not issued by the client CA/);
  assert.match(reason("server"), /not issued by the client CA/);
  assert.match(reason("client-expired"), /expired/);
  assert.match(reason("client-not-yet-valid"), /not yet valid/);
  assert.match(reason("client-no-cn"), /no common name/);
  assert.match(reason("client-server-eku"), /client authentication/);
  assert.match(reason("client-ca"), /client authentication/);
});

Deno.test("verifyClientCertificate checks the dates against the given clock", () => {
  const c1 = cert("client1");
  const before = new Date(Date.parse(c1.validFrom) - 1000);
  const after = new Date(Date.parse(c1.validTo) + 1000);
  assert.match(
    JSON.stringify(
      verifyClientCertificate(der("client1"), cas, { now: before }),
    ),
    /not yet valid/,
  );
  const verifier = new ClientVerifier(cas);
  assert.ok(verifier.verify(der("client1")).ok);
  // Cached, but the clock still counts.
  assert.match(
    JSON.stringify(verifier.verify(der("client1"), { now: after })),
    /expired/,
  );
  assert.ok(!verifier.verify(new Uint8Array([1, 2, 3])).ok);
});

Deno.test("checkDenoVersion refuses Deno before 2.8.1", () => {
  assert.match(checkDenoVersion("2.8.0") ?? "", /2\.8\.0 is too old.*2\.8\.1/);
  assert.match(checkDenoVersion("1.46.3") ?? "", /too old/);
  assert.equal(checkDenoVersion("2.8.1"), undefined);
  assert.equal(checkDenoVersion("2.9.6"), undefined);
  assert.equal(checkDenoVersion("3.0.0"), undefined);
  assert.equal(checkDenoVersion(Deno.version.deno), undefined);
});
