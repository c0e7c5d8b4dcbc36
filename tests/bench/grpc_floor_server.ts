/**
 * The API section's floor: a bare grpc-js server on Deno speaking the same
 * `telejob.v1.Telejob` service over mutual TLS with the same certificates,
 * with no engine behind it. `Start` and `Status` answer at once; `Logs`
 * streams zeros in messages of the engine's read chunk size, as many bytes
 * as the request's `id` field says. Prints `PORT <n>` when listening.
 *
 *     deno run -A tests/bench/grpc_floor_server.ts TESTDATA_DIR
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  type LogsRequest,
  type LogsResponse,
  TelejobService,
} from "../../proto/gen/telejob/v1/telejob.ts";
import { READ_CHUNK_BYTES } from "../../server/jobs/output.ts";
import { hookHttp2Servers, protectSession } from "../../compat/mod.ts";

const CHUNK = new Uint8Array(READ_CHUNK_BYTES);

async function main(testdata: string): Promise<void> {
  const server = new grpc.Server();
  // The same protection as telejob-server against Deno's GOAWAY crash
  // (server/goaway.ts): without it, closing clients take this server down.
  hookHttp2Servers(server, { session: protectSession });
  const job = {
    id: "1",
    owner: "client1",
    command: "true",
    args: [],
    cwd: "/",
    state: 2,
    signal: "",
    oomKilled: false,
    stopped: false,
    stoppedBy: "",
    lostInRestart: false,
    outputLimitReached: false,
    outputBytes: 0,
  };
  server.addService(TelejobService, {
    start: (_call: unknown, cb: grpc.sendUnaryData<{ id: string }>) =>
      cb(null, { id: "1" }),
    stop: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { job }),
    status: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { job }),
    list: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { jobs: [job] }),
    logs: (call: grpc.ServerWritableStream<LogsRequest, LogsResponse>) => {
      let left = Number(call.request.id) || 0;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, CHUNK.byteLength);
          left -= n;
          const ok = call.write({
            data: n === CHUNK.byteLength ? CHUNK : CHUNK.subarray(0, n),
          });
          if (!ok) {
            call.once("drain", pump);
            return;
          }
        }
        call.end();
      };
      call.on("cancelled", () => {
        left = 0;
      });
      pump();
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(await Deno.readFile(`${testdata}/client-ca.crt`)),
    [{
      cert_chain: Buffer.from(await Deno.readFile(`${testdata}/server.crt`)),
      private_key: Buffer.from(await Deno.readFile(`${testdata}/server.key`)),
    }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      credentials,
      (error, port) => error ? reject(error) : resolve(port),
    )
  );
  console.log(`PORT ${port}`);
  Deno.addSignalListener("SIGTERM", () => {
    server.forceShutdown();
    Deno.exit(0);
  });
}

if (import.meta.main) await main(Deno.args[0] ?? "tests/testdata");
