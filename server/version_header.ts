/**
 * Sends telejob-server's version with every answer, as the
 * `telejob-version` response header (or trailer, for an error that carries
 * no headers), so the CLI can warn about an incompatible server without an
 * extra call.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { VERSION, VERSION_HEADER } from "../version/mod.ts";

/** A grpc-js server interceptor that adds the version header to each call. */
export const versionInterceptor: grpc.ServerInterceptor = (_method, call) => {
  let headersSent = false;
  return new grpc.ServerInterceptingCall(call, {
    sendMetadata(metadata, next): void {
      headersSent = true;
      metadata.set(VERSION_HEADER, VERSION);
      next(metadata);
    },
    sendStatus(status, next): void {
      // An error before any message goes out as trailers only: put the
      // version there instead.
      if (!headersSent) {
        const metadata = status.metadata?.clone() ?? new grpc.Metadata();
        metadata.set(VERSION_HEADER, VERSION);
        next({ ...status, metadata });
        return;
      }
      next(status);
    },
  });
};
