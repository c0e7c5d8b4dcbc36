/**
 * The gRPC side of the list section, in a process of its own (see
 * api_client.ts for why): List latency over one warm connection with many
 * stored jobs, the first page and a full walk, in both views, next to a
 * Status call on the same connection. Prints `RESULT <json>`
 * ({@linkcode ListClientResult}) and exits without closing the connection.
 *
 *     deno run -A tests/bench/list_client.ts '<ListClientConfig as JSON>'
 * @module
 */
import {
  JobView,
  type ListResponse,
  type TelejobClient,
} from "../../proto/gen/telejob/v1/telejob.ts";
import {
  jobStatus,
  makeClient,
  readClientCerts,
  waitReady,
} from "./grpc_client.ts";
import { summarize } from "./stats.ts";

/** What the parent asks for. */
export interface ListClientConfig {
  host: string;
  port: number;
  testdata: string;
  /** Timed repetitions of each measurement (after one warm-up). */
  rounds: number;
  /** Jobs stored, to check each walk saw them all. */
  jobs: number;
}

/** Median milliseconds of each measurement. */
export interface ListClientResult {
  statusP50: number;
  firstPageBasic: number;
  firstPageFull: number;
  walkBasic: number;
  walkFull: number;
  /** Pages of the full walk and bytes of its largest response. */
  walkPages: number;
}

function list(
  client: TelejobClient,
  pageSize: number,
  pageToken: string,
  view: JobView,
): Promise<ListResponse> {
  return new Promise((resolve, reject) =>
    client.list(
      { pageSize, pageToken, view },
      (error, response) => error ? reject(error) : resolve(response),
    )
  );
}

/** Walks every page; returns the number of jobs and of pages. */
async function walk(
  client: TelejobClient,
  view: JobView,
): Promise<[number, number]> {
  let jobs = 0;
  let pages = 0;
  let token = "";
  do {
    const page = await list(client, 1000, token, view);
    jobs += page.jobs.length;
    pages++;
    token = page.nextPageToken;
  } while (token !== "");
  return [jobs, pages];
}

async function median(
  rounds: number,
  work: () => Promise<unknown>,
): Promise<number> {
  await work();
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await work();
    times.push(performance.now() - t0);
  }
  return summarize(times).p50;
}

async function main(): Promise<void> {
  const config = JSON.parse(Deno.args[0]) as ListClientConfig;
  const client = makeClient(
    `${config.host}:${config.port}`,
    await readClientCerts(config.testdata),
  );
  await waitReady(client, 30_000);
  const [seen, walkPages] = await walk(client, JobView.JOB_VIEW_FULL);
  if (seen !== config.jobs) {
    throw new Error(`The walk saw ${seen} jobs, not ${config.jobs}`);
  }
  const result: ListClientResult = {
    statusP50: await median(config.rounds * 10, () => jobStatus(client, "1")),
    firstPageBasic: await median(
      config.rounds * 10,
      () => list(client, 0, "", JobView.JOB_VIEW_BASIC),
    ),
    firstPageFull: await median(
      config.rounds,
      () => list(client, 1000, "", JobView.JOB_VIEW_FULL),
    ),
    walkBasic: await median(
      config.rounds,
      () => walk(client, JobView.JOB_VIEW_BASIC),
    ),
    walkFull: await median(
      config.rounds,
      () => walk(client, JobView.JOB_VIEW_FULL),
    ),
    walkPages,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
  Deno.exit(0);
}

if (import.meta.main) await main();
