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

/**
 * Where a build for `arch` (`Deno.build.arch` names: `x86_64`, `aarch64`)
 * goes: `out/telejob-shim-<arch>`, the copies `deno task compile` embeds,
 * one per release target. Without `arch`, {@linkcode SHIM_BUILD_PATH}, the
 * host's own helper that source runs use.
 */
export function shimBuildPath(arch?: string): string {
  return arch === undefined ? SHIM_BUILD_PATH : `${SHIM_BUILD_PATH}-${arch}`;
}

/**
 * The C compiler for `arch`: `$CC` or gcc for this machine's architecture,
 * the Debian/Ubuntu cross compiler `<arch>-linux-gnu-gcc` for another one
 * (`apt-get install gcc-aarch64-linux-gnu`).
 */
export function compilerFor(arch?: string): string {
  return arch === undefined || arch === Deno.build.arch
    ? Deno.env.get("CC") || "gcc"
    : `${arch}-linux-gnu-gcc`;
}

/** Whether the built helper is missing or older than its source. */
export function shimIsStale(arch?: string): boolean {
  const built = mtime(shimBuildPath(arch));
  const source = mtime(SHIM_SOURCE);
  return built === undefined || (source !== undefined && built < source);
}

const building = new Map<string, Promise<string>>();

/**
 * Builds the helper (for `options.arch`, default this machine) when it is
 * missing or stale and resolves with its path. The compiler writes a
 * temporary file that is renamed into place, so concurrent builds (test
 * files run in parallel) never see half a binary.
 */
export function buildShim(options: { arch?: string } = {}): Promise<string> {
  const path = shimBuildPath(options.arch);
  let work = building.get(path);
  if (work === undefined) {
    work = build(options.arch).finally(() => building.delete(path));
    building.set(path, work);
  }
  return work;
}

async function build(arch: string | undefined): Promise<string> {
  const path = shimBuildPath(arch);
  if (!shimIsStale(arch)) return path;
  const dir = fileURLToPath(new URL("../out", import.meta.url));
  await Deno.mkdir(dir, { recursive: true });
  const temp = `${path}.${Deno.pid}.tmp`;
  const cc = compilerFor(arch);
  const install = arch === undefined || arch === Deno.build.arch
    ? "install gcc and libc6-dev"
    : `install the cross compiler (Debian/Ubuntu: apt-get install gcc-${arch}-linux-gnu)`;
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
      }); ${install}`,
    );
  }
  if (!output.success) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(
      `Cannot build the startup helper with ${cc}: ${
        new TextDecoder().decode(output.stderr).trim()
      }; ${install} (with its static C library)`,
    );
  }
  await Deno.chmod(temp, 0o755);
  await Deno.rename(temp, path);
  return path;
}

if (import.meta.main) {
  try {
    console.log(await buildShim());
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(1);
  }
}
