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
 *
 * The TLS files are loaded and checked in `pem.ts`; the grpc-js and Deno
 * hooks this policy relies on live in `compat/`.
 * @module
 */
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { TlsMaterial } from "./pem.ts";
import { OID_CLIENT_AUTH, parseCertificate } from "./x509.ts";

/** Oldest Deno that verifies client certificates correctly. */
export const MIN_DENO_VERSION = "2.8.1";

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
