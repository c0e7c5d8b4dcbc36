/**
 * `deno task serve`: telejob-server with zero set-up for developers. It uses
 * the committed (insecure, long-lived) test certificates and `./data`, and
 * prints the environment a client needs.
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serverMain } from "./main.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const testdata = join(repoRoot, "tests", "testdata");

/** Flags `deno task serve` passes to telejob-server before the user's own. */
export function devServerArgs(): string[] {
  return [
    "--address",
    Deno.env.get("TELEJOB_ADDRESS") ?? "localhost:8443",
    "--server-cert",
    join(testdata, "server.crt"),
    "--server-key",
    join(testdata, "server.key"),
    "--client-ca-cert",
    join(testdata, "client-ca.crt"),
    "--data-dir",
    join(repoRoot, "data"),
    "--admin",
    "admin",
  ];
}

/** Prints how to reach the development server, then runs it until a signal. */
export async function serveDev(extraArgs: string[]): Promise<number> {
  const address = Deno.env.get("TELEJOB_ADDRESS") ?? "localhost:8443";
  console.error(
    `Development server with the INSECURE test certificates in ${testdata}.
Talk to it from another terminal:

  export TELEJOB_ADDRESS=${address}
  export TELEJOB_CLIENT_CERT=${join(testdata, "client1.crt")}
  export TELEJOB_CLIENT_KEY=${join(testdata, "client1.key")}
  export TELEJOB_SERVER_CA_CERT=${join(testdata, "server-ca.crt")}
  deno task telejob start sleep 100
  deno task telejob list
`,
  );
  return await serverMain([...devServerArgs(), ...extraArgs]);
}
