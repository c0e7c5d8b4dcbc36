import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { VERSION, VERSION_HEADER } from "../version/mod.ts";
import { versionInterceptor } from "./version_header.ts";

const identity = (value: Buffer): Buffer => value;
const echo = {
  path: "/test.Echo/Echo",
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
} as const;

Deno.test("every answer carries the version: headers, or trailers of an error", async () => {
  const server = new grpc.Server({ interceptors: [versionInterceptor] });
  server.addService({ echo }, {
    echo(
      call: grpc.ServerUnaryCall<Buffer, Buffer>,
      callback: grpc.sendUnaryData<Buffer>,
    ): void {
      if (call.request.length === 0) {
        callback({ code: grpc.status.NOT_FOUND, details: "empty" });
      } else {
        callback(null, call.request);
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => error ? reject(error) : resolve(port),
    )
  );
  const Client = grpc.makeGenericClientConstructor({ echo }, "Echo");
  const client = new Client(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  const call = (request: Buffer) =>
    new Promise<{ headers?: grpc.Metadata; error?: grpc.ServiceError }>(
      (resolve) => {
        let headers: grpc.Metadata | undefined;
        const unary = client.echo(
          request,
          (error: grpc.ServiceError | null) =>
            resolve({ headers, error: error ?? undefined }),
        );
        unary.on("metadata", (m: grpc.Metadata) => (headers = m));
      },
    );
  try {
    const ok = await call(Buffer.from("hi"));
    assert.equal(ok.error, undefined);
    assert.deepEqual(ok.headers?.get(VERSION_HEADER), [VERSION]);

    const failed = await call(Buffer.alloc(0));
    assert.equal(failed.error?.code, grpc.status.NOT_FOUND);
    assert.deepEqual(failed.error?.metadata.get(VERSION_HEADER), [VERSION]);
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
});
