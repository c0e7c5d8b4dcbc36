import assert from "node:assert/strict";
import { splitHostPort } from "./address.ts";

Deno.test("splitHostPort: host:port and [v6]:port, with the reason otherwise", () => {
  assert.deepEqual(splitHostPort(" localhost:8443 "), {
    host: "localhost",
    port: 8443,
  });
  assert.deepEqual(splitHostPort("[::1]:9000"), { host: "::1", port: 9000 });
  assert.deepEqual(splitHostPort("127.0.0.1:0", { minPort: 0 }), {
    host: "127.0.0.1",
    port: 0,
  });
  assert.equal(
    splitHostPort("127.0.0.1:0"),
    "the port must be from 1 to 65535",
  );
  assert.equal(splitHostPort(":8443"), "the host is missing");
  assert.equal(splitHostPort("h:70000"), "the port must be from 1 to 65535");
  for (
    const bad of ["localhost", "::1:80", "a b:1", "http://x:1", "h:-1", ""]
  ) {
    assert.equal(splitHostPort(bad), "expected HOST:PORT", bad);
  }
});
