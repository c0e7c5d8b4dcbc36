/**
 * The list section: `list` latency with many stored jobs (10,000; 1,000
 * with `--quick`), the first page and a full walk, over gRPC and through
 * the CLI. Floors: the same pages read straight from the job store
 * (node:sqlite, no server), a Status RPC on the same connection, and
 * `telejob status` for the CLI.
 * @module
 */
import { JobStore } from "../../server/jobs/store.ts";
import { startTelejobServer, waitListening } from "./api.ts";
import type { ListClientConfig, ListClientResult } from "./list_client.ts";
import type { SectionContext } from "./context.ts";
import { summarize } from "./stats.ts";

/** Fills a fresh job store with `count` finished jobs of client1. */
function fillStore(path: string, count: number): void {
  const store = JobStore.open(path);
  try {
    const startedAt = new Date();
    for (let i = 1; i <= count; i++) {
      const id = store.insert({
        owner: "client1",
        command: "/usr/bin/sleep",
        args: [String(i % 100)],
        cwd: "/",
        startedAt,
        limits: {},
      });
      store.finish(id, {
        endedAt: startedAt,
        exitCode: 0,
        oomKilled: false,
        stopped: false,
        lostInRestart: false,
        outputLimitReached: false,
        usage: {
          cpuUsec: 1000,
          memoryPeakBytes: 1 << 20,
          ioReadBytes: 0,
          ioWriteBytes: 0,
        },
        outputBytes: 0,
      });
    }
  } finally {
    store.close();
  }
}

/** Median ms of `rounds` runs of `work` after one warm-up. */
function medianSync(rounds: number, work: () => unknown): number {
  work();
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    work();
    times.push(performance.now() - t0);
  }
  return summarize(times).p50;
}

/** Wall ms (median) of the CLI with `args`, after one warm-up. */
async function cliWall(
  ctx: SectionContext,
  port: number,
  args: string[],
  rounds: number,
): Promise<number> {
  const testdata = `${ctx.repoRoot}/tests/testdata`;
  const times: number[] = [];
  for (let i = 0; i <= rounds; i++) {
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ctx.repoRoot}/client/main.ts`, ...args],
      env: {
        TELEJOB_ADDRESS: `localhost:${port}`,
        TELEJOB_CLIENT_CERT: `${testdata}/client1.crt`,
        TELEJOB_CLIENT_KEY: `${testdata}/client1.key`,
        TELEJOB_SERVER_CA_CERT: `${testdata}/server-ca.crt`,
      },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `telejob ${args.join(" ")} failed: ${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
    if (i > 0) times.push(performance.now() - t0);
  }
  return summarize(times).p50;
}

/** Runs the list section. */
export async function runList(ctx: SectionContext): Promise<void> {
  const { rec } = ctx;
  const jobs = ctx.quick ? 1000 : 10_000;
  const rounds = ctx.quick ? 3 : 10;
  const testdata = `${ctx.repoRoot}/tests/testdata`;
  const dataDir = `${ctx.workDir}/server-data`;
  await Deno.mkdir(dataDir, { recursive: true });
  console.error(`list: storing ${jobs} finished jobs`);
  fillStore(`${dataDir}/jobs.db`, jobs);

  // Floor: the same rows straight from SQLite, no server in between.
  const store = JobStore.open(`${dataDir}/jobs.db`);
  let storePage: number;
  let storeBigPage: number;
  let storeWalk: number;
  try {
    storePage = medianSync(
      rounds * 10,
      () => store.list("client1", { limit: 101 }),
    );
    storeBigPage = medianSync(
      rounds,
      () => store.list("client1", { limit: 1001 }),
    );
    storeWalk = medianSync(rounds, () => {
      let after: string | undefined;
      for (;;) {
        const page = store.list("client1", { after, limit: 1001 });
        if (page.length <= 1000) break;
        after = page[999].id;
      }
    });
  } finally {
    store.close();
  }

  const server = startTelejobServer(ctx, testdata, 1 << 30);
  await waitListening(server, "telejob-server");
  const config: ListClientConfig = {
    host: "127.0.0.1",
    port: server.port,
    testdata,
    rounds,
    jobs,
  };
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ctx.repoRoot}/tests/bench/list_client.ts`,
      JSON.stringify(config),
    ],
    cwd: ctx.repoRoot,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(out.stdout).split("\n")
    .find((l) => l.startsWith("RESULT "));
  if (!out.success || !line) throw new Error("The list client failed");
  const r = JSON.parse(line.slice("RESULT ".length)) as ListClientResult;
  const of = `${jobs} stored jobs, ${r.walkPages} pages`;
  const add = (
    key: string,
    label: string,
    value: number,
    floor: number,
    detail: string,
  ) => rec.add({ key: `list.${key}`, label, value, unit: "ms", floor, detail });
  add(
    "first_page",
    "List first page (100 jobs, BASIC)",
    r.firstPageBasic,
    r.statusP50,
    `${of}, warm connection, median of ${
      rounds * 10
    }; floor: Status RPC p50 on the same connection (the store's 101-row page alone: ${
      storePage.toFixed(2)
    } ms)`,
  );
  add(
    "first_page_full",
    "List first page (1,000 jobs, FULL)",
    r.firstPageFull,
    storeBigPage,
    `${of}, median of ${rounds}; floor: the store's 1,001-row page (node:sqlite, no server)`,
  );
  add(
    "walk_basic",
    "List full walk (pages of 1,000, BASIC)",
    r.walkBasic,
    storeWalk,
    `${of}, median of ${rounds}; floor: the same pages from the store alone`,
  );
  add(
    "walk_full",
    "List full walk (pages of 1,000, FULL)",
    r.walkFull,
    storeWalk,
    `${of}, median of ${rounds}; floor: the same pages from the store alone`,
  );
  const cliRounds = ctx.quick ? 2 : 5;
  add(
    "cli",
    "telejob list, process start to exit",
    await cliWall(ctx, server.port, ["list"], cliRounds),
    await cliWall(ctx, server.port, ["status", "1"], cliRounds),
    `${of}, the table of all of them, median of ${cliRounds}; floor: telejob status`,
  );
  server.child.kill("SIGTERM");
  await server.child.status;
}
