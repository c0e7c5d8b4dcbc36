/**
 * How much work each measurement does, in the full run and in `--quick`.
 * @module
 */

/** Counts and sizes of one benchmark run. */
export interface Plan {
  /** Serial starts for the latency percentiles. */
  latencyCount: number;
  /** Starts for the throughput measurement at {@linkcode Plan.inFlight}. */
  rateCount: number;
  /** Concurrent starts for the throughput measurement (the 16). */
  inFlight: number;
  /** Concurrent `sleep` jobs to ramp to (the 15,000). */
  concurrentTarget: number;
  /** Jobs started between two memory and fd samples of the ramp. */
  rampStep: number;
  /** Time budget of the ramp in milliseconds. */
  rampBudgetMs: number;
  /** Output of the job read by one follower. */
  oneFollowerBytes: number;
  /** Number of followers for the fan-out measurement (the 100). */
  manyFollowers: number;
  /** Output of the job read by many followers. */
  manyFollowerBytes: number;
  /** Output of the big job during which server memory is watched (10 GB). */
  bigJobBytes: number;
  /** Serial Start RPCs over one warm connection. */
  rpcLatencyCount: number;
  /** How long each unary-RPC throughput run lasts, milliseconds. */
  rpcRateMs: number;
  /** `telejob status` invocations. */
  cliCount: number;
  /** Output streamed through gRPC to one follower. */
  streamBytes: number;
  /** Output streamed through gRPC to each of the many followers. */
  streamManyBytes: number;
  /** Followers of the gRPC fan-out measurement (the 16). */
  streamFollowers: number;
  /** New TLS connections to open, one after the other. */
  tlsCount: number;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** The full run: the counts and targets. */
export const FULL_PLAN: Plan = {
  latencyCount: 2000,
  rateCount: 5000,
  inFlight: 16,
  concurrentTarget: 15_000,
  rampStep: 1000,
  rampBudgetMs: 10 * 60_000,
  // Below the dirty-page limits (10% and 20% of 24 GiB here), so the
  // writer is not throttled to the disk's speed.
  oneFollowerBytes: 2 * GiB,
  manyFollowers: 100,
  manyFollowerBytes: 256 * MiB,
  bigJobBytes: 10 * GiB,
  rpcLatencyCount: 2000,
  rpcRateMs: 5000,
  cliCount: 20,
  streamBytes: 1 * GiB,
  streamManyBytes: 256 * MiB,
  streamFollowers: 16,
  tlsCount: 500,
};

/** The smoke run behind `--quick`: every code path, small counts. */
export const QUICK_PLAN: Plan = {
  latencyCount: 100,
  rateCount: 300,
  inFlight: 16,
  concurrentTarget: 300,
  rampStep: 100,
  rampBudgetMs: 60_000,
  oneFollowerBytes: 128 * MiB,
  manyFollowers: 20,
  manyFollowerBytes: 16 * MiB,
  bigJobBytes: 512 * MiB,
  rpcLatencyCount: 100,
  rpcRateMs: 1000,
  cliCount: 3,
  streamBytes: 64 * MiB,
  streamManyBytes: 16 * MiB,
  streamFollowers: 16,
  tlsCount: 30,
};

/** The plan for `quick` or the full run. */
export function planFor(quick: boolean): Plan {
  return quick ? QUICK_PLAN : FULL_PLAN;
}
