/**
 * `telejob-server certs`: makes the certificates a binary install needs (no
 * repository, no `deno task certs`), and renews them from the same CAs.
 * @module
 */
import {
  type CommandSpec,
  helpText,
  parseCommand,
  UsageError,
} from "../common/args.ts";
import {
  CertSetError,
  checkServerName,
  checkUserName,
  DEFAULT_SERVER_NAMES,
  DEFAULT_USERS,
  MAX_DAYS,
  writeCertSet,
} from "../pki/cert_set.ts";

/** The flags of `telejob-server certs`. */
export const CERTS_SPEC: CommandSpec = {
  name: "telejob-server certs",
  usage: "--dir DIR [--user NAME]... [--server-name NAME]... [--days N]",
  summary:
    "Make the CAs, a server certificate and a client certificate per user in DIR; run again to issue new certificates from the same CAs (renewal).",
  flags: [
    {
      name: "dir",
      type: "string",
      value: "DIR",
      description: "Where the certificates and keys go (required)",
    },
    {
      name: "user",
      type: "string",
      multiple: true,
      value: "NAME",
      description:
        `Issue a client certificate with common name NAME (default for a new set: ${
          DEFAULT_USERS.join(", ")
        })`,
    },
    {
      name: "server-name",
      type: "string",
      multiple: true,
      value: "NAME",
      description:
        `DNS name or IP address of the server certificate (default: the existing certificate's, else ${
          DEFAULT_SERVER_NAMES.join(", ")
        })`,
    },
    {
      name: "days",
      type: "string",
      value: "N",
      description:
        "Validity of the certificates issued now (default: server 90, users 1)",
    },
  ],
  positionals: { max: 0 },
  details:
    `Files: server-ca.crt/.key and client-ca.crt/.key (CAs, 10 years, made
only when absent), server.crt/.key, and NAME.crt/.key per user. Keys are
written 0600; a new DIR is made 0700. Keep the CA keys somewhere safe: whoever
holds client-ca.key can make any user, admins included.

Point the server at server.crt, server.key and client-ca.crt; give each user
their NAME.crt, NAME.key and server-ca.crt.

Examples:
  telejob-server certs --dir /etc/telejob/pki --server-name telejob.example.com \\
      --user admin --user alice --days 365
  telejob-server certs --dir /etc/telejob/pki --user bob --days 365   # add bob, renew the server`,
};

/**
 * Runs `telejob-server certs` and returns its exit code: 0 done, 1 when a
 * file is in the way or cannot be written, 2 for a usage error.
 */
export async function certsMain(
  args: string[],
  options: { log?: (line: string) => void } = {},
): Promise<number> {
  const log = options.log ?? ((line: string) => console.log(line));
  try {
    const parsed = parseCommand(CERTS_SPEC, args, { env: () => undefined });
    if (parsed.help) {
      console.log(helpText(CERTS_SPEC).trimEnd());
      return 0;
    }
    const dir = parsed.string("dir");
    if (!dir) {
      throw new UsageError(
        `Missing --dir for "telejob-server certs": give the directory for the certificates`,
      );
    }
    const users = parsed.strings("user");
    for (const user of users) {
      const problem = checkUserName(user);
      if (problem) {
        throw new UsageError(
          `Invalid --user ${JSON.stringify(user)}: ${problem}`,
        );
      }
    }
    const serverNames = parsed.strings("server-name");
    for (const name of serverNames) {
      const problem = checkServerName(name);
      if (problem) {
        throw new UsageError(
          `Invalid --server-name ${JSON.stringify(name)}: ${problem}`,
        );
      }
    }
    const daysText = parsed.string("days");
    let days: number | undefined;
    if (daysText !== undefined) {
      days = /^\d+$/.test(daysText) ? Number(daysText) : NaN;
      if (!Number.isSafeInteger(days) || days < 1 || days > MAX_DAYS) {
        throw new UsageError(
          `Invalid --days ${
            JSON.stringify(daysText)
          }: expected a whole number of days from 1 to ${MAX_DAYS}`,
        );
      }
    }
    await writeCertSet(dir, { users, serverNames, days, log });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(error.message);
      return 2;
    }
    if (error instanceof CertSetError) {
      console.error(error.message);
      return 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`Cannot write the certificates: ${message}`);
    return 1;
  }
}
