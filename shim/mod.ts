/**
 * Where the server finds `telejob-shim`, the startup helper of every job
 * (`shim/telejob_shim.c`; its argument protocol is `cgroup/shim.ts`):
 *
 * 1. `--shim PATH` when given;
 * 2. `telejob-shim` next to the server's executable (a release archive);
 * 3. compiled with `deno compile` (which embeds the target's
 *    `out/telejob-shim-<arch>` with `--include`, see `tools/compile.ts`):
 *    the embedded copy, extracted at start-up to
 *    `<data-dir>/telejob-shim`, root-owned, mode 0755, since a file inside
 *    the executable cannot be exec'd;
 * 4. run from source: `out/telejob-shim`, built first when missing or stale.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { buildShim, SHIM_BUILD_PATH, shimBuildPath } from "./build.ts";

export { buildShim, SHIM_BUILD_PATH, shimBuildPath };

/** File name of the helper. */
export const SHIM_NAME = "telejob-shim";

/** ELF `e_machine` of each architecture Deno runs on. */
const ELF_MACHINE: Record<string, number> = { x86_64: 62, aarch64: 183 };

/** Options of {@linkcode locateShim}. */
export interface LocateOptions {
  /** An explicit path (`--shim`). */
  path?: string;
  /** The data dir, where a compiled server extracts its embedded copy. */
  dataDir: string;
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Whether this process is a `deno compile` binary rather than `deno run`. */
function isCompiled(): boolean {
  return !/^deno(\.exe)?$/.test(basename(Deno.execPath()));
}

/**
 * The path of the helper to spawn (see the module doc for the order).
 * Throws an Error that says what to do when there is none.
 */
export async function locateShim(options: LocateOptions): Promise<string> {
  if (options.path !== undefined) {
    if (!isExecutableFile(options.path)) {
      throw new Error(
        `--shim ${options.path} is not an executable file: build it with "deno run -A shim/build.ts" or leave --shim out`,
      );
    }
    return options.path;
  }
  const beside = join(dirname(Deno.execPath()), SHIM_NAME);
  if (isCompiled()) {
    if (isExecutableFile(beside)) return beside;
    return await extractEmbedded(options.dataDir);
  }
  return await buildShim();
}

/**
 * Copies the helper embedded by `deno compile --include
 * out/telejob-shim-<arch>` to `<dataDir>/telejob-shim`: written to a temporary name, made root-owned
 * 0755 and renamed into place, so jobs can run it but never change it.
 */
async function extractEmbedded(dataDir: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(shimBuildPath(Deno.build.arch));
  } catch {
    throw new Error(
      `This telejob-server was compiled without its startup helper: put ${SHIM_NAME} next to it, pass --shim PATH, or compile with "deno task compile"`,
    );
  }
  const machine = bytes.length > 20 ? bytes[18] | (bytes[19] << 8) : 0;
  if (machine !== ELF_MACHINE[Deno.build.arch]) {
    // A release built on one architecture embeds that architecture's helper.
    throw new Error(
      `The startup helper embedded in this telejob-server is not for ${Deno.build.arch}: build shim/telejob_shim.c on this machine (gcc -static) and put it next to telejob-server as ${SHIM_NAME}, or pass --shim PATH`,
    );
  }
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o711 });
  const target = join(dataDir, SHIM_NAME);
  const temp = `${target}.${Deno.pid}.tmp`;
  await Deno.writeFile(temp, bytes, { mode: 0o755 });
  await Deno.chown(temp, 0, 0);
  await Deno.chmod(temp, 0o755);
  await Deno.rename(temp, target);
  return target;
}
