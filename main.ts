/**
 * Development entry point: `deno task telejob …`, `deno task telejob-server …`
 * and `deno task serve` all come through here. The compiled binaries are
 * built from `client/main.ts` and `server/main.ts` directly, so each carries
 * only its own code.
 * @module
 */

const usage = `Usage: deno run -A main.ts <program> [args...]

Programs:
  telejob          the command-line client (see "telejob --help")
  telejob-server   the gRPC server (see "telejob-server --help")
  serve-dev        telejob-server with the development certificates and ./data`;

/** Runs the program named by the first argument and returns its exit code. */
export async function main(args: string[]): Promise<number> {
  const [program, ...rest] = args;
  switch (program) {
    case "telejob": {
      const { cliMain } = await import("./client/main.ts");
      return await cliMain(rest);
    }
    case "telejob-server": {
      const { serverMain } = await import("./server/main.ts");
      return await serverMain(rest);
    }
    case "serve-dev": {
      const { serveDev } = await import("./server/dev.ts");
      return await serveDev(rest);
    }
    case "-h":
    case "--help":
      console.log(usage);
      return 0;
    default:
      console.error(
        program === undefined
          ? `Missing program name.\n${usage}`
          : `Unknown program ${
            JSON.stringify(program)
          }: use telejob, telejob-server or serve-dev.`,
      );
      return 2;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
