/**
 * The CLI's connection to telejob-server: loads and checks the client
 * certificate, opens a grpc-js channel over mutual TLS 1.3, and turns every
 * failure into one line that says what went wrong and what to do.
 * @module
 */
import { dropIpServerName } from "../compat/secure_connector.ts";
import { type HostPort, splitHostPort } from "../common/address.ts";
import * as grpc from "@grpc/grpc-js";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { VERSION_HEADER } from "../version/mod.ts";
import { CliError } from "./errors.ts";
import { createSecureContext } from "node:tls";
import {
  type Job,
  JobView,
  type LogsRequest,
  type LogsResponse,
  type StartRequest,
  TelejobClient,
} from "../proto/gen/telejob/v1/telejob.ts";

/** Where the server is and which files prove who we are. */
export interface ConnectOptions {
  /** `HOST:PORT` of telejob-server. */
  address: string;
  /** PEM client certificate path. */
  clientCert: string;
  /** PEM private key path. */
  clientKey: string;
  /** PEM CA that signed the server's certificate; system roots when absent. */
  serverCaCert?: string;
  /** Clock for the validity check; default now. */
  now?: Date;
  /** Called once, with the version the server sends in its first answer. */
  onServerVersion?: (version: string) => void;
}

/** The loaded TLS files. */
export interface ClientTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** The certificate's common name: the user the server will see. */
  user: string;
}

async function readFile(path: string, what: string): Promise<Buffer> {
  try {
    return Buffer.from(await Deno.readFile(path));
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new CliError(
      `Cannot read the ${what} ${JSON.stringify(path)} (${reason}): ${
        hintFor(what)
      }`,
    );
  }
}

function hintFor(what: string): string {
  switch (what) {
    case "client certificate":
      return "pass --client-cert or set $TELEJOB_CLIENT_CERT";
    case "client key":
      return "pass --client-key or set $TELEJOB_CLIENT_KEY";
    default:
      return "pass --server-ca-cert or set $TELEJOB_SERVER_CA_CERT";
  }
}

const utc = (d: Date) => d.toISOString().replace(/\.000Z$/, "Z");

/**
 * Reads the client certificate, key and (optional) server CA, and checks
 * locally what the server would otherwise refuse with a bare handshake
 * failure: the certificate is PEM, valid now, has a common name, and the
 * key belongs to it.
 *
 * @throws {CliError} naming the file and what to do.
 */
export async function loadClientTls(
  options: ConnectOptions,
): Promise<ClientTls> {
  const [cert, key, ca] = await Promise.all([
    readFile(options.clientCert, "client certificate"),
    readFile(options.clientKey, "client key"),
    options.serverCaCert
      ? readFile(options.serverCaCert, "server CA certificate")
      : undefined,
  ]);
  const certName = JSON.stringify(options.clientCert);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new CliError(
      `The client certificate ${certName} is not a PEM certificate: pass the .crt file with --client-cert`,
    );
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new CliError(
      `The client key ${
        JSON.stringify(options.clientKey)
      } is not a PEM private key: pass the .key file with --client-key`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new CliError(
      `The client key ${
        JSON.stringify(options.clientKey)
      } does not belong to the certificate ${certName}: pass the matching pair with --client-cert and --client-key`,
    );
  }
  const now = options.now ?? new Date();
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (now > notAfter) {
    throw new CliError(
      `The client certificate ${certName} expired on ${
        utc(notAfter)
      }: get a new one (for development: deno task certs)`,
    );
  }
  if (now < notBefore) {
    throw new CliError(
      `The client certificate ${certName} is not valid before ${
        utc(notBefore)
      }: check this machine's clock or get a certificate that is valid now`,
    );
  }
  const user = /(?:^|\n)CN=([^\n]*)/.exec(x509.subject)?.[1] ?? "";
  if (user === "") {
    throw new CliError(
      `The client certificate ${certName} has no common name, and the server takes the user name from it: get a certificate with a CN`,
    );
  }
  if (ca) {
    try {
      new X509Certificate(ca);
    } catch {
      throw new CliError(
        `The server CA certificate ${
          JSON.stringify(options.serverCaCert)
        } is not a PEM certificate: pass the CA's .crt file with --server-ca-cert`,
      );
    }
  }
  return { cert, key, ca, user };
}

/**
 * Splits `HOST:PORT` with the server's grammar (`common/address.ts`); throws
 * a usage-style message when it is not one.
 */
export function parseAddress(address: string): HostPort {
  const parsed = splitHostPort(address);
  if (typeof parsed === "string") {
    throw new CliError(
      `Invalid server address ${
        JSON.stringify(address)
      }: use HOST:PORT, such as localhost:8443, with --address or $TELEJOB_ADDRESS`,
    );
  }
  return parsed;
}

/**
 * Builds grpc-js credentials for mutual TLS 1.3. IP targets connect without a
 * TLS server name, which Deno's `node:tls` refuses
 * (`compat/secure_connector.ts`).
 */
export function clientCredentials(tls: ClientTls): grpc.ChannelCredentials {
  const context = createSecureContext({
    ca: tls.ca,
    key: tls.key,
    cert: tls.cert,
    minVersion: "TLSv1.3",
  });
  return dropIpServerName(grpc.credentials.createFromSecureContext(context));
}

/** What an error message may mention. */
interface ErrorContext {
  address: string;
  clientCert: string;
  jobId?: string;
}

/** Turns a grpc-js error into the one line the CLI prints. */
export function describeError(err: unknown, ctx: ErrorContext): string {
  if (err instanceof CliError) return err.message;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code !== "number") {
    return `Unexpected error: ${
      err instanceof Error ? err.message : String(err)
    }`;
  }
  const details = e.details ?? "";
  const at = `telejob-server at ${ctx.address}`;
  const The = `The server at ${ctx.address}`;
  switch (e.code) {
    case grpc.status.UNAVAILABLE: {
      // grpc-js says "No connection established" when it never got a
      // working connection; anything else is a connection lost mid-call.
      if (/shutting down/i.test(details)) {
        // telejob-server ends open calls this way at a graceful shutdown.
        return `${The} is shutting down and ended the call: run the command again once it is back`;
      }
      if (!details.startsWith("No connection established")) {
        return `Lost the connection to ${at} (${details}): check that the server is still running, then run the command again`;
      }
      const last =
        /Last error: (.*?)(?:\. Resolution note:.*)?$/s.exec(details)?.[1] ??
          details;
      if (/ECONNREFUSED/.test(last)) {
        return `Cannot reach ${at} (connection refused): check --address or $TELEJOB_ADDRESS and that the server is running`;
      }
      if (
        /ENOTFOUND|EAI_AGAIN|getaddrinfo|failed to lookup|Name resolution failed/i
          .test(last)
      ) {
        return `Cannot resolve the host of ${ctx.address}: check --address or $TELEJOB_ADDRESS`;
      }
      if (/ProtocolVersion|protocol version|Tls12NotOffered/i.test(last)) {
        return `${The} does not speak TLS 1.3, which telejob requires: point --address at a telejob-server`;
      }
      if (/ALTNAME|does not match certificate/i.test(last)) {
        return `The server's certificate is not valid for ${ctx.address}: use an address it names (see its SANs) with --address`;
      }
      if (
        /issuer|self[- ]signed|UnknownIssuer|verify|certificate has expired|not yet valid/i
          .test(last)
      ) {
        return `Cannot trust the certificate of ${at} (${
          last.replace(/^Error: /, "")
        }): pass the CA that signed it with --server-ca-cert or $TELEJOB_SERVER_CA_CERT`;
      }
      if (
        /Failed to connect|alert|handshake|ECONNRESET|EPIPE|socket hang up|Connection dropped/i
          .test(last)
      ) {
        return `${The} refused the TLS handshake: check that the client certificate ${
          JSON.stringify(ctx.clientCert)
        } is signed by the server's client CA and made for client authentication`;
      }
      return `Cannot reach ${at} (${last}): check --address or $TELEJOB_ADDRESS and that the server is running`;
    }
    case grpc.status.DEADLINE_EXCEEDED:
      return `No answer from ${at} in time: check --address and that the server is running`;
    case grpc.status.NOT_FOUND:
      return ctx.jobId === undefined
        ? `Not found: ${details}`
        : `No job ${
          JSON.stringify(ctx.jobId)
        }: run "telejob list" to see your jobs`;
    case grpc.status.UNAUTHENTICATED:
    case grpc.status.PERMISSION_DENIED:
      return `The server refused the client certificate ${
        JSON.stringify(ctx.clientCert)
      }: ${details}`;
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.RESOURCE_EXHAUSTED:
    case grpc.status.FAILED_PRECONDITION:
      return details;
    case grpc.status.UNIMPLEMENTED:
      return `${The} does not support this call (${details}): update the server or the CLI`;
    case grpc.status.CANCELLED:
      return `The call was cancelled: ${details}`;
    default:
      return `${The} failed: ${details}; its log has the details`;
  }
}

/** Jobs asked for per List call: the server's maximum page. */
const LIST_PAGE_SIZE = 1000;

/** Options of calls that return one answer. */
export interface CallOptions {
  /** Milliseconds before giving up; default 30 s. */
  timeoutMs?: number;
}

/** A connected client: the typed calls the CLI makes, and `close`. */
export class Connection {
  readonly #client: TelejobClient;
  /** The user the certificate names. */
  readonly user: string;
  #onServerVersion?: (version: string) => void;

  /** Opens the channel (lazily: the first call connects). */
  constructor(
    address: string,
    tls: ClientTls,
    options: { onServerVersion?: (version: string) => void } = {},
  ) {
    this.#client = new TelejobClient(address, clientCredentials(tls), {
      // One attempt, fail fast: a person is waiting at a terminal.
      "grpc.enable_retries": 0,
      "grpc.max_receive_message_length": 16 * 1024 * 1024,
    });
    this.user = tls.user;
    this.#onServerVersion = options.onServerVersion;
  }

  /** Reports the server's version header the first time one arrives. */
  #sawMetadata = (metadata: grpc.Metadata | undefined): void => {
    const report = this.#onServerVersion;
    const value = metadata?.get(VERSION_HEADER)[0];
    if (!report || typeof value !== "string") return;
    this.#onServerVersion = undefined;
    report(value);
  };

  #unary<Req, Res>(
    method: (
      req: Req,
      md: grpc.Metadata,
      opts: Partial<grpc.CallOptions>,
      cb: (err: grpc.ServiceError | null, res: Res) => void,
    ) => grpc.ClientUnaryCall,
    req: Req,
    options: CallOptions,
  ): Promise<Res> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    return new Promise((resolve, reject) => {
      const call = method.call(
        this.#client,
        req,
        new grpc.Metadata(),
        { deadline },
        (err, res) => {
          // An error without headers carries the version in its trailers.
          if (err) this.#sawMetadata(err.metadata);
          return err ? reject(err) : resolve(res);
        },
      );
      call.on("metadata", this.#sawMetadata);
    });
  }

  /** Starts a job; returns its id. */
  async start(req: StartRequest, options: CallOptions = {}): Promise<string> {
    return (await this.#unary(this.#client.start, req, options)).id;
  }

  /** Stops a job, waiting up to `graceMs` for it to end. */
  async stop(
    id: string,
    options: CallOptions & { graceMs?: number } = {},
  ): Promise<Job | undefined> {
    const grace = options.graceMs === undefined ? undefined : {
      seconds: Math.floor(options.graceMs / 1000),
      nanos: (options.graceMs % 1000) * 1_000_000,
    };
    const res = await this.#unary(this.#client.stop, { id, grace }, {
      timeoutMs: options.timeoutMs ?? 30_000 + (options.graceMs ?? 10_000),
    });
    return res.job;
  }

  /** One job's status. */
  async status(id: string, options: CallOptions = {}): Promise<Job> {
    const res = await this.#unary(this.#client.status, { id }, options);
    if (!res.job) throw new CliError(`The server sent no job for ${id}`);
    return res.job;
  }

  /**
   * The caller's jobs (everyone's for an admin), oldest first, fetched page
   * by page. `full` asks for every argument; without it long argument lists
   * come abbreviated (the server's BASIC view), which is what a table shows.
   */
  async list(
    options: CallOptions & { full?: boolean } = {},
  ): Promise<Job[]> {
    const jobs: Job[] = [];
    const view = options.full ? JobView.JOB_VIEW_FULL : JobView.JOB_VIEW_BASIC;
    let pageToken = "";
    do {
      const page = await this.#unary(this.#client.list, {
        pageSize: LIST_PAGE_SIZE,
        pageToken,
        view,
      }, options);
      jobs.push(...page.jobs);
      if (page.nextPageToken !== "" && page.nextPageToken === pageToken) {
        throw new CliError(
          "The server sent the same list page twice: report this server bug",
        );
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return jobs;
  }

  /**
   * Streams a job's output. Cancel it with `signal`; the iterator then ends
   * without an error.
   */
  async *logs(
    req: LogsRequest,
    options: { signal?: AbortSignal } = {},
  ): AsyncGenerator<Uint8Array> {
    const call = this.#client.logs(req);
    call.on("metadata", this.#sawMetadata);
    const onAbort = () => call.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const msg of call as AsyncIterable<LogsResponse>) {
        yield msg.data;
      }
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      // Ends the HTTP/2 stream if the consumer stopped early.
      call.cancel();
    }
  }

  /** Closes the channel so the process can exit. */
  close(): void {
    this.#client.close();
  }
}

/** Loads the TLS files, checks them and opens a connection. */
export async function connect(options: ConnectOptions): Promise<Connection> {
  parseAddress(options.address);
  const tls = await loadClientTls(options);
  return new Connection(options.address, tls, {
    onServerVersion: options.onServerVersion,
  });
}
