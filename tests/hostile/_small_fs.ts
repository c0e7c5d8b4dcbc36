/**
 * A small file system for a data dir (a size-limited tmpfs, mounted in a
 * temp dir and unmounted after), and the helpers that fill it.
 * @module
 */
import { statfsSync } from "node:fs";

/** A mounted tmpfs; `close()` unmounts it and removes the mount point. */
export interface SmallFs {
  /** The mount point. */
  dir: string;
  /** Bytes free for ordinary writes. */
  free(): number;
  /** Writes a file of `bytes` (or as much as fits) to take up space. */
  ballast(name: string, bytes: number): string;
  /** Unmounts and removes the mount point. */
  close(): Promise<void>;
}

async function run(program: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(program, { args, stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
}

/** Mounts a tmpfs of `bytes` (root only). */
export async function smallFs(bytes: number): Promise<SmallFs> {
  const dir = await Deno.makeTempDir({ prefix: "telejob-small-fs-" });
  await run("mount", [
    "-t",
    "tmpfs",
    "-o",
    `size=${bytes},mode=700`,
    "tmpfs",
    dir,
  ]);
  return {
    dir,
    free() {
      const fs = statfsSync(dir);
      return fs.bavail * fs.bsize;
    },
    ballast(name, size) {
      const path = `${dir}/${name}`;
      const file = Deno.openSync(path, { write: true, createNew: true });
      try {
        const block = new Uint8Array(64 * 1024);
        for (let left = size; left > 0;) {
          const n = file.writeSync(
            block.subarray(0, Math.min(left, block.length)),
          );
          left -= n;
        }
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOSPC") throw error;
      } finally {
        file.close();
      }
      return path;
    },
    async close() {
      await run("umount", [dir]);
      await Deno.remove(dir);
    },
  };
}
