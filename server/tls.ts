/**
 * Mutual TLS for telejob-server: TLS 1.3 only, an ECDSA P-256 server key,
 * and client certificates that chain to the client CA, are within their
 * validity period, carry exactly one non-empty common name (the user) and
 * are allowed for client authentication.
 *
 * The TLS stack (rustls, behind Deno's `node:tls`) checks the chain, the
 * validity period and — today — the extended key usage. We check the chain
 * signature, the dates, the common name and the extended key usage again
 * ourselves, on every connection and every call, so that a change in the
 * runtime cannot quietly let a certificate through (Deno before 2.8.1
 * accepted clients that sent no certificate at all).
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Http2SecureServer, ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { OID_CLIENT_AUTH, parseCertificate } from "./x509.ts";

/** Oldest Deno that verifies client certificates correctly. */
export const MIN_DENO_VERSION = "2.8.1";

/** A start-up problem with the TLS files or the runtime; the message says what to do. */
export class TlsConfigError extends Error {
  /** Creates the error with a message for the operator. */
  constructor(message: string) {
    super(message);
    this.name = "TlsConfigError";
  }
}

/** Paths of the PEM files the server needs. */
export interface TlsFiles {
  /** Server certificate chain (`--server-cert`). */
  serverCert: string;
  /** Server private key, ECDSA P-256 (`--server-key`). */
  serverKey: string;
  /** CA certificate(s) that client certificates must chain to (`--client-ca-cert`). */
  clientCaCert: string;
}

/** The loaded and checked TLS files. */
export interface TlsMaterial {
  /** Server certificate chain, PEM. */
  cert: Buffer;
  /** Server private key, PEM. */
  key: Buffer;
  /** Client CA bundle, PEM. */
  clientCa: Buffer;
  /** The client CA certificates, parsed. */
  clientCaCerts: X509Certificate[];
}

/**
 * Refuses a Deno older than {@linkcode MIN_DENO_VERSION}: returns an error
 * message, or `undefined` when `version` is recent enough.
 */
export function checkDenoVersion(
  version: string = Deno.version.deno,
): string | undefined {
  const parse = (v: string): number[] =>
    v.split(/[.+-]/).slice(0, 3).map((p) => Number.parseInt(p, 10) || 0);
  const have = parse(version);
  const need = parse(MIN_DENO_VERSION);
  for (let i = 0; i < 3; i++) {
    if (have[i] > need[i]) return undefined;
    if (have[i] < need[i]) {
      return `Deno ${version} is too old: telejob-server needs Deno ${MIN_DENO_VERSION} or later (older versions accept TLS clients without certificates); upgrade Deno`;
    }
  }
  return undefined;
}

async function readPem(path: string, flag: string): Promise<Buffer> {
  try {
    return Buffer.from(await Deno.readFile(path));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TlsConfigError(
      `Cannot read ${flag} ${
        JSON.stringify(path)
      }: ${reason}; check the path and its permissions`,
    );
  }
}

const PEM_CERT =
  /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function parseCertificates(
  pem: Buffer,
  flag: string,
  path: string,
): X509Certificate[] {
  const blocks = pem.toString("utf8").match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    throw new TlsConfigError(
      `${flag} ${
        JSON.stringify(path)
      } holds no PEM certificate; pass a file with "-----BEGIN CERTIFICATE-----" blocks`,
    );
  }
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new TlsConfigError(
        `${flag} ${
          JSON.stringify(path)
        } holds a certificate that cannot be parsed (${reason})`,
      );
    }
  });
}

/**
 * Reads and checks the server's TLS files: every file readable, the key an
 * ECDSA P-256 key that matches the certificate, the client CA a parseable
 * certificate. Throws {@linkcode TlsConfigError} naming the flag at fault.
 */
export async function loadTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const [cert, key, clientCa] = await Promise.all([
    readPem(files.serverCert, "--server-cert"),
    readPem(files.serverKey, "--server-key"),
    readPem(files.clientCaCert, "--client-ca-cert"),
  ]);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TlsConfigError(
      `--server-key ${
        JSON.stringify(files.serverKey)
      } is not a readable PEM private key (${reason})`,
    );
  }
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (privateKey.asymmetricKeyType !== "ec" || curve !== "prime256v1") {
    const kind = privateKey.asymmetricKeyType === "ec"
      ? `an EC key on ${curve ?? "an unknown curve"}`
      : `an ${(privateKey.asymmetricKeyType ?? "unknown").toUpperCase()} key`;
    throw new TlsConfigError(
      `--server-key ${
        JSON.stringify(files.serverKey)
      } is ${kind}; telejob-server needs an ECDSA P-256 (prime256v1) key`,
    );
  }
  const [leaf] = parseCertificates(cert, "--server-cert", files.serverCert);
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsConfigError(
      `--server-key ${JSON.stringify(files.serverKey)} does not belong to ` +
        `--server-cert ${
          JSON.stringify(files.serverCert)
        }; pass the key the certificate was issued for`,
    );
  }
  const clientCaCerts = parseCertificates(
    clientCa,
    "--client-ca-cert",
    files.clientCaCert,
  );
  return { cert, key, clientCa, clientCaCerts };
}

/**
 * grpc-js server credentials for mutual TLS 1.3: the client must send a
 * certificate that the TLS stack verifies against the client CA.
 */
class MutualTls13Credentials extends grpc.ServerCredentials {
  constructor(material: TlsMaterial) {
    super(
      {
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
        maxVersion: "TLSv1.3",
      },
      {
        ca: material.clientCa,
        cert: material.cert,
        key: material.key,
        minVersion: "TLSv1.3",
        maxVersion: "TLSv1.3",
      },
    );
  }
  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Server credentials for {@linkcode TlsMaterial}: mutual TLS, version 1.3 only. */
export function createServerCredentials(
  material: TlsMaterial,
): grpc.ServerCredentials {
  return new MutualTls13Credentials(material);
}

/** Outcome of {@linkcode verifyClientCertificate}. */
export type ClientVerdict =
  | { ok: true; user: string; notAfter?: Date }
  | { ok: false; reason: string };

interface StaticVerdict {
  verdict: ClientVerdict;
  notBefore?: Date;
  notAfter?: Date;
}

/** Everything but the validity period, which changes with the clock. */
function checkStatic(
  der: Uint8Array,
  clientCas: readonly X509Certificate[],
): StaticVerdict {
  let facts;
  let cert: X509Certificate;
  try {
    facts = parseCertificate(der);
    cert = new X509Certificate(der);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      verdict: {
        ok: false,
        reason: `malformed client certificate (${reason})`,
      },
    };
  }
  const refuse = (reason: string): StaticVerdict => ({
    verdict: { ok: false, reason },
  });
  const issued = clientCas.some((ca) => {
    try {
      return cert.checkIssued(ca) && cert.verify(ca.publicKey);
    } catch {
      return false;
    }
  });
  if (!issued) return refuse("client certificate not issued by the client CA");
  if (!facts.extKeyUsages?.includes(OID_CLIENT_AUTH)) {
    return refuse(
      "client certificate not allowed for client authentication (no clientAuth extended key usage)",
    );
  }
  if (facts.commonNames.length !== 1) {
    return refuse(
      facts.commonNames.length === 0
        ? "client certificate has no common name"
        : "client certificate has more than one common name",
    );
  }
  const user = facts.commonNames[0];
  // deno-lint-ignore no-control-regex
  if (user.trim() === "" || /[\u0000-\u001f\u007f]/.test(user)) {
    return refuse(
      "client certificate common name is empty or has control characters",
    );
  }
  return {
    verdict: { ok: true, user, notAfter: facts.notAfter },
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
  };
}

function checkDates(checked: StaticVerdict, now: Date): ClientVerdict {
  if (!checked.verdict.ok) return checked.verdict;
  if (checked.notBefore && now < checked.notBefore) {
    return { ok: false, reason: "client certificate not yet valid" };
  }
  if (checked.notAfter && now > checked.notAfter) {
    return { ok: false, reason: "client certificate expired" };
  }
  return checked.verdict;
}

/**
 * Checks a client certificate (DER) against our policy: issued by one of
 * `clientCas`, valid at `now`, exactly one non-empty common name without
 * control characters, and extended key usage `clientAuth` (required, not
 * merely absent). The user is the common name.
 */
export function verifyClientCertificate(
  der: Uint8Array,
  clientCas: readonly X509Certificate[],
  options: { now?: Date } = {},
): ClientVerdict {
  return checkDates(checkStatic(der, clientCas), options.now ?? new Date());
}

/**
 * {@linkcode verifyClientCertificate} with a bounded cache keyed by the
 * certificate, so that the per-call check costs a map lookup. The validity
 * period is checked on every call, so a certificate that expires during a
 * long connection stops working.
 */
export class ClientVerifier {
  readonly #clientCas: readonly X509Certificate[];
  readonly #cache = new Map<string, StaticVerdict>();
  readonly #max: number;

  /** Creates a verifier for certificates issued by `clientCas`. */
  constructor(
    clientCas: readonly X509Certificate[],
    options: { cacheSize?: number } = {},
  ) {
    this.#clientCas = clientCas;
    this.#max = options.cacheSize ?? 1024;
  }

  /** Verifies a DER certificate (see {@linkcode verifyClientCertificate}). */
  verify(der: Uint8Array, options: { now?: Date } = {}): ClientVerdict {
    const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength)
      .toString("base64");
    let checked = this.#cache.get(key);
    if (!checked) {
      checked = checkStatic(der, this.#clientCas);
      if (this.#cache.size >= this.#max) {
        const oldest = this.#cache.keys().next().value;
        if (oldest !== undefined) this.#cache.delete(oldest);
      }
      this.#cache.set(key, checked);
    }
    return checkDates(checked, options.now ?? new Date());
  }
}

/**
 * The user behind a call: the verified common name of the client
 * certificate, or a refusal reason (the call must then fail with
 * UNAUTHENTICATED).
 */
export function userOfCall(
  call: Pick<grpc.ServerUnaryCall<unknown, unknown>, "getAuthContext">,
  verifier: ClientVerifier,
): ClientVerdict {
  const context = call.getAuthContext();
  const raw = context.sslPeerCertificate?.raw;
  if (context.transportSecurityType !== "ssl" || !raw) {
    return { ok: false, reason: "no verified client certificate" };
  }
  return verifier.verify(raw);
}

/**
 * Makes `socket.getPeerCertificate()` (the plain form, which grpc-js's
 * `getAuthContext` calls on every call) return the certificate read at the
 * first call on this connection. Deno's implementation asks the TLS stack
 * and rebuilds the certificate object, DER copy included, on every call,
 * ~0.06 ms each. A TLS 1.3 connection's peer certificate cannot change after
 * the handshake (TLS 1.3 has no renegotiation), so reading it once per
 * connection loses nothing; the checks that depend on the clock stay per
 * call in {@linkcode ClientVerifier.verify}. The detailed form is passed
 * through.
 */
export function pinPeerCertificate(socket: TLSSocket): void {
  const read = socket.getPeerCertificate;
  let pinned: ReturnType<TLSSocket["getPeerCertificate"]> | undefined;
  socket.getPeerCertificate = function (
    this: TLSSocket,
    detailed?: boolean,
  ) {
    if (detailed) return read.call(this, detailed);
    // Not cached while empty: a socket without its handle yet (or any
    // more) answers without a certificate.
    if (!pinned?.raw) pinned = read.call(this, false);
    return pinned;
  } as TLSSocket["getPeerCertificate"];
}

/** Hooks run on each http2 server grpc-js creates (see {@linkcode hookHttp2Servers}). */
export interface Http2Hooks {
  /** A TCP connection was accepted, before its TLS handshake. */
  connection?: (socket: Socket) => void;
  /** The listener reported an error (accept failed). */
  error?: (error: Error) => void;
  /** Listen backlog (the kernel's queue of connections not yet accepted). */
  backlog?: number;
  /** A TLS connection finished its handshake; destroy it to refuse it. */
  secureConnection?: (socket: TLSSocket) => void;
  /** A new HTTP/2 session started. */
  session?: (session: ServerHttp2Session) => void;
  /** A TLS handshake failed. */
  tlsClientError?: (error: Error, socket: TLSSocket) => void;
}

/**
 * Installs `hooks` on every http2 server that `server` creates from now on
 * (call before `bindAsync`). grpc-js creates its http2 server in the private
 * method `createHttp2Server`; we wrap it on this instance only. The pinned
 * grpc-js version (deno.json) and the server tests keep this honest: if the
 * method disappears, this throws at start-up instead of silently skipping the
 * client-certificate and GOAWAY protections. Each connection's peer
 * certificate is also pinned ({@linkcode pinPeerCertificate}).
 */
export function hookHttp2Servers(server: grpc.Server, hooks: Http2Hooks): void {
  const target = server as unknown as {
    createHttp2Server?: (
      credentials: grpc.ServerCredentials,
    ) => Http2SecureServer;
  };
  const original = target.createHttp2Server;
  if (typeof original !== "function") {
    throw new Error(
      "grpc-js has no createHttp2Server method: this grpc-js version is not supported; use the version pinned in deno.json",
    );
  }
  target.createHttp2Server = (credentials) => {
    const http2Server = original.call(server, credentials);
    if (hooks.secureConnection) {
      // Prepended: refuse before the http2 session is set up on the socket.
      http2Server.prependListener("secureConnection", hooks.secureConnection);
    }
    // Prepended last, so it runs first: every reader of the connection's
    // certificate, the hook above included, gets the pinned one.
    http2Server.prependListener("secureConnection", pinPeerCertificate);
    if (hooks.session) http2Server.prependListener("session", hooks.session);
    if (hooks.connection) {
      http2Server.prependListener("connection", hooks.connection);
    }
    if (hooks.error) http2Server.on("error", hooks.error);
    if (hooks.backlog !== undefined) {
      // grpc-js listens with an address object; net takes the backlog there.
      const listen = http2Server.listen;
      const backlog = hooks.backlog;
      http2Server.listen = function (
        this: Http2SecureServer,
        ...args: unknown[]
      ) {
        if (args[0] && typeof args[0] === "object") {
          args[0] = { ...args[0], backlog };
        }
        return (listen as (...a: unknown[]) => Http2SecureServer).apply(
          this,
          args,
        );
      } as Http2SecureServer["listen"];
    }
    if (hooks.tlsClientError) {
      http2Server.on("tlsClientError", hooks.tlsClientError);
    }
    return http2Server;
  };
}
