/**
 * `deno task serve`: telejob-server with zero set-up for developers, on
 * `./data` and a certificate set of this checkout's own.
 *
 * The first run makes a fresh CA pair and certificates under `certs/serve/`
 * (server, `client1`, `client2` and `admin`, keys 0600); later runs reuse
 * them and renew any that is missing or about to expire. It never uses the
 * committed test certificates: their keys are public, so a server trusting
 * that CA would let any local user mint an `admin` certificate and run
 * commands as root.
 * @module
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { chown, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeCertSet } from "../pki/cert_set.ts";
import { serverMain } from "./main.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** Where `deno task serve` keeps its certificates. */
export const DEV_CERTS_DIR = join(repoRoot, "certs", "serve");
/** The committed test CA, which the development server must never trust. */
export const TEST_CLIENT_CA = join(
  repoRoot,
  "tests",
  "testdata",
  "client-ca.crt",
);
/** The users the development set has; `admin` is the server's admin. */
export const DEV_USERS: readonly string[] = ["client1", "client2", "admin"];
/** Validity of the development certificates. */
const DEV_DAYS = 365;
/** A certificate that expires sooner than this is renewed at start. */
const RENEW_BEFORE_MS = 7 * 86_400_000;

/** Options of {@linkcode ensureDevCerts}. */
export interface DevCertsOptions {
  /** Receives one line per file written. */
  log?: (line: string) => void;
  /**
   * Owner to give the client-side files (user certificates and keys, the
   * server CA): the developer behind `sudo`, so their client can read them.
   * The CA keys and the server key stay with the server's user.
   */
  clientOwner?: { uid: number; gid: number };
  /** The CA the set must not be (default: the committed test CA). */
  forbiddenCa?: string;
}

async function fingerprint(path: string): Promise<string | undefined> {
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  const der = new x509.X509Certificate(pem).rawData;
  const hash = await crypto.subtle.digest("SHA-256", der);
  return Array.from(
    new Uint8Array(hash),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

async function expiresSoon(path: string): Promise<boolean> {
  try {
    const cert = new x509.X509Certificate(await readFile(path, "utf8"));
    return cert.notAfter.getTime() - Date.now() < RENEW_BEFORE_MS;
  } catch {
    return true;
  }
}

/**
 * Makes the development certificate set in `dir` on first use, renews
 * leaves that are missing or expire within 7 days from the same CAs, and
 * returns the directory.
 *
 * @throws {Error} when the client CA there is the committed test CA.
 */
export async function ensureDevCerts(
  dir: string,
  options: DevCertsOptions = {},
): Promise<string> {
  // Checked before anything is issued from it.
  const forbidden = await fingerprint(options.forbiddenCa ?? TEST_CLIENT_CA);
  if (
    forbidden && forbidden === await fingerprint(join(dir, "client-ca.crt"))
  ) {
    throw new Error(
      `${
        join(dir, "client-ca.crt")
      } is the committed test CA, whose key is public: anyone could make an admin certificate. Remove ${dir} and run again for a fresh set.`,
    );
  }
  const leaves = ["server", ...DEV_USERS];
  const stale: string[] = [];
  for (const name of leaves) {
    if (await expiresSoon(join(dir, `${name}.crt`))) stale.push(name);
  }
  if (stale.length > 0) {
    // The parent stays traversable so the developer can reach their files;
    // the set's own directory lists for no one but its owner.
    await mkdir(join(dir, ".."), { recursive: true });
    await mkdir(dir, { recursive: true, mode: 0o711 });
    await writeCertSet(dir, {
      users: stale.filter((name) => name !== "server"),
      days: DEV_DAYS,
      log: options.log,
    });
  }
  if (options.clientOwner) {
    const { uid, gid } = options.clientOwner;
    const files = ["server-ca.crt"];
    for (const user of DEV_USERS) files.push(`${user}.crt`, `${user}.key`);
    for (const file of files) await chown(join(dir, file), uid, gid);
  }
  return dir;
}

/** Flags `deno task serve` passes to telejob-server before the user's own. */
export function devServerArgs(certsDir: string = DEV_CERTS_DIR): string[] {
  return [
    "--address",
    Deno.env.get("TELEJOB_ADDRESS") ?? "localhost:8443",
    "--server-cert",
    join(certsDir, "server.crt"),
    "--server-key",
    join(certsDir, "server.key"),
    "--client-ca-cert",
    join(certsDir, "client-ca.crt"),
    "--data-dir",
    join(repoRoot, "data"),
    "--admin",
    "admin",
  ];
}

/** The developer behind `sudo`, when we run as root through it. */
function sudoUser(): { uid: number; gid: number } | undefined {
  const uid = Number(Deno.env.get("SUDO_UID"));
  const gid = Number(Deno.env.get("SUDO_GID"));
  if (Deno.uid() !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    return undefined;
  }
  return uid > 0 ? { uid, gid } : undefined;
}

/** Prints how to reach the development server, then runs it until a signal. */
export async function serveDev(extraArgs: string[]): Promise<number> {
  const address = Deno.env.get("TELEJOB_ADDRESS") ?? "localhost:8443";
  const dir = DEV_CERTS_DIR;
  try {
    await ensureDevCerts(dir, {
      log: (line) => console.error(line),
      clientOwner: sudoUser(),
    });
  } catch (error) {
    console.error(
      `Cannot set up the development certificates in ${dir}: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
    return 1;
  }
  console.error(
    `Development server with this checkout's own certificates in ${dir}
(admin.crt is an admin). Talk to it from another terminal:

  export TELEJOB_ADDRESS=${address}
  export TELEJOB_CLIENT_CERT=${join(dir, "client1.crt")}
  export TELEJOB_CLIENT_KEY=${join(dir, "client1.key")}
  export TELEJOB_SERVER_CA_CERT=${join(dir, "server-ca.crt")}
  deno task telejob start sleep 100
  deno task telejob list
`,
  );
  return await serverMain([...devServerArgs(dir), ...extraArgs]);
}
