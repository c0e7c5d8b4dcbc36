/**
 * Loads the server's TLS files (`--server-cert`, `--server-key`,
 * `--client-ca-cert`) and checks them at start-up, so a wrong file fails
 * with a message naming its flag instead of at the first handshake.
 * @module
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";

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
