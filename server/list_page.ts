/**
 * List pagination (AIP-158) and views (AIP-157): page size and token checks,
 * the BASIC view's abbreviated arguments, and the byte budget that keeps
 * every List response under the message size any gRPC client accepts,
 * whatever jobs were stored.
 * @module
 */
import {
  Job,
  JobView,
  type ListRequest,
} from "../proto/gen/telejob/v1/telejob.ts";
import { JobError } from "./jobs/errors.ts";

/** Jobs per page when the request says 0. */
export const DEFAULT_PAGE_SIZE = 100;
/** Most jobs per page; larger requests are coerced to it (AIP-158). */
export const MAX_PAGE_SIZE = 1000;
/**
 * Most bytes of one List response: under the 4 MiB that gRPC clients accept
 * by default (grpc-js, grpc-go, grpcurl), with room for framing.
 */
export const MAX_LIST_RESPONSE_BYTES = 3 * 1024 * 1024;
/** Characters of arguments the BASIC view shows (like `docker ps`'s cut). */
export const BASIC_ARGS_CHARS = 256;
/** Longest other string the BASIC view shows in full. */
export const BASIC_STRING_CHARS = 4096;
/** Marks where the BASIC view cut something. */
export const ELLIPSIS = "…";

/** A List request after its checks. */
export interface ListQuery {
  /** Jobs wanted on this page (1 to MAX_PAGE_SIZE). */
  pageSize: number;
  /** Continue after this job id (from the page token). */
  after?: string;
  /** Full jobs rather than the BASIC view. */
  full: boolean;
}

function invalid(field: string, message: string): JobError {
  return new JobError("invalid_argument", `${field}: ${message}`, field);
}

const TOKEN_PREFIX = "after:";

/** The page token that continues after job `id`. */
export function pageToken(id: string): string {
  return btoa(TOKEN_PREFIX + id).replaceAll("=", "");
}

function tokenId(token: string): string {
  let text: string;
  try {
    text = atob(token);
  } catch {
    text = "";
  }
  const id = text.startsWith(TOKEN_PREFIX)
    ? text.slice(TOKEN_PREFIX.length)
    : "";
  if (!/^[1-9][0-9]{0,15}$/.test(id)) {
    throw invalid(
      "page_token",
      "is not a token this server gave; pass next_page_token from the previous response, or nothing for the first page",
    );
  }
  return id;
}

/** Checks page size, token and view (AIP-158: too large is coerced). */
export function checkList(request: ListRequest): ListQuery {
  const size = request.pageSize;
  if (!Number.isInteger(size) || size < 0) {
    throw invalid(
      "page_size",
      `${size} is out of range; give 0 for the default of ${DEFAULT_PAGE_SIZE} or up to ${MAX_PAGE_SIZE} jobs`,
    );
  }
  const view = request.view;
  if (
    view !== JobView.JOB_VIEW_UNSPECIFIED && view !== JobView.JOB_VIEW_BASIC &&
    view !== JobView.JOB_VIEW_FULL
  ) {
    throw invalid(
      "view",
      `${view} is not a view; give JOB_VIEW_BASIC (1) or JOB_VIEW_FULL (2)`,
    );
  }
  return {
    pageSize: size === 0 ? DEFAULT_PAGE_SIZE : Math.min(size, MAX_PAGE_SIZE),
    after: request.pageToken === "" ? undefined : tokenId(request.pageToken),
    full: view === JobView.JOB_VIEW_FULL,
  };
}

function cut(value: string, chars: number): string {
  if (value.length <= chars) return value;
  const points = [...value];
  return points.length <= chars
    ? value
    : points.slice(0, chars - 1).join("") + ELLIPSIS;
}

/**
 * The BASIC view of a job: arguments abbreviated to BASIC_ARGS_CHARS
 * characters in all (a cut argument ends with "…", and a last "…" argument
 * stands for those left out); other strings longer than BASIC_STRING_CHARS
 * are cut the same way.
 */
export function basicJob(job: Job): Job {
  if (
    job.args.reduce((n, arg) => n + arg.length, 0) <= BASIC_ARGS_CHARS / 2 &&
    job.owner.length + job.command.length + job.cwd.length +
          job.signal.length + job.stoppedBy.length <= BASIC_STRING_CHARS
  ) return job; // The common case: nothing to cut.
  const args: string[] = [];
  let left = BASIC_ARGS_CHARS;
  for (const arg of job.args) {
    if (left <= 1) {
      args.push(ELLIPSIS);
      break;
    }
    const shown = cut(arg, left);
    args.push(shown);
    left -= [...shown].length;
  }
  return {
    ...job,
    owner: cut(job.owner, BASIC_STRING_CHARS),
    command: cut(job.command, BASIC_STRING_CHARS),
    args,
    cwd: cut(job.cwd, BASIC_STRING_CHARS),
    signal: cut(job.signal, BASIC_STRING_CHARS),
    stoppedBy: cut(job.stoppedBy, BASIC_STRING_CHARS),
  };
}

// Below this bound a job is counted at its bound, not encoded to measure.
const SMALL_JOB_BYTES = 64 * 1024;

/** A job's bytes inside a ListResponse: field tag, length, message. */
function sizeInList(job: Job): number {
  return Job.encode(job).finish().length + 6;
}

/**
 * An upper bound of {@linkcode sizeInList} without encoding: at most 3 UTF-8
 * bytes per UTF-16 unit, 6 bytes of tag and length per string, and room for
 * every number, time and limit. Most pages never need the exact size.
 */
function sizeBound(job: Job): number {
  let bytes = 512 + 70 * (job.limits?.io.length ?? 0);
  for (
    const text of [job.owner, job.command, job.cwd, job.signal, job.stoppedBy]
  ) bytes += 3 * text.length + 6;
  for (const arg of job.args) bytes += 3 * arg.length + 6;
  return bytes;
}

/**
 * Builds one page from `jobs` (up to pageSize + 1 of them, in order): at
 * most `pageSize` jobs and MAX_LIST_RESPONSE_BYTES, and a token when more
 * follow. A job that does not fit beside others starts the next page; one
 * too large for a page on its own is sent in the BASIC view.
 */
export function buildPage(
  jobs: readonly Job[],
  query: Pick<ListQuery, "pageSize" | "full">,
  budget = MAX_LIST_RESPONSE_BYTES,
): { jobs: Job[]; nextPageToken: string } {
  const page: Job[] = [];
  let bytes = 64; // the next_page_token field
  for (const job of jobs.slice(0, query.pageSize)) {
    let shown = query.full ? job : basicJob(job);
    // Small jobs are counted at their bound (over by a few hundred bytes);
    // large ones, where that would waste page room, exactly.
    const bound = sizeBound(shown);
    let size = bound <= SMALL_JOB_BYTES ? bound : sizeInList(shown);
    if (size > budget - bytes && page.length === 0 && query.full) {
      shown = basicJob(job);
      size = sizeInList(shown);
    }
    if (size > budget - bytes && page.length > 0) break;
    page.push(shown);
    bytes += size;
  }
  const more = page.length < jobs.length;
  return {
    jobs: page,
    nextPageToken: more ? pageToken(page[page.length - 1].id) : "",
  };
}
