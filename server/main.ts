/**
 * telejob-server: the Telejob gRPC API over mutual TLS 1.3.
 *
 * `deno run -A server/main.ts --help`, `deno task telejob-server --help`, or
 * compiled with `deno compile server/main.ts`.
 * @module
 */
import { detectDriver } from "../cgroup/mod.ts";
import { JobEngine } from "./jobs/mod.ts";
import { startTelejobServer } from "./app.ts";
import { parseServerArgs, UsageError } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { keyFileWarning } from "./jobs/layout.ts";
import { checkDenoVersion } from "./tls.ts";
import { loadTlsMaterial, TlsConfigError } from "./pem.ts";
import { versionText } from "../version/mod.ts";

/** Options of {@linkcode serverMain}, for tests and embedding. */
export interface ServerMainOptions {
  /** Where log lines go (default: JSON lines on stderr). */
  logger?: Logger;
  /** Resolves to ask for shutdown instead of waiting for SIGINT/SIGTERM. */
  stop?: Promise<unknown>;
}

function fail(message: string): number {
  console.error(message);
  return 1;
}

/** Resolves with the name of the first of SIGINT or SIGTERM to arrive. */
function nextSignal(): { promise: Promise<string>; dispose(): void } {
  let resolve!: (name: string) => void;
  const promise = new Promise<string>((r) => (resolve = r));
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const handler = (): void => resolve(name);
    Deno.addSignalListener(name, handler);
    return [name, handler] as const;
  });
  return {
    promise,
    dispose(): void {
      for (const [name, handler] of handlers) {
        Deno.removeSignalListener(name, handler);
      }
    },
  };
}

/**
 * Runs telejob-server with `args` until SIGINT or SIGTERM, then shuts down
 * gracefully; `certs ...` runs the certificate command instead. Returns the exit code: 0 after a clean shutdown, 1 when it
 * cannot start, 2 for a usage error.
 */
export async function serverMain(
  args: string[],
  options: ServerMainOptions = {},
): Promise<number> {
  if (args.includes("--version")) {
    console.log(await versionText("telejob-server"));
    return 0;
  }
  if (args[0] === "certs") {
    const { certsMain } = await import("./certs.ts");
    return await certsMain(args.slice(1));
  }
  let parsed;
  try {
    parsed = await parseServerArgs(args);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
  if ("help" in parsed) {
    console.log(parsed.help.trimEnd());
    return 0;
  }
  const config = parsed.config;

  const tooOld = checkDenoVersion();
  if (tooOld) return fail(tooOld);

  let tls;
  try {
    tls = await loadTlsMaterial(config);
  } catch (error) {
    if (error instanceof TlsConfigError) return fail(error.message);
    throw error;
  }

  const logger = options.logger ?? createLogger();
  // Loud, not fatal: the committed test certificates are world-readable.
  const keyWarning = keyFileWarning(config.serverKey);
  if (keyWarning !== undefined) {
    console.error(`WARNING: ${keyWarning}`);
    logger.event("insecure_key_file", { warning: keyWarning });
  }
  let engine: JobEngine;
  let cgroups;
  try {
    cgroups = await detectDriver({
      parent: config.cgroupParent,
      limits: config.limits,
    });
    logger.event("cgroup_placement", {
      cgroups: cgroups.parent,
      reason: cgroups.placement,
    });
    engine = await JobEngine.open({
      dataDir: config.dataDir,
      cgroups,
      limits: config.limits,
      outputLimitBytes: config.outputLimitBytes,
      admins: config.admins,
      maxJobsPerUser: config.maxJobsPerUser,
      runAs: config.runAs,
      uidRange: config.uidRange,
      shimPath: config.shimPath,
    });
  } catch (error) {
    return fail(
      `Cannot start the job engine: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }

  // Signals are watched from before listening, so an early SIGTERM still
  // shuts down cleanly.
  const signal = nextSignal();
  let server;
  try {
    server = await startTelejobServer(engine, {
      address: config.address,
      tls,
      logger,
      budgets: config.budgets,
    });
  } catch (error) {
    signal.dispose();
    await engine.shutdown({ graceMs: 0 });
    const { host, port } = config.address;
    return fail(
      `Cannot listen on ${host}:${port}: ${
        error instanceof Error ? error.message : String(error)
      }; pick another --address`,
    );
  }
  logger.event("listening", {
    address: config.address.host,
    port: server.port,
    dataDir: config.dataDir,
    cgroups: `v${cgroups.version} below ${cgroups.parent}`,
    admins: config.admins,
  });

  const reason = await Promise.race([
    signal.promise,
    (options.stop ?? new Promise<never>(() => {})).then(() => "stop"),
  ]);
  logger.event("shutting_down", { reason });
  // The listeners stay until the end: a second SIGTERM (a service manager
  // repeating itself) must not kill us half-way through stopping jobs.
  try {
    await server.shutdown();
    await engine.shutdown();
  } finally {
    signal.dispose();
  }
  logger.event("stopped");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await serverMain(Deno.args));
}
