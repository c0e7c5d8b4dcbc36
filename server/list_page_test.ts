import assert from "node:assert/strict";
import { Job, JobView, ListRequest } from "../proto/gen/telejob/v1/telejob.ts";
import {
  BASIC_ARGS_CHARS,
  basicJob,
  buildPage,
  checkList,
  DEFAULT_PAGE_SIZE,
  MAX_LIST_RESPONSE_BYTES,
  MAX_PAGE_SIZE,
  pageToken,
} from "./list_page.ts";
import { JobError } from "./jobs/errors.ts";

function request(fields: Partial<ListRequest>): ListRequest {
  return ListRequest.fromPartial(fields);
}

function job(id: number, args: string[] = ["1"]): Job {
  return Job.fromPartial({ id: String(id), owner: "u", command: "c", args });
}

function invalidField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof JobError);
    assert.equal(error.code, "invalid_argument");
    return error.field;
  }
  assert.fail("no error");
}

Deno.test("page size: 0 is the default, above the maximum is coerced, negative is refused", () => {
  assert.equal(checkList(request({})).pageSize, DEFAULT_PAGE_SIZE);
  assert.equal(checkList(request({ pageSize: 7 })).pageSize, 7);
  assert.equal(checkList(request({ pageSize: 1e6 })).pageSize, MAX_PAGE_SIZE);
  assert.equal(
    invalidField(() => checkList(request({ pageSize: -1 }))),
    "page_size",
  );
});

Deno.test("page tokens: only the server's own are accepted", () => {
  assert.equal(checkList(request({ pageToken: pageToken("42") })).after, "42");
  for (
    const bad of ["x", "!!", btoa("after:0"), btoa("after:1e3"), btoa("42")]
  ) {
    assert.equal(
      invalidField(() => checkList(request({ pageToken: bad }))),
      "page_token",
      bad,
    );
  }
  assert.equal(
    invalidField(() => checkList(request({ view: 9 as JobView }))),
    "view",
  );
  assert.equal(checkList(request({})).full, false);
  assert.equal(checkList(request({ view: JobView.JOB_VIEW_FULL })).full, true);
});

Deno.test("the BASIC view abbreviates long argument lists and marks the cut", () => {
  const short = job(1, ["a", "b"]);
  assert.deepEqual(basicJob(short).args, ["a", "b"]);
  const long = job(2, ["x".repeat(1000), "y"]);
  const shown = basicJob(long).args;
  assert.equal(shown.length, 2);
  assert.equal([...shown[0]].length, BASIC_ARGS_CHARS);
  assert.ok(shown[0].endsWith("…"));
  assert.equal(shown[1], "…");
  const many = basicJob(job(3, Array(1000).fill("ab"))).args;
  assert.ok(many.join("").length <= BASIC_ARGS_CHARS + 2);
  assert.equal(many.at(-1), "…");
});

Deno.test("pages stay under the byte budget whatever the jobs hold", () => {
  const big = Array.from(
    { length: 30 },
    (_, i) => job(i + 1, Array(7).fill("z".repeat(130 * 1024))),
  );
  const ids: string[] = [];
  let after = 0;
  for (let n = 0; n < 100; n++) {
    const rest = big.filter((j) => Number(j.id) > after);
    if (rest.length === 0) break;
    const page = buildPage(rest.slice(0, 101), { pageSize: 100, full: true });
    const size = page.jobs.reduce(
      (s, j) => s + Job.encode(j).finish().length + 6,
      0,
    );
    assert.ok(size <= MAX_LIST_RESPONSE_BYTES, `page of ${size} bytes`);
    assert.ok(page.jobs.length >= 1);
    ids.push(...page.jobs.map((j) => j.id));
    if (page.nextPageToken === "") break;
    after = Number(checkList(request({ pageToken: page.nextPageToken })).after);
  }
  assert.deepEqual(ids, big.map((j) => j.id));
  // A single job larger than a page comes summarised instead.
  const huge = job(99, Array(40).fill("h".repeat(128 * 1024)));
  const page = buildPage([huge], { pageSize: 10, full: true });
  assert.equal(page.jobs.length, 1);
  assert.ok(page.jobs[0].args.length < 40);
  assert.equal(page.nextPageToken, "");
});
