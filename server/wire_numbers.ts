/**
 * Names the request field whose 64-bit number is too large for the server.
 * The generated decoders turn 64-bit fields into JavaScript numbers and
 * throw "Value is larger than Number.MAX_SAFE_INTEGER" without saying
 * which field; this walks the message again to find it.
 * @module
 */
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/**
 * A message's 64-bit number fields by field number, with the nested
 * messages that hold more of them.
 */
export interface NumberFields {
  [field: number]: string | [string, NumberFields];
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The dotted name of the first field in `message` whose varint exceeds
 * 2^53 − 1 (a negative int64 reads as one too), or undefined when none
 * does or the message cannot be read.
 */
export function unsafeNumberField(
  message: Uint8Array,
  fields: NumberFields,
): string | undefined {
  try {
    return find(new BinaryReader(message), fields, "");
  } catch {
    return undefined;
  }
}

function find(
  reader: BinaryReader,
  fields: NumberFields,
  prefix: string,
): string | undefined {
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    const spec = fields[number];
    if (typeof spec === "string" && wireType === WireType.Varint) {
      if (BigInt(reader.uint64()) > MAX_SAFE) return prefix + spec;
    } else if (Array.isArray(spec) && wireType === WireType.LengthDelimited) {
      const [name, nested] = spec;
      const found = find(
        new BinaryReader(reader.bytes()),
        nested,
        `${prefix}${name}.`,
      );
      if (found !== undefined) return found;
    } else {
      reader.skip(wireType, number);
    }
  }
  return undefined;
}
