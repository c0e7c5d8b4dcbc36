/**
 * Writes a job's output to a Logs stream with bounded memory: messages of
 * at most {@linkcode MAX_LOG_CHUNK_BYTES}, at most
 * {@linkcode MAX_LOG_BYTES_IN_FLIGHT} bytes handed to grpc-js and not yet
 * sent, whatever the reader does.
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import type {
  LogsRequest,
  LogsResponse,
} from "../proto/gen/telejob/v1/telejob.ts";
import { EncodedLogs, encodeLogsResponse } from "./codec.ts";

/**
 * Largest `data` of one Logs message. Small enough that the bytes a stream
 * may have written and not yet sent ({@linkcode MAX_LOG_BYTES_IN_FLIGHT})
 * hold a few messages, large enough that the per-message cost stays small.
 */
export const MAX_LOG_CHUNK_BYTES = 32 * 1024;
/**
 * Most bytes one Logs stream has handed to grpc-js and HTTP/2 and not yet
 * seen sent. grpc-js's own limit is 16 messages (its writable stream's
 * highWaterMark counts messages, not bytes), and a reader that never opens
 * its HTTP/2 window makes them stay: 16 × 256 KiB per stalled reader before.
 * With the engine's read buffer (256 KiB) this bounds a stalled reader's
 * memory to under 512 KiB (README "Resource budgets").
 */
export const MAX_LOG_BYTES_IN_FLIGHT = 2 * MAX_LOG_CHUNK_BYTES;

/**
 * Writes `chunks` to the call in messages of at most
 * {@linkcode MAX_LOG_CHUNK_BYTES}, with at most
 * {@linkcode MAX_LOG_BYTES_IN_FLIGHT} bytes written and not yet sent: a
 * slow or stalled client holds back reading instead of growing server
 * memory. (grpc-js's 'drain' comes only after 16 messages, whatever their
 * size.) Stops when `signal` aborts; leaving the loop early closes the
 * engine's iterator.
 */
export async function pump(
  call: grpc.ServerWritableStream<LogsRequest, LogsResponse>,
  chunks: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): Promise<void> {
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const sent = (bytes: number) => (): void => {
    inFlight -= bytes;
    wake?.();
  };
  const room = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        if (
          inFlight > MAX_LOG_BYTES_IN_FLIGHT - MAX_LOG_CHUNK_BYTES &&
          !signal.aborted && !call.destroyed
        ) return;
        wake = undefined;
        call.off("close", done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      wake = done;
      call.on("close", done);
      signal.addEventListener("abort", done);
    });
  for await (const chunk of chunks) {
    for (let offset = 0; offset < chunk.length; offset += MAX_LOG_CHUNK_BYTES) {
      if (inFlight > MAX_LOG_BYTES_IN_FLIGHT - MAX_LOG_CHUNK_BYTES) {
        await room();
      }
      if (signal.aborted || call.destroyed) return;
      const data = chunk.subarray(offset, offset + MAX_LOG_CHUNK_BYTES);
      inFlight += data.length;
      const message = new EncodedLogs(encodeLogsResponse({ data }));
      call.write(message as unknown as LogsResponse, sent(data.length));
    }
    if (signal.aborted) return;
  }
}
