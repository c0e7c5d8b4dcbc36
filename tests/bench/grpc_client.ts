/**
 * The benchmark's gRPC client: the generated `TelejobClient` over mutual
 * TLS with the committed test certificates, promise wrappers for the unary
 * calls and a byte-counting reader for `Logs`.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { connect as tlsConnect } from "node:tls";
import { type Job, TelejobClient } from "../../proto/gen/telejob/v1/telejob.ts";

/** Certificate files a client presents and trusts. */
export interface ClientCerts {
  ca: Uint8Array;
  cert: Uint8Array;
  key: Uint8Array;
}

/** Reads the test certificates of `user` (e.g. `client1`) and the server CA. */
export async function readClientCerts(
  testdata: string,
  user = "client1",
): Promise<ClientCerts> {
  return {
    ca: await Deno.readFile(`${testdata}/server-ca.crt`),
    cert: await Deno.readFile(`${testdata}/${user}.crt`),
    key: await Deno.readFile(`${testdata}/${user}.key`),
  };
}

/**
 * A client with a connection of its own: grpc-js would otherwise share one
 * connection between clients of the same address and options.
 */
export function makeClient(address: string, certs: ClientCerts): TelejobClient {
  return new TelejobClient(
    address,
    grpc.credentials.createSsl(
      Buffer.from(certs.ca),
      Buffer.from(certs.key),
      Buffer.from(certs.cert),
    ),
    {
      "grpc.use_local_subchannel_pool": 1,
      // Deno's node:tls refuses an IP address as the TLS server name; the
      // test server certificate is also valid for localhost.
      "grpc.ssl_target_name_override": "localhost",
      "grpc.max_receive_message_length": 64 * 2 ** 20,
    },
  );
}

/** Starts `command` and returns the job id. */
export function startJob(
  client: TelejobClient,
  command: string,
  args: string[] = [],
): Promise<string> {
  return new Promise((resolve, reject) =>
    client.start(
      { command, args, env: [], cwd: "", limits: undefined, user: "" },
      (error, response) => error ? reject(error) : resolve(response.id),
    )
  );
}

/** One job's record. */
export function jobStatus(
  client: TelejobClient,
  id: string,
): Promise<Job | undefined> {
  return new Promise((resolve, reject) =>
    client.status(
      { id },
      (error, response) => error ? reject(error) : resolve(response.job),
    )
  );
}

/** Waits until job `id` has finished (polling: harness only). */
export async function waitJobFinished(
  client: TelejobClient,
  id: string,
): Promise<void> {
  for (;;) {
    const job = await jobStatus(client, id);
    // JOB_STATE_FINISHED is 2.
    if (job?.state === 2) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Reads a job's output through `Logs`, returning the number of bytes. */
export function readLogs(
  client: TelejobClient,
  id: string,
  follow: boolean,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const stream = client.logs({ id, follow, offset: 0, tail: undefined });
    stream.on("data", (msg: { data: Uint8Array }) => {
      bytes += msg.data.byteLength;
    });
    stream.on("error", reject);
    stream.on("end", () => resolve(bytes));
  });
}

/** Resolves once the client's connection is ready (or rejects after `ms`). */
export function waitReady(client: grpc.Client, ms: number): Promise<void> {
  return new Promise((resolve, reject) =>
    client.waitForReady(
      Date.now() + ms,
      (error) => error ? reject(error) : resolve(),
    )
  );
}

/**
 * One mutual-TLS handshake (ALPN h2, as gRPC offers it) to `host:port`,
 * then a close without a single HTTP/2 frame: what a new connection costs
 * before any RPC.
 */
export function tlsHandshake(
  host: string,
  port: number,
  certs: ClientCerts,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port,
      servername: "localhost",
      ca: Buffer.from(certs.ca),
      cert: Buffer.from(certs.cert),
      key: Buffer.from(certs.key),
      ALPNProtocols: ["h2"],
      minVersion: "TLSv1.3",
    });
    socket.once("secureConnect", () => {
      socket.destroy();
      resolve();
    });
    socket.once("error", (error) => {
      socket.destroy();
      reject(error);
    });
  });
}
