/**
 * `deno task certs`: writes the development certificates to `$CERT_DIR`
 * (default `certs`), like the seed's `just certs`. `CERT_EXPIRY` (e.g.
 * `"20 years"`) replaces every expiry; `CERT_IP` and `CERT_DOMAIN` set the
 * leaf certificates' SANs ("" leaves one out).
 *
 * `deno task certs:testdata` (`--testdata DIR`) writes the long-lived test
 * certificates, including the odd ones the TLS tests need.
 * @module
 */
import { writeDevCerts, writeTestCerts } from "./mod.ts";

const usage = `Usage: deno task certs                 write certs/ (dev set)
       deno task certs:testdata        write tests/testdata/ (test set)

Environment (dev set):
  CERT_DIR      output directory (default certs)
  CERT_EXPIRY   expiry of every certificate, e.g. "20 years"
                (default: CAs 10 years, server 90 days, clients 1 day)
  CERT_IP       IP SAN of the leaf certificates (default 127.0.0.1, "" for none)
  CERT_DOMAIN   DNS SAN of the leaf certificates (default localhost, "" for none)`;

/** Runs the certificate tool and returns its exit code. */
export async function certsMain(args: string[]): Promise<number> {
  const log = (line: string) => console.log(line);
  try {
    if (args[0] === "--help" || args[0] === "-h") {
      console.log(usage);
      return 0;
    }
    if (args[0] === "--testdata") {
      if (args.length !== 2) {
        console.error(`--testdata needs one directory.\n${usage}`);
        return 2;
      }
      await writeTestCerts(args[1], { log });
      return 0;
    }
    if (args.length > 0) {
      console.error(
        `Unexpected argument ${JSON.stringify(args[0])}.\n${usage}`,
      );
      return 2;
    }
    const env = (name: string) => Deno.env.get(name);
    await writeDevCerts(env("CERT_DIR") || "certs", {
      expiry: env("CERT_EXPIRY") || undefined,
      ip: env("CERT_IP"),
      domain: env("CERT_DOMAIN"),
      log,
    });
    return 0;
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await certsMain(Deno.args));
}
