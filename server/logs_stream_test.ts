import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  LogsRequest,
  type LogsResponse,
  TelejobService,
} from "../proto/gen/telejob/v1/telejob.ts";
import { telejobServiceDefinition } from "./codec.ts";
import { MAX_LOG_CHUNK_BYTES, pump } from "./logs_stream.ts";

/**
 * Serves `chunks` through {@linkcode pump} on a real grpc-js server over
 * loopback and returns the messages a real client received.
 */
async function served(chunks: Uint8Array[]): Promise<Uint8Array[]> {
  const server = new grpc.Server();
  server.addService(telejobServiceDefinition, {
    logs: (call: grpc.ServerWritableStream<LogsRequest, LogsResponse>) => {
      const signal = new AbortController().signal;
      pump(
        call,
        (async function* () {
          yield* chunks;
        })(),
        signal,
      ).then(() => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => error ? reject(error) : resolve(port),
    )
  );
  const Client = grpc.makeGenericClientConstructor(TelejobService, "Telejob");
  const client = new Client(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  try {
    const stream = (client as unknown as {
      logs(request: LogsRequest): grpc.ClientReadableStream<LogsResponse>;
    }).logs(LogsRequest.fromPartial({ id: "1" }));
    const received: Uint8Array[] = [];
    for await (const message of stream) {
      received.push((message as LogsResponse).data);
    }
    return received;
  } finally {
    client.close();
    server.forceShutdown();
  }
}

Deno.test("pump sends every byte in order, in messages of at most MAX_LOG_CHUNK_BYTES", async () => {
  const big = new Uint8Array(2 * MAX_LOG_CHUNK_BYTES + 5).map((_, i) =>
    i % 251
  );
  const small = new Uint8Array([1, 2, 3]);
  const received = await served([big, small]);
  assert.deepEqual(
    received.map((m) => m.length),
    [MAX_LOG_CHUNK_BYTES, MAX_LOG_CHUNK_BYTES, 5, 3],
  );
  const all = new Uint8Array(received.reduce((n, m) => n + m.length, 0));
  let offset = 0;
  for (const m of received) {
    all.set(m, offset);
    offset += m.length;
  }
  assert.deepEqual(all.subarray(0, big.length), big);
  assert.deepEqual(all.subarray(big.length), small);
});
