/**
 * The wire codec of `telejob.v1.Telejob`: the generated service definition
 * with request decoders that never throw (a malformed message or a 64-bit
 * number too large for JavaScript becomes INVALID_ARGUMENT naming the
 * field, not grpc-js's generic INTERNAL), and the one-copy encoder of the
 * Logs stream's messages.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer as NodeBuffer } from "node:buffer";
type Buffer = NodeBuffer;
import {
  ListRequest,
  LogsRequest,
  type LogsResponse,
  StartRequest,
  StatusRequest,
  StopRequest,
  TelejobService,
} from "../proto/gen/telejob/v1/telejob.ts";
import { RequestError } from "./error_map.ts";
import { type NumberFields, unsafeNumberField } from "./wire_numbers.ts";

/** Largest request message the server accepts (grpc.max_receive_message_length). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

const DECODE_ERROR = Symbol("decodeError");
/** A decoded request, or why it could not be decoded (see {@linkcode decoded}). */
export type Decoded<T> = T | { [DECODE_ERROR]: string };

/**
 * Wraps a generated decoder so that a malformed request (or a 64-bit number
 * too large for JavaScript) becomes INVALID_ARGUMENT with the reason,
 * instead of grpc-js's generic INTERNAL.
 */
function tolerantDecoder<T>(
  decode: (buffer: Buffer) => T,
  numbers: NumberFields = {},
): (buffer: Buffer) => Decoded<T> {
  return (buffer) => {
    try {
      return decode(buffer);
    } catch (error) {
      const field = unsafeNumberField(buffer, numbers);
      return {
        [DECODE_ERROR]: field !== undefined
          ? `${field}: the number is out of range; give at most ${Number.MAX_SAFE_INTEGER}`
          : `Malformed request: ${
            error instanceof Error ? error.message : String(error)
          }`,
      };
    }
  };
}

// The 64-bit number fields of each request (names as in the proto).
const LIMITS_NUMBERS: NumberFields = {
  2: "memory_bytes",
  3: "pids",
  4: ["io", { 3: "rbps", 4: "wbps", 5: "riops", 6: "wiops" }],
};
const START_NUMBERS: NumberFields = { 5: ["limits", LIMITS_NUMBERS] };
const STOP_NUMBERS: NumberFields = { 2: ["grace", { 1: "seconds" }] };
const LOGS_NUMBERS: NumberFields = { 3: "offset", 4: "tail" };

/**
 * The request a tolerant decoder produced; throws the INVALID_ARGUMENT
 * {@linkcode RequestError} when it could not decode it.
 */
export function decoded<T>(request: Decoded<T>): T {
  if (request && typeof request === "object" && DECODE_ERROR in request) {
    throw new RequestError(
      grpc.status.INVALID_ARGUMENT,
      request[DECODE_ERROR],
    );
  }
  return request as T;
}

/** The generated service definition with decoders that never throw. */
export const telejobServiceDefinition = {
  start: {
    ...TelejobService.start,
    requestDeserialize: tolerantDecoder(StartRequest.decode, START_NUMBERS),
  },
  stop: {
    ...TelejobService.stop,
    requestDeserialize: tolerantDecoder(StopRequest.decode, STOP_NUMBERS),
  },
  status: {
    ...TelejobService.status,
    requestDeserialize: tolerantDecoder(StatusRequest.decode),
  },
  list: {
    ...TelejobService.list,
    requestDeserialize: tolerantDecoder(ListRequest.decode),
  },
  logs: {
    ...TelejobService.logs,
    requestDeserialize: tolerantDecoder(LogsRequest.decode, LOGS_NUMBERS),
    responseSerialize: (value: LogsResponse | EncodedLogs): Buffer =>
      value instanceof EncodedLogs ? value.bytes : encodeLogsResponse(value),
  },
} as unknown as typeof TelejobService;

/**
 * A LogsResponse encoded when it was written: the bytes are copied out at
 * once, so the engine may read the next chunk into the same buffer while
 * grpc-js still queues this message.
 */
export class EncodedLogs {
  constructor(readonly bytes: Buffer) {}
}

/**
 * Encodes `LogsResponse{data}` with one allocation and one copy: the field
 * tag, the varint length, the bytes. The generated encoder copies twice
 * (writer, then Buffer.from), which costs on the hottest path of the server.
 */
export function encodeLogsResponse(value: LogsResponse): Buffer {
  const data = value.data;
  if (data.length === 0) return NodeBuffer.alloc(0);
  let varint = 1;
  for (let n = data.length; n >= 0x80; n = Math.floor(n / 0x80)) varint++;
  const out = NodeBuffer.allocUnsafe(1 + varint + data.length);
  out[0] = 0x0a; // field 1, length-delimited
  let offset = 1;
  let n = data.length;
  while (n >= 0x80) {
    out[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[offset++] = n;
  out.set(data, offset);
  return out;
}
