/**
 * Server reflection with standard clients, end to end: the real server and
 * `buf curl` (npm `@bufbuild/buf`, a third-party Go client with the same
 * reflection resolver as grpcurl) over mutual TLS, without `--schema`. And a
 * grpcurl-style `describe`: every file fetched through reflection, linked
 * strictly by `@bufbuild/protobuf` the way Go's protodesc does.
 */
import {
  createFileRegistry,
  type DescMethod,
  fromBinary,
} from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import {
  rawClient,
  REPO,
  type ServerProcess,
  startServer,
  TESTDATA,
} from "./server_harness.ts";

/** The pinned buf CLI; Deno fetches it (and its platform binary) from npm. */
export const BUF = "npm:@bufbuild/buf@1.75.0";

interface BufResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `buf curl` with client1's certificate against `server`. */
async function bufCurl(
  server: ServerProcess,
  args: string[],
  path = "",
): Promise<BufResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      BUF,
      "curl",
      "--protocol",
      "grpc",
      "--cacert",
      join(TESTDATA, "server-ca.crt"),
      "--cert",
      join(TESTDATA, "client1.crt"),
      "--key",
      join(TESTDATA, "client1.key"),
      ...args,
      `https://localhost:${server.port}${path}`,
    ],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: output.code,
    stdout: decode(output.stdout),
    stderr: decode(output.stderr),
  };
}

async function bufOk(
  server: ServerProcess,
  args: string[],
  path = "",
): Promise<string> {
  const result = await bufCurl(server, args, path);
  assert.equal(
    result.code,
    0,
    `buf curl ${args.join(" ")} ${path} failed: ${result.stderr}`,
  );
  return result.stdout;
}

/** `buf curl` prints one JSON document per response message. */
function jsonDocuments(text: string): Record<string, unknown>[] {
  const docs: Record<string, unknown>[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") {
      if (depth++ === 0) start = i;
    } else if (c === "}" && --depth === 0) {
      docs.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return docs;
}

async function withServer(
  fn: (server: ServerProcess) => Promise<void>,
): Promise<void> {
  const server = await startServer();
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

Deno.test("buf curl lists, resolves and calls every service through reflection alone", async () => {
  await withServer(async (server) => {
    const services = (await bufOk(server, ["--list-services"])).split("\n");
    assert.ok(services.includes("telejob.v1.Telejob"), services.join(","));
    assert.ok(services.includes("grpc.health.v1.Health"), services.join(","));

    // Listing methods needs every service's file and its imports resolved.
    const methods = (await bufOk(server, ["--list-methods"])).split("\n");
    for (const method of ["Start", "Stop", "Status", "List", "Logs"]) {
      assert.ok(methods.includes(`telejob.v1.Telejob/${method}`), method);
    }
    assert.ok(methods.includes("grpc.health.v1.Health/Check"));

    const health = jsonDocuments(
      await bufOk(
        server,
        ["-d", '{"service":"telejob.v1.Telejob"}'],
        "/grpc.health.v1.Health/Check",
      ),
    );
    assert.deepEqual(health, [{ status: "SERVING" }]);

    const [started] = jsonDocuments(
      await bufOk(
        server,
        ["-d", '{"command":"echo","args":["hello from buf"]}'],
        "/telejob.v1.Telejob/Start",
      ),
    );
    const id = started.id as string;
    assert.match(id, /^\d+$/);

    // Follow ends once the job has ended and every byte was sent.
    const logs = jsonDocuments(
      await bufOk(
        server,
        ["-d", JSON.stringify({ id, follow: true })],
        "/telejob.v1.Telejob/Logs",
      ),
    );
    const output = Buffer.concat(
      logs.map((doc) => Buffer.from(doc.data as string, "base64")),
    ).toString();
    assert.equal(output, "hello from buf\n");

    // Timestamps and enums come out in their JSON forms, so the imported
    // google.protobuf files resolved too.
    const [status] = jsonDocuments(
      await bufOk(
        server,
        ["-d", JSON.stringify({ id })],
        "/telejob.v1.Telejob/Status",
      ),
    );
    const job = status.job as Record<string, unknown>;
    assert.equal(job.owner, "client1");
    assert.equal(job.state, "JOB_STATE_FINISHED");
    assert.match(job.startedAt as string, /^\d{4}-\d\d-\d\dT.*Z$/);

    const [list] = jsonDocuments(
      await bufOk(server, ["-d", "{}"], "/telejob.v1.Telejob/List"),
    );
    const jobs = list.jobs as Record<string, unknown>[];
    assert.deepEqual(jobs.map((j) => j.id), [id]);
  });
});

/** Reads one `bytes`/`string` field's values from a protobuf message. */
function lengthDelimited(message: Uint8Array, field: number): Uint8Array[] {
  const values: Uint8Array[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0;; shift += 7) {
      const byte = message[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < message.length) {
    const key = varint();
    const type = key & 7;
    if (type === 0) varint();
    else if (type === 2) {
      const length = varint();
      if (key >>> 3 === field) values.push(message.subarray(at, at + length));
      at += length;
    } else if (type === 1) at += 8;
    else if (type === 5) at += 4;
    else throw new Error(`Unexpected wire type ${type}`);
  }
  return values;
}

/** A reflection client, as grpcurl's: one stream, one request at a time. */
function reflectionClient(server: ServerProcess): {
  ask(field: number, value: string): Promise<Uint8Array[]>;
  close(): void;
} {
  const client = rawClient(server.port, {
    reflect: {
      path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      requestStream: true,
      responseStream: true,
    },
  });
  const stream = client.reflect();
  const waiting: ((message: Buffer) => void)[] = [];
  stream.on("data", (message: Buffer) => waiting.shift()?.(message));
  return {
    ask(field, value) {
      const text = Buffer.from(value);
      const request = Buffer.concat([
        Buffer.from([field << 3 | 2, text.length]),
        text,
      ]);
      const answer = new Promise<Buffer>((resolve) => waiting.push(resolve));
      stream.write(request);
      return answer.then((message) => {
        // ServerReflectionResponse: 4 = file_descriptor_response, 7 = error.
        const error = lengthDelimited(message, 7)[0];
        if (error) {
          throw new Error(
            `Reflection refused ${value}: ${new TextDecoder().decode(error)}`,
          );
        }
        const files = lengthDelimited(message, 4)[0];
        return files ? lengthDelimited(files, 1) : [];
      });
    },
    close() {
      stream.end();
      client.close();
    },
  };
}

Deno.test("reflection describes the services: complete, linkable files with their comments", async () => {
  await withServer(async (server) => {
    const reflection = reflectionClient(server);
    try {
      for (
        const [service, methods] of [
          ["telejob.v1.Telejob", ["Start", "Stop", "Status", "List", "Logs"]],
          ["grpc.health.v1.Health", ["Check", "Watch"]],
        ] as const
      ) {
        // As grpcurl describe: the file containing the symbol, then every
        // import it names, by file name.
        const files = new Map<string, FileDescriptorProto>();
        const add = (bytes: Uint8Array[]): void => {
          for (const b of bytes) {
            const file = fromBinary(FileDescriptorProtoSchema, b);
            files.set(file.name, file);
          }
        };
        // ServerReflectionRequest: 4 = file_containing_symbol.
        const found = await reflection.ask(4, service);
        add(found);
        const root = fromBinary(FileDescriptorProtoSchema, found[0]);
        const pending = [...root.dependency];
        while (pending.length > 0) {
          const name = pending.pop()!;
          if (files.has(name)) continue;
          // 3 = file_by_filename.
          add(await reflection.ask(3, name));
          pending.push(...(files.get(name)?.dependency ?? []));
        }
        // Linking throws on any type or import that does not resolve.
        let registry;
        try {
          registry = createFileRegistry(root, (name) => files.get(name));
        } catch (error) {
          throw new Error(`${service}'s files from reflection do not link`, {
            cause: error,
          });
        }
        const desc = registry.getService(service);
        assert.ok(desc, `${service} does not link`);
        for (const method of methods) {
          const m: DescMethod | undefined = desc.methods.find((x) =>
            x.name === method
          );
          assert.ok(m, `${service}/${method} missing`);
          assert.ok(m.input.typeName && m.output.typeName);
        }
        if (service === "telejob.v1.Telejob") {
          const job = registry.getMessage("telejob.v1.Job");
          const started = job?.fields.find((f) => f.name === "started_at");
          assert.equal(started?.message?.typeName, "google.protobuf.Timestamp");
          // describe shows the proto's comments: source info is served.
          const comments = root.sourceCodeInfo?.location
            .map((l) => l.leadingComments).join("\n") ?? "";
          assert.match(comments, /Start runs a command as a new job/);
        }
      }
    } finally {
      reflection.close();
    }
  });
});
