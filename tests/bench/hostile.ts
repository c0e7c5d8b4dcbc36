/**
 * The `hostile` section: what clients that press cost a real
 * telejob-server (issue 10).
 *
 * - Server memory with stalled readers: Logs streams of a finished 16 MiB
 *   output whose readers never open their HTTP/2 window. Floor: the same
 *   number of follow streams of a job without output (what a stream costs
 *   at all). Target: at most 512 KiB per stalled reader.
 * - The time to serve a new client (connect, mutual TLS, one List call)
 *   while idle sockets that never start TLS are open. Floor: the same with
 *   none open.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import type net from "node:net";
import { TelejobClient } from "../../proto/gen/telejob/v1/telejob.ts";
import {
  call,
  type ServerProcess,
  startServer,
  testdata,
} from "../server_harness.ts";
import { idleSockets, streamsMemory } from "../hostile/raw_client.ts";
import type { SectionContext } from "./context.ts";
import { delay } from "./proc.ts";
import { percentile } from "./stats.ts";

/** Milliseconds from a new client's connect to its first List answer. */
async function newClientMs(
  server: ServerProcess,
  rounds: number,
): Promise<number[]> {
  const times: number[] = [];
  const credentials = grpc.credentials.createSsl(
    Buffer.from(testdata("server-ca.crt")),
    Buffer.from(testdata("client1.key")),
    Buffer.from(testdata("client1.crt")),
  );
  for (let i = 0; i < rounds; i++) {
    const client = new TelejobClient(`localhost:${server.port}`, credentials, {
      "grpc.use_local_subchannel_pool": 1,
    });
    const t0 = performance.now();
    await call(client, "list", {});
    times.push(performance.now() - t0);
    client.close();
  }
  return times;
}

/** Runs the hostile section. */
export async function runHostile(ctx: SectionContext): Promise<void> {
  const { rec, quick } = ctx;
  const readers = quick ? 20 : 100;
  const idle = quick ? 200 : 1_000;
  const rounds = quick ? 10 : 50;

  // Stalled readers, each measurement on a fresh server.
  const floor = await streamsMemory(
    ["--cgroup-parent", ctx.cgroupParent],
    readers,
    {
      command: "sleep",
      args: ["3600"],
      follow: true,
    },
  );
  const stalled = await streamsMemory(
    ["--cgroup-parent", ctx.cgroupParent],
    readers,
    {
      command: "head",
      args: ["-c", "16777216", "/dev/zero"],
      follow: false,
    },
  );
  rec.add({
    key: "hostile.stalled_reader_memory",
    label:
      `server memory per stalled reader (${readers} readers, 16 MiB output)`,
    value: Math.round(stalled.perStream / 1024),
    unit: "KiB",
    floor: Math.round(floor.perStream / 1024),
    target: { op: "<=", value: 512 },
    detail:
      "RSS growth of a fresh server / readers; floor: follow streams of a job without output",
  });
  rec.add({
    key: "hostile.stalled_readers_rss",
    label: `server RSS with ${readers} stalled readers open`,
    value: Math.round(stalled.rss / 2 ** 20),
    unit: "MiB",
    floor: Math.round(floor.rss / 2 ** 20),
  });

  const server = await startServer({
    args: [
      "--cgroup-parent",
      ctx.cgroupParent,
      // The idle sockets must stay for the whole measurement, and all come
      // from one address.
      "--handshake-timeout",
      "600s",
      "--max-connections",
      String(idle + 100),
      "--max-connections-per-address",
      String(idle + 100),
    ],
  });
  ctx.cleanup.defer("stop telejob-server", async () => {
    await server.stop("SIGKILL");
  });

  // A new client while idle sockets are open.
  await newClientMs(server, 3); // warm-up
  const alone = await newClientMs(server, rounds);
  const sockets: net.Socket[] = await idleSockets(server.port, idle);
  await delay(1_000);
  const crowded = await newClientMs(server, rounds);
  for (const socket of sockets) socket.destroy();
  rec.add({
    key: "hostile.new_client_with_idle_sockets.p50",
    label: `new client to first answer, ${idle} idle sockets open (p50)`,
    value: percentile(crowded, 50),
    unit: "ms",
    floor: percentile(alone, 50),
    detail:
      `${rounds} fresh connections each (mutual TLS + List); floor: no idle sockets`,
  });
  rec.add({
    key: "hostile.new_client_with_idle_sockets.p99",
    label: `new client to first answer, ${idle} idle sockets open (p99)`,
    value: percentile(crowded, 99),
    unit: "ms",
    floor: percentile(alone, 99),
  });
  await server.stop();
}
