import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { dropIpServerName } from "./secure_connector.ts";

// The real TLS path (an IP target verified against the IP SAN) is tested in
// client/connection_test.ts; these pin down the wrapper's own logic.

function fakeCredentials(servername: string): grpc.ChannelCredentials {
  return {
    _createSecureConnector: () => ({ connectionOptions: { servername } }),
  } as unknown as grpc.ChannelCredentials;
}

function connect(
  credentials: grpc.ChannelCredentials,
): { connectionOptions: { servername?: string } } {
  return (credentials as unknown as {
    _createSecureConnector: () => {
      connectionOptions: { servername?: string };
    };
  })._createSecureConnector();
}

Deno.test("an IP target loses its server name, a host name keeps it", () => {
  for (const ip of ["127.0.0.1", "::1"]) {
    assert.equal(
      connect(dropIpServerName(fakeCredentials(ip))).connectionOptions
        .servername,
      undefined,
    );
  }
  assert.equal(
    connect(dropIpServerName(fakeCredentials("localhost"))).connectionOptions
      .servername,
    "localhost",
  );
});

Deno.test("a grpc-js without the private method is refused, not ignored", () => {
  assert.throws(
    () => dropIpServerName({} as grpc.ChannelCredentials),
    /no _createSecureConnector/,
  );
});
