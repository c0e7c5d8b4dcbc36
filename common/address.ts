/**
 * The one `HOST:PORT` grammar of Telejob: the server's `--address` and the
 * CLI's `--address`/`$TELEJOB_ADDRESS` both split with
 * {@linkcode splitHostPort}, and each wraps the reason in its own message
 * (a listener may take port 0, any free port; a client must dial a real one).
 * @module
 */

/** A `HOST:PORT` split into its parts (IPv6 without its brackets). */
export interface HostPort {
  /** Host name or IP address. */
  host: string;
  /** Port number. */
  port: number;
}

/**
 * Splits `HOST:PORT` (`[v6]:PORT` for IPv6, surrounding spaces ignored).
 * Returns the parts, or a reason in words why `value` is not one: "expected
 * HOST:PORT", "the host is missing" or "the port must be from MIN to
 * 65535". `minPort` defaults to 1.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(splitHostPort("[::1]:8443"), { host: "::1", port: 8443 });
 * assert.equal(splitHostPort("host:0"), "the port must be from 1 to 65535");
 * ```
 */
export function splitHostPort(
  value: string,
  options: { minPort?: number } = {},
): HostPort | string {
  // A host has no spaces, slashes, brackets or colons (a URL or an
  // unbracketed IPv6 address is not an address here).
  const match = /^(?:\[([^\]\s]+)\]|([^:\s/[\]]*)):(\d{1,5})$/.exec(
    value.trim(),
  );
  if (!match) return "expected HOST:PORT";
  const host = match[1] ?? match[2];
  if (host === "") return "the host is missing";
  const port = Number(match[3]);
  const min = options.minPort ?? 1;
  if (port < min || port > 65535) {
    return `the port must be from ${min} to 65535`;
  }
  return { host, port };
}
