/**
 * Certificates for Telejob's mutual TLS: the development set that
 * `deno task certs` writes (the seed's `just certs`) and the long-lived test
 * set under `tests/testdata/`. ECDSA P-256 keys are made with WebCrypto and
 * the certificates with `@peculiar/x509`; nothing shells out to openssl.
 *
 * Keys are written as PKCS#8 `PRIVATE KEY` PEM, which Node/Deno TLS, rustls
 * and grpc-js all accept.
 * @module
 */
// @peculiar/x509 resolves its algorithm registry through tsyringe, which
// needs the Reflect metadata polyfill loaded before it.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

const EC_PARAMS: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

/** A key pair and the certificate issued for it. */
export interface Issued {
  /** File name stem: `<name>.crt` and `<name>.key`. */
  name: string;
  /** The parsed certificate. */
  certificate: x509.X509Certificate;
  /** The ECDSA P-256 key pair; the private key is extractable. */
  keys: CryptoKeyPair;
}

/** Validity period of a certificate. */
export interface Validity {
  /** Start of validity; default one minute ago, to allow for clock skew. */
  notBefore?: Date;
  /** End of validity. */
  notAfter: Date;
}

/** Options of {@linkcode createLeaf}. */
export interface LeafOptions extends Validity {
  /** What the certificate is for: the extended key usage it carries. */
  usage: "server" | "client";
  /** Subject common name; omit for a certificate without a CN. */
  commonName?: string;
  /** DNS names for the subject alternative name extension. */
  dnsNames?: string[];
  /** IP addresses for the subject alternative name extension. */
  ipAddresses?: string[];
}

const UNIT_RE = /^(\d+)\s*(year|month|week|day|hour|minute|second)s?$/;

/**
 * Parses an expiry in the seed's (certstrap's) style, such as `"1 day"`,
 * `"90 days"`, `"10 years"` or `"1 year 6 months"`, and returns the moment
 * that far after `from` (calendar arithmetic for years, months and days, as
 * Go's `time.AddDate`).
 *
 * @throws {Error} when the text is empty or has an unknown unit.
 */
export function parseExpiry(text: string, from: Date = new Date()): Date {
  const parts = text.trim().toLowerCase().match(
    /\d+\s*[a-z]+/g,
  );
  const rest = text.replace(/\d+\s*[a-zA-Z]+/g, "").trim();
  if (!parts || rest !== "") {
    throw new Error(
      `Invalid certificate expiry ${
        JSON.stringify(text)
      }: use a number and a unit, such as "1 day", "90 days" or "1 year 6 months" (units: year, month, week, day, hour, minute, second).`,
    );
  }
  const date = new Date(from.getTime());
  for (const part of parts) {
    const m = part.match(UNIT_RE);
    if (!m) {
      throw new Error(
        `Invalid certificate expiry ${JSON.stringify(text)}: unknown unit in ${
          JSON.stringify(part)
        }; use year, month, week, day, hour, minute or second.`,
      );
    }
    const n = Number(m[1]);
    switch (m[2]) {
      case "year":
        date.setUTCFullYear(date.getUTCFullYear() + n);
        break;
      case "month":
        date.setUTCMonth(date.getUTCMonth() + n);
        break;
      case "week":
        date.setUTCDate(date.getUTCDate() + 7 * n);
        break;
      case "day":
        date.setUTCDate(date.getUTCDate() + n);
        break;
      case "hour":
        date.setTime(date.getTime() + n * 3_600_000);
        break;
      case "minute":
        date.setTime(date.getTime() + n * 60_000);
        break;
      case "second":
        date.setTime(date.getTime() + n * 1000);
        break;
    }
  }
  if (date.getTime() <= from.getTime()) {
    throw new Error(
      `Invalid certificate expiry ${
        JSON.stringify(text)
      }: it must be in the future, such as "1 day".`,
    );
  }
  return date;
}

function yearsFrom(date: Date, years: number): Date {
  const d = new Date(date.getTime());
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}

function defaultNotBefore(): Date {
  return new Date(Date.now() - 60_000);
}

function generateKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_PARAMS, true, [
    "sign",
    "verify",
  ]) as Promise<CryptoKeyPair>;
}

/**
 * Creates a self-signed certificate authority (CN `name`, basic constraints
 * CA, key usage keyCertSign and cRLSign) with a new P-256 key.
 */
export async function createCa(
  name: string,
  validity: Validity,
): Promise<Issued> {
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    keys,
    notBefore: validity.notBefore ?? defaultNotBefore(),
    notAfter: validity.notAfter,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { name, certificate, keys };
}

/**
 * Creates a leaf certificate named `name`, signed by `ca`, with a new P-256
 * key: extended key usage serverAuth or clientAuth (never both, so that a
 * server certificate cannot pass as a client's), key usage
 * digitalSignature, and the given subject alternative names.
 */
export async function createLeaf(
  name: string,
  ca: Issued,
  options: LeafOptions,
): Promise<Issued> {
  const keys = await generateKeys();
  const names: x509.JsonGeneralName[] = [
    ...(options.dnsNames ?? []).map((value) => ({
      type: "dns" as const,
      value,
    })),
    ...(options.ipAddresses ?? []).map((value) => ({
      type: "ip" as const,
      value,
    })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      options.usage === "server"
        ? x509.ExtendedKeyUsage.serverAuth
        : x509.ExtendedKeyUsage.clientAuth,
    ]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(
      ca.certificate.publicKey,
    ),
  ];
  // RFC 5280 4.2.1.6: with an empty subject the SAN extension is critical.
  const subject = options.commonName === undefined
    ? "O=Telejob"
    : `CN=${options.commonName}`;
  if (names.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(names));
  }
  const certificate = await x509.X509CertificateGenerator.create({
    subject,
    issuer: ca.certificate.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    notBefore: options.notBefore ?? defaultNotBefore(),
    notAfter: options.notAfter,
    signingAlgorithm: SIGNING,
    extensions,
  });
  return { name, certificate, keys };
}

/** Returns the certificate as PEM (`CERTIFICATE`). */
export function certificatePem(issued: Issued): string {
  return issued.certificate.toString("pem") + "\n";
}

/** Returns the private key as PKCS#8 PEM (`PRIVATE KEY`). */
export async function privateKeyPem(issued: Issued): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", issued.keys.privateKey);
  return x509.PemConverter.encode(der, "PRIVATE KEY") + "\n";
}

/**
 * Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (mode 0600) and returns
 * the two paths.
 */
export async function writeIssued(
  dir: string,
  issued: Issued,
): Promise<[string, string]> {
  await mkdir(dir, { recursive: true });
  const crt = join(dir, `${issued.name}.crt`);
  const key = join(dir, `${issued.name}.key`);
  await writeFile(crt, certificatePem(issued));
  await writeFile(key, await privateKeyPem(issued), { mode: 0o600 });
  // writeFile's mode applies only on creation; tighten an existing file too.
  await chmod(key, 0o600);
  return [crt, key];
}

/** Options of {@linkcode writeDevCerts}: the seed's environment variables. */
export interface DevCertOptions {
  /** `CERT_EXPIRY`: overrides every certificate's expiry, as in the seed. */
  expiry?: string;
  /** `CERT_IP`: the leaf certificates' IP SAN; "" for none. */
  ip?: string;
  /** `CERT_DOMAIN`: the leaf certificates' DNS SAN; "" for none. */
  domain?: string;
  /** Receives one line per file written. */
  log?: (line: string) => void;
}

/** The CA pair and every leaf that {@linkcode writeDevCerts} writes. */
export interface DevCerts {
  serverCa: Issued;
  clientCa: Issued;
  server: Issued;
  clients: Issued[];
}

/**
 * Writes the seed's `just certs` set to `dir`: server-ca and client-ca (10
 * years, CA), server (90 days, serverAuth), client1 and client2 (1 day,
 * clientAuth), each leaf with SAN `localhost` and `127.0.0.1`. A given
 * `expiry` replaces all of these periods, as `CERT_EXPIRY` did in the seed.
 */
export async function writeDevCerts(
  dir: string,
  options: DevCertOptions = {},
): Promise<DevCerts> {
  const log = options.log ?? (() => {});
  const ip = options.ip ?? "127.0.0.1";
  const domain = options.domain ?? "localhost";
  const san = {
    dnsNames: domain === "" ? [] : [domain],
    ipAddresses: ip === "" ? [] : [ip],
  };
  const period = (fallback: string) => options.expiry ?? fallback;
  const until = (fallback: string) => parseExpiry(period(fallback));
  // Validate CERT_EXPIRY before anything is written.
  until("1 day");

  const write = async (issued: Issued, note: string) => {
    const [crt, key] = await writeIssued(dir, issued);
    log(`Created ${crt} (${note})`);
    log(`Created ${key}`);
  };
  const leafNote = (expiry: string) =>
    `expiry: ${expiry}, ip: ${ip}, domain: ${domain}`;

  const serverCa = await createCa("server-ca", {
    notAfter: until("10 years"),
  });
  await write(serverCa, `expiry: ${period("10 years")}, CA`);
  const clientCa = await createCa("client-ca", {
    notAfter: until("10 years"),
  });
  await write(clientCa, `expiry: ${period("10 years")}, CA`);
  const server = await createLeaf("server", serverCa, {
    usage: "server",
    commonName: "server",
    notAfter: until("90 days"),
    ...san,
  });
  await write(server, leafNote(period("90 days")));
  const clients: Issued[] = [];
  for (const name of ["client1", "client2"]) {
    const client = await createLeaf(name, clientCa, {
      usage: "client",
      commonName: name,
      notAfter: until("1 day"),
      ...san,
    });
    await write(client, leafNote(period("1 day")));
    clients.push(client);
  }
  return { serverCa, clientCa, server, clients };
}

/**
 * Writes the long-lived (20 years) test certificates to `dir`: the dev set,
 * `admin`, and the odd client certificates the TLS tests need (see
 * `tests/testdata/README.md`). Their private keys are published: insecure,
 * for tests only.
 */
export async function writeTestCerts(
  dir: string,
  options: { log?: (line: string) => void } = {},
): Promise<void> {
  const log = options.log ?? (() => {});
  const set = await writeDevCerts(dir, { expiry: "20 years", log });
  const san = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] };
  const now = new Date();
  const twentyYears = parseExpiry("20 years", now);
  const write = async (issued: Issued, note: string) => {
    const [crt, key] = await writeIssued(dir, issued);
    log(`Created ${crt} (${note})`);
    log(`Created ${key}`);
  };
  const client = (name: string, ca: Issued, extra: Partial<LeafOptions>) =>
    createLeaf(name, ca, {
      usage: "client",
      commonName: name,
      notAfter: twentyYears,
      ...san,
      ...extra,
    });

  await write(await client("admin", set.clientCa, {}), "client, CN admin");
  await write(
    await client("client-expired", set.clientCa, {
      notBefore: yearsFrom(now, -2),
      notAfter: yearsFrom(now, -1),
    }),
    "client, validity ended a year ago",
  );
  await write(
    await client("client-not-yet-valid", set.clientCa, {
      notBefore: parseExpiry("10 years", now),
      notAfter: parseExpiry("11 years", now),
    }),
    "client, valid only in 10 years",
  );
  await write(
    await client("client-no-cn", set.clientCa, { commonName: undefined }),
    "client, subject O=Telejob without a CN",
  );
  const otherCa = await createCa("other-ca", { notAfter: twentyYears });
  await write(otherCa, "CA that the server does not trust");
  await write(
    await client("client-wrong-ca", otherCa, {}),
    "client, signed by other-ca",
  );
  await write(
    await client("client-server-eku", set.clientCa, { usage: "server" }),
    "signed by client-ca, EKU serverAuth only",
  );
}
