/**
 * The floor of a CLI invocation: a Deno program that loads grpc-js and the
 * generated client, makes one `Status` call over mutual TLS and exits — what
 * any gRPC CLI written in Deno pays before doing anything of its own.
 *
 *     deno run -A tests/bench/min_client.ts ADDRESS ID TESTDATA_DIR
 * @module
 */
import { jobStatus, makeClient, readClientCerts } from "./grpc_client.ts";

if (import.meta.main) {
  const [address, id, testdata] = Deno.args;
  const client = makeClient(address, await readClientCerts(testdata));
  try {
    const job = await jobStatus(client, id);
    console.log(job?.id ?? "");
  } finally {
    client.close();
  }
}
