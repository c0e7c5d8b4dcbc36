/**
 * Connect, one `Status` call, close — `count` times in a row, as a CLI does
 * once per invocation. Runs in a process of its own because closing
 * connections is what trips Deno's node:http2 GOAWAY use-after-free, and the
 * benchmark must survive if this process does not. Prints `DONE <n> <ms>`
 * at the end and `AT <n>` every 25 connections, so a crash shows how far it
 * got.
 *
 *     deno run -A tests/bench/churn_client.ts ADDRESS ID TESTDATA_DIR COUNT
 * @module
 */
import { jobStatus, makeClient, readClientCerts } from "./grpc_client.ts";

if (import.meta.main) {
  const [address, id, testdata, countText] = Deno.args;
  const certs = await readClientCerts(testdata);
  const count = Number(countText);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const client = makeClient(address, certs);
    try {
      await jobStatus(client, id);
    } finally {
      client.close();
    }
    if ((i + 1) % 25 === 0) console.log(`AT ${i + 1}`);
  }
  console.log(`DONE ${count} ${performance.now() - t0}`);
}
