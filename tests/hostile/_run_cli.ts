/**
 * Runs the real `telejob` CLI against a test server as one of the test
 * identities, for the hostile suite.
 * @module
 */
import { join } from "node:path";
import { REPO, type ServerProcess, TESTDATA } from "../server_harness.ts";

/** What a CLI run printed and how it exited. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs `telejob args...` as `user` (default client1, whose `<user>.crt` and
 * `.key` are in `certDir`, default tests/testdata) to completion.
 */
export async function telejob(
  server: ServerProcess,
  args: string[],
  user = "client1",
  certDir = TESTDATA,
): Promise<CliResult> {
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    NO_COLOR: "1",
    TELEJOB_ADDRESS: server.address,
    TELEJOB_CLIENT_CERT: join(certDir, `${user}.crt`),
    TELEJOB_CLIENT_KEY: join(certDir, `${user}.key`),
    TELEJOB_SERVER_CA_CERT: join(TESTDATA, "server-ca.crt"),
    TELEJOB_TIME_FORMAT: "15:04:05",
  };
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) env.DENO_DIR = denoDir;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(REPO, "client", "main.ts"), ...args],
    env,
    clearEnv: true,
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, out: text.decode(stdout), err: text.decode(stderr) };
}
