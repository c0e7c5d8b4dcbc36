/**
 * Builds the startup helper `telejob-shim` from `shim/telejob_shim.c` into
 * `out/telejob-shim` (gitignored) with the system's C compiler, statically
 * linked so that no dynamic loader (and so no `LD_PRELOAD`) ever runs in it.
 * Compiles only when the binary is missing or older than its source, so the
 * tasks that need it (`serve`, `test`, `bench`, `compile`) run this first at
 * no cost once it is built.
 *
 *     deno run -A shim/build.ts          build when stale, print the path
 *
 * Needs gcc (or `$CC`) and the static C library (Debian: `apt-get install
 * gcc libc6-dev`).
 * @module
 */
import { fileURLToPath } from "node:url";

/** The helper's C source. */
export const SHIM_SOURCE = fileURLToPath(
  new URL("./telejob_shim.c", import.meta.url),
);
/** Where the build puts the helper: `out/telejob-shim` in the source tree. */
export const SHIM_BUILD_PATH = fileURLToPath(
  new URL("../out/telejob-shim", import.meta.url),
);

function mtime(path: string): number | undefined {
  try {
    return Deno.statSync(path).mtime?.getTime();
  } catch {
    return undefined;
  }
}

/** Whether the built helper is missing or older than its source. */
export function shimIsStale(): boolean {
  const built = mtime(SHIM_BUILD_PATH);
  const source = mtime(SHIM_SOURCE);
  return built === undefined || (source !== undefined && built < source);
}

let building: Promise<string> | undefined;

/**
 * Builds the helper when it is missing or stale and resolves with its path.
 * The compiler writes a temporary file that is renamed into place, so
 * concurrent builds (test files run in parallel) never see half a binary.
 */
export function buildShim(): Promise<string> {
  building ??= build().finally(() => building = undefined);
  return building;
}

async function build(): Promise<string> {
  if (!shimIsStale()) return SHIM_BUILD_PATH;
  const dir = fileURLToPath(new URL("../out", import.meta.url));
  await Deno.mkdir(dir, { recursive: true });
  const temp = `${SHIM_BUILD_PATH}.${Deno.pid}.tmp`;
  const cc = Deno.env.get("CC") || "gcc";
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(cc, {
      args: [
        "-static",
        "-O2",
        "-s",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-o",
        temp,
        SHIM_SOURCE,
      ],
      stdin: "null",
    }).output();
  } catch (error) {
    throw new Error(
      `Cannot build the startup helper: ${cc} did not run (${
        error instanceof Error ? error.message : String(error)
      }); install gcc and libc6-dev`,
    );
  }
  if (!output.success) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(
      `Cannot build the startup helper with ${cc}: ${
        new TextDecoder().decode(output.stderr).trim()
      }; install gcc and libc6-dev (the static C library)`,
    );
  }
  await Deno.chmod(temp, 0o755);
  await Deno.rename(temp, SHIM_BUILD_PATH);
  return SHIM_BUILD_PATH;
}

if (import.meta.main) {
  try {
    console.log(await buildShim());
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(1);
  }
}
