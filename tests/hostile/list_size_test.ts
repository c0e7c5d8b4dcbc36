/**
 * Finding 5 of issue 10: 19 jobs with 7 arguments of 130 KB each made every
 * List response larger than the 16 MiB message limit, for every user, for
 * good. List is now paginated with a byte budget per response.
 */
import assert from "node:assert/strict";
import {
  JobView,
  ListRequest,
  StartRequest,
} from "../../proto/gen/telejob/v1/telejob.ts";
import { call, clientFor, startServer } from "../server_harness.ts";
import { telejob } from "./_run_cli.ts";

const JOBS = 19;
const ARG = "a".repeat(130_000);

interface Page {
  jobs: { id: string; args: string[] }[];
  nextPageToken: string;
}

Deno.test("huge stored jobs cannot break List: pages stay under any client's limit, the CLI pages through", async () => {
  const server = await startServer();
  // grpc-js's default receive limit, 4 MiB: what most clients accept.
  const c1 = clientFor(server, "client1");
  try {
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const request = StartRequest.fromPartial({
        command: "true",
        args: Array(7).fill(ARG),
      });
      ids.push((await call<{ id: string }>(c1, "start", request)).id);
    }

    // The full view, walked page by page with the largest page size.
    const walked: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page: Page = await call(
        c1,
        "list",
        ListRequest.fromPartial({
          pageSize: 1000,
          pageToken,
          view: JobView.JOB_VIEW_FULL,
        }),
      );
      pages++;
      for (const job of page.jobs) {
        assert.deepEqual(job.args, Array(7).fill(ARG), `job ${job.id}`);
        walked.push(job.id);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    assert.deepEqual(walked, ids);
    assert.ok(pages > 1, "more than one page");

    // The default (BASIC) view: one page, arguments abbreviated.
    const basic: Page = await call(c1, "list", {});
    assert.equal(basic.nextPageToken, "");
    assert.deepEqual(basic.jobs.map((j) => j.id), ids);
    assert.ok(basic.jobs.every((j) => j.args.join("").length < 300));

    // The CLI: table, --wide and JSON, for the owner and for an admin.
    for (const user of ["client1", "admin"]) {
      const table = await telejob(server, ["list"], user);
      assert.equal(table.code, 0, table.err);
      assert.equal(table.out.trimEnd().split("\n").length, JOBS + 1);
      assert.ok(table.out.length < 20_000, "the table abbreviates");
    }
    // --wide and --output wide are one: every argument, USER and UID.
    for (const flags of [["list", "--wide"], ["--output", "wide", "list"]]) {
      const wide = await telejob(server, flags);
      assert.equal(wide.code, 0, wide.err);
      assert.ok(wide.out.length > JOBS * 7 * ARG.length, flags.join(" "));
      assert.match(
        wide.out.split("\n")[0],
        /\bUSER\s+UID\s*$/,
        flags.join(" "),
      );
    }
    const json = await telejob(server, ["--output", "json", "list"]);
    assert.equal(json.code, 0, json.err);
    const listed = JSON.parse(json.out) as { id: string; args: string[] }[];
    assert.deepEqual(listed.map((j) => j.id), ids);
    assert.ok(listed.every((j) => j.args.every((a) => a === ARG)));
  } finally {
    c1.close();
    await server.stop();
  }
});

Deno.test("List pages: a token continues, a page_size above the maximum is coerced", async () => {
  const server = await startServer();
  const c1 = clientFor(server, "client1");
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const request = StartRequest.fromPartial({ command: "true" });
      ids.push((await call<{ id: string }>(c1, "start", request)).id);
    }
    const first: Page = await call(c1, "list", { pageSize: 2 });
    assert.deepEqual(first.jobs.map((j) => j.id), ids.slice(0, 2));
    const second: Page = await call(c1, "list", {
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    assert.deepEqual(second.jobs.map((j) => j.id), ids.slice(2, 4));
    const last: Page = await call(c1, "list", {
      pageSize: 100_000,
      pageToken: second.nextPageToken,
    });
    assert.deepEqual(last.jobs.map((j) => j.id), ids.slice(4));
    assert.equal(last.nextPageToken, "");
    // Another user's view of the same token: only their own jobs.
    const c2 = clientFor(server, "client2");
    try {
      const theirs: Page = await call(c2, "list", {
        pageToken: first.nextPageToken,
      });
      assert.deepEqual(theirs.jobs, []);
    } finally {
      c2.close();
    }
  } finally {
    c1.close();
    await server.stop();
  }
});
