/**
 * The version of Telejob, for `--version` and for the check that warns when
 * the CLI and the server are of incompatible releases.
 *
 * The `version` field of `deno.json` is the single source. The git commit is
 * baked in by `deno task compile` (its generated entry points call
 * {@linkcode setBuildCommit}); from source it comes from `git rev-parse` in
 * the checkout, when there is one.
 * @module
 */
import denoConfig from "../deno.json" with { type: "json" };
import { fileURLToPath } from "node:url";

/** This release, from `deno.json`: `MAJOR.MINOR.PATCH`. */
export const VERSION: string = denoConfig.version;

/**
 * The response header (gRPC initial metadata) in which telejob-server sends
 * its version with every answer, so the CLI can warn without an extra call.
 */
export const VERSION_HEADER = "telejob-version";

let buildCommit: string | undefined;

/** Records the commit a compiled binary was built from (build step only). */
export function setBuildCommit(commit: string): void {
  buildCommit = commit;
}

/**
 * The commit this program was built from: the one baked in at build time,
 * else `git rev-parse HEAD` (with `-dirty` for local changes) in the
 * checkout this module lives in, else undefined.
 */
export async function commit(): Promise<string | undefined> {
  if (buildCommit !== undefined) return buildCommit;
  if (!import.meta.url.startsWith("file:")) return undefined;
  const cwd = fileURLToPath(new URL("..", import.meta.url));
  const git = async (...args: string[]): Promise<string | undefined> => {
    try {
      const out = await new Deno.Command("git", {
        args,
        cwd,
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output();
      return out.success ? new TextDecoder().decode(out.stdout) : undefined;
    } catch {
      // No git, or a compiled binary whose directory is not on disk.
      return undefined;
    }
  };
  const head = (await git("rev-parse", "--short=12", "HEAD"))?.trim();
  if (!head) return undefined;
  const changes = await git("status", "--porcelain", "--untracked-files=no");
  return changes ? `${head}-dirty` : head;
}

/**
 * The `--version` line of `program`, e.g.
 * `telejob-server 0.1.0 (commit 0c55a00e1f2a, Deno 2.9.6, x86_64-unknown-linux-gnu)`.
 */
export async function versionText(program: string): Promise<string> {
  const sha = await commit();
  const parts = [
    `commit ${sha ?? "unknown"}`,
    `Deno ${Deno.version.deno}`,
    Deno.build.target,
  ];
  return `${program} ${VERSION} (${parts.join(", ")})`;
}

/**
 * The part of a version that must match for the CLI and server to be
 * compatible: the major version, or `0.MINOR` before 1.0 (where, as in
 * Cargo and npm's caret ranges, a minor release may break the API).
 * Undefined for a string that is not a version.
 */
export function compatibilityKey(version: string): string | undefined {
  const m = /^v?(\d+)\.(\d+)\.\d+(?:[-+].*)?$/.exec(version.trim());
  if (!m) return undefined;
  return m[1] === "0" ? `0.${Number(m[2])}` : String(Number(m[1]));
}

/**
 * The warning to print when a server at `address` reports `serverVersion`
 * and it is incompatible with `clientVersion` (default this release);
 * undefined when they are compatible or the server's version is unreadable.
 */
export function versionMismatch(
  serverVersion: string,
  options: { address: string; clientVersion?: string },
): string | undefined {
  const clientVersion = options.clientVersion ?? VERSION;
  const server = compatibilityKey(serverVersion);
  if (server === undefined || server === compatibilityKey(clientVersion)) {
    return undefined;
  }
  return `Warning: the server at ${options.address} runs telejob-server ${serverVersion}, and this telejob is ${clientVersion}, a different major version: some calls may fail or be misread; install the CLI that matches the server`;
}
