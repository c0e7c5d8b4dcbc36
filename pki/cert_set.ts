/**
 * A certificate set in one directory, made once and renewed in place: what
 * `telejob-server certs` and `deno task serve` write.
 *
 * The first run makes the two CAs (`server-ca`, `client-ca`), the server
 * certificate and a certificate per user, as `deno task certs` does. Later
 * runs keep the CAs and issue new leaf certificates from them, so clients
 * and servers that trust the CAs keep working across renewals.
 * @module
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { mkdir, readFile, stat } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { createCa, createLeaf, type Issued, writeIssued } from "./mod.ts";

const EC_PARAMS: EcKeyImportParams = { name: "ECDSA", namedCurve: "P-256" };
const DAY_MS = 86_400_000;

/** Default server certificate names, as `deno task certs`. */
export const DEFAULT_SERVER_NAMES: readonly string[] = [
  "localhost",
  "127.0.0.1",
];
/** Users a new set gets when none are named, as `deno task certs`. */
export const DEFAULT_USERS: readonly string[] = ["client1", "client2"];
/** The most days a certificate may be valid for: 100 years. */
export const MAX_DAYS = 36_500;

/** Names the set uses for its own files, which no user may take. */
const RESERVED = new Set(["server", "server-ca", "client-ca"]);
const USER_RE = /^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$/;
const DNS_RE =
  /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A certificate set problem the user can fix; the message says how. */
export class CertSetError extends Error {
  /** Creates the error; the message names the file or value at fault. */
  constructor(message: string) {
    super(message);
    this.name = "CertSetError";
  }
}

/** Options of {@linkcode writeCertSet}. */
export interface CertSetOptions {
  /**
   * Users (certificate common names) to issue client certificates for.
   * Default: client1 and client2 when the client CA is new, none otherwise.
   */
  users?: string[];
  /**
   * DNS names and IP addresses of the server certificate. Default: those of
   * the existing server certificate, else localhost and 127.0.0.1.
   */
  serverNames?: string[];
  /**
   * Validity in days of the certificates issued now. Default: 90 for the
   * server, 1 for users (the seed's); new CAs get 10 years, or longer when
   * `days` is.
   */
  days?: number;
  /** Receives one line per file written or kept. */
  log?: (line: string) => void;
}

/** What {@linkcode writeCertSet} did. */
export interface CertSetResult {
  /** Whether each CA was made now (false: the existing one was used). */
  created: { serverCa: boolean; clientCa: boolean };
  /** The server certificate's names. */
  serverNames: string[];
  /** The users that got a certificate now. */
  users: string[];
}

/** Checks a user name: it becomes a common name and a file name. */
export function checkUserName(name: string): string | undefined {
  if (!USER_RE.test(name)) {
    return `use 1 to 64 letters, digits, '.', '_', '@' or '-', not starting with '.' or '-'`;
  }
  if (RESERVED.has(name)) {
    return `${name}.crt is the set's own file; pick another name`;
  }
  return undefined;
}

/** Checks a server name: a DNS name (a leading `*.` allowed) or an IP. */
export function checkServerName(name: string): string | undefined {
  if (isIP(name) !== 0 || (name.length <= 253 && DNS_RE.test(name))) {
    return undefined;
  }
  return "expected a DNS name like telejob.example.com or an IP address";
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return false;
    throw error;
  }
}

/**
 * Reads `<dir>/<name>.crt` and `<dir>/<name>.key` back into an
 * {@linkcode Issued}: undefined when neither exists.
 *
 * @throws {CertSetError} when one is missing, unreadable or they do not
 * belong together.
 */
export async function loadIssued(
  dir: string,
  name: string,
): Promise<Issued | undefined> {
  const crtPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const [hasCrt, hasKey] = await Promise.all([
    exists(crtPath),
    exists(keyPath),
  ]);
  if (!hasCrt && !hasKey) return undefined;
  if (!hasCrt || !hasKey) {
    throw new CertSetError(
      `${hasCrt ? keyPath : crtPath} is missing but ${
        hasCrt ? crtPath : keyPath
      } exists: restore it, or move both away to make a new ${name}`,
    );
  }
  let certificate: x509.X509Certificate;
  let privateKey: CryptoKey;
  try {
    certificate = new x509.X509Certificate(await readFile(crtPath, "utf8"));
  } catch (error) {
    throw new CertSetError(
      `Cannot read ${crtPath} as a PEM certificate: ${
        (error as Error).message
      }`,
    );
  }
  try {
    const der = x509.PemConverter.decodeFirst(await readFile(keyPath, "utf8"));
    privateKey = await crypto.subtle.importKey("pkcs8", der, EC_PARAMS, true, [
      "sign",
    ]);
  } catch (error) {
    throw new CertSetError(
      `Cannot read ${keyPath} as a PEM PKCS#8 ECDSA P-256 key: ${
        (error as Error).message
      }`,
    );
  }
  const publicKey = await certificate.publicKey.export(EC_PARAMS, ["verify"])
    .catch(() => undefined);
  const probe = new TextEncoder().encode("telejob");
  const signing = { name: "ECDSA", hash: "SHA-256" };
  const matches = publicKey !== undefined && await crypto.subtle.verify(
    signing,
    publicKey,
    await crypto.subtle.sign(signing, privateKey, probe),
    probe,
  );
  if (!matches || publicKey === undefined) {
    throw new CertSetError(
      `${keyPath} is not the key of ${crtPath}: restore the matching pair`,
    );
  }
  return { name, certificate, keys: { privateKey, publicKey } };
}

/** Loads and checks the CA `name` in `dir`; undefined when absent. */
async function loadCa(dir: string, name: string): Promise<Issued | undefined> {
  const existing = await loadIssued(dir, name);
  if (!existing) return undefined;
  const path = join(dir, `${name}.crt`);
  const constraints = existing.certificate.getExtension(
    x509.BasicConstraintsExtension,
  );
  if (!constraints?.ca) {
    throw new CertSetError(`${path} is not a CA certificate`);
  }
  if (existing.certificate.notAfter.getTime() <= Date.now()) {
    throw new CertSetError(
      `${path} expired on ${existing.certificate.notAfter.toISOString()}: move ${name}.crt and ${name}.key away to make a new CA (every certificate must then be issued again)`,
    );
  }
  return existing;
}

async function useOrCreateCa(
  dir: string,
  found: { name: string; existing?: Issued; notAfter: Date },
  log: (line: string) => void,
): Promise<{ ca: Issued; created: boolean }> {
  if (found.existing) {
    log(
      `Using ${
        join(dir, `${found.name}.crt`)
      } (existing CA, valid until ${found.existing.certificate.notAfter.toISOString()})`,
    );
    return { ca: found.existing, created: false };
  }
  const ca = await createCa(found.name, { notAfter: found.notAfter });
  const [crt, key] = await writeIssued(dir, ca);
  log(`Created ${crt} (CA, valid until ${found.notAfter.toISOString()})`);
  log(`Created ${key}`);
  return { ca, created: true };
}

function subjectNames(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san
    ? san.names.toJSON().filter((n) => n.type === "dns" || n.type === "ip")
      .map((n) => n.value)
    : [];
}

/**
 * Makes or renews the certificate set in `dir` (created 0700 when new):
 * the CAs when they are not there yet, then the server certificate and one
 * client certificate per user, issued by those CAs. Keys are 0600.
 *
 * @throws {CertSetError} for a bad option or an unusable existing file,
 * before anything is written.
 */
export async function writeCertSet(
  dir: string,
  options: CertSetOptions = {},
): Promise<CertSetResult> {
  const log = options.log ?? (() => {});
  const days = options.days;
  if (
    days !== undefined && (!Number.isInteger(days) || days < 1 ||
      days > MAX_DAYS)
  ) {
    throw new CertSetError(
      `Invalid days ${days}: expected a whole number from 1 to ${MAX_DAYS}`,
    );
  }
  for (const user of options.users ?? []) {
    const problem = checkUserName(user);
    if (problem) {
      throw new CertSetError(
        `Invalid user ${JSON.stringify(user)}: ${problem}`,
      );
    }
  }
  for (const name of options.serverNames ?? []) {
    const problem = checkServerName(name);
    if (problem) {
      throw new CertSetError(
        `Invalid server name ${JSON.stringify(name)}: ${problem}`,
      );
    }
  }

  const now = Date.now();
  const inDays = (n: number) => new Date(now + n * DAY_MS);
  const caUntil = new Date(
    Math.max(
      inDays(days ?? 0).getTime(),
      new Date(now).setUTCFullYear(new Date(now).getUTCFullYear() + 10),
    ),
  );
  // Read everything that exists first, so a bad file stops us before we
  // write anything.
  const oldServer = await loadIssued(dir, "server");
  const oldServerCa = await loadCa(dir, "server-ca");
  const oldClientCa = await loadCa(dir, "client-ca");
  if (!(await exists(dir))) await mkdir(dir, { recursive: true, mode: 0o700 });
  const serverCa = await useOrCreateCa(dir, {
    name: "server-ca",
    existing: oldServerCa,
    notAfter: caUntil,
  }, log);
  const clientCa = await useOrCreateCa(dir, {
    name: "client-ca",
    existing: oldClientCa,
    notAfter: caUntil,
  }, log);

  const issue = async (
    leaf: { name: string; ca: Issued; usage: "server" | "client" },
    names: string[],
    validDays: number,
  ): Promise<void> => {
    const notAfter = inDays(validDays);
    if (notAfter > leaf.ca.certificate.notAfter) {
      throw new CertSetError(
        `Cannot issue ${leaf.name} for ${validDays} days: ${leaf.ca.name} expires on ${leaf.ca.certificate.notAfter.toISOString()}; ask for fewer days`,
      );
    }
    const issued = await createLeaf(leaf.name, leaf.ca, {
      usage: leaf.usage,
      commonName: leaf.name,
      notAfter,
      dnsNames: names.filter((n) => isIP(n) === 0),
      ipAddresses: names.filter((n) => isIP(n) !== 0),
    });
    const [crt, key] = await writeIssued(dir, issued);
    log(
      `Created ${crt} (${leaf.usage}, valid until ${notAfter.toISOString()}${
        names.length ? `, names: ${names.join(", ")}` : ""
      })`,
    );
    log(`Created ${key}`);
  };

  const serverNames = options.serverNames?.length
    ? options.serverNames
    : oldServer && !serverCa.created
    ? subjectNames(oldServer.certificate)
    : [...DEFAULT_SERVER_NAMES];
  await issue(
    { name: "server", ca: serverCa.ca, usage: "server" },
    serverNames,
    days ?? 90,
  );
  const users = options.users?.length
    ? [...new Set(options.users)]
    : clientCa.created
    ? [...DEFAULT_USERS]
    : [];
  for (const user of users) {
    await issue(
      { name: user, ca: clientCa.ca, usage: "client" },
      [],
      days ?? 1,
    );
  }
  return {
    created: { serverCa: serverCa.created, clientCa: clientCa.created },
    serverNames,
    users,
  };
}
