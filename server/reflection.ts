/**
 * gRPC server reflection (v1 and v1alpha) that standard clients can use:
 * `buf curl`, grpcurl and Postman resolve every type through it.
 *
 * It serves the descriptors protoc made (`proto/gen/descriptors.ts`, written
 * by `deno task proto`), not ones re-synthesised by proto-loader: those are
 * merged per package, declare no imports and lose map entries, so Go-based
 * clients could list the services but failed to resolve any of them
 * ("failed to find service named ... in schema").
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { Buffer } from "node:buffer";
import { FILE_DESCRIPTOR_SET_BASE64 } from "../proto/gen/descriptors.ts";

/**
 * Splits a serialized `google.protobuf.FileDescriptorSet` into its files'
 * serialized `FileDescriptorProto`s (field 1, length-delimited, repeated).
 *
 * @throws {Error} when the bytes are not such a set.
 */
export function splitFileDescriptorSet(set: Uint8Array): Uint8Array[] {
  const files: Uint8Array[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (at >= set.length) break;
      const byte = set[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Error("Malformed FileDescriptorSet: bad varint");
  };
  while (at < set.length) {
    if (varint() !== (1 << 3 | 2)) {
      throw new Error("Malformed FileDescriptorSet: expected field 1");
    }
    const length = varint();
    if (at + length > set.length) {
      throw new Error("Malformed FileDescriptorSet: truncated file");
    }
    files.push(set.subarray(at, at + length));
    at += length;
  }
  return files;
}

/** The serialized descriptors of every file reflection serves. */
export function servedFileDescriptors(): Uint8Array[] {
  return splitFileDescriptorSet(
    Buffer.from(FILE_DESCRIPTOR_SET_BASE64.replace(/\s+/g, ""), "base64"),
  );
}

/**
 * Adds the reflection services to `server`, describing our API, the health
 * service and every file they import.
 */
export function addReflection(server: grpc.Server): void {
  // ReflectionService reads only `fileDescriptorProtos` from each entry of
  // the package definition, so one entry carrying protoc's files is enough.
  const definition = {
    "telejob.descriptors": {
      format: "Protocol Buffer 3 FileDescriptorProto",
      type: {},
      fileDescriptorProtos: servedFileDescriptors().map((file) =>
        Buffer.from(file)
      ),
    },
  } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
}
