import assert from "node:assert/strict";
import { Job, JobState } from "../proto/gen/telejob/v1/telejob.ts";
import {
  commandLine,
  formatTable,
  jobExit,
  jobJson,
  jobState,
  jobTable,
  safeName,
  shellQuote,
} from "./table.ts";

const started = new Date("2026-11-28T10:29:24Z");
const ended = new Date("2026-11-28T10:30:10Z");
const utc = { layout: "15:04:05", offsetMinutes: 0 };

function job(fields: Partial<Job>): Job {
  return Job.fromPartial({
    id: "1",
    owner: "client1",
    command: "sleep",
    args: ["100"],
    state: JobState.JOB_STATE_FINISHED,
    startedAt: started,
    endedAt: ended,
    ...fields,
  });
}

Deno.test("the seed README's tables, byte for byte", () => {
  const running = job({
    state: JobState.JOB_STATE_RUNNING,
    endedAt: undefined,
  });
  assert.equal(
    jobTable([running], utc),
    "ID  COMMAND    STATE    STARTED   STOPPED  EXIT\n" +
      "1   sleep 100  running  10:29:24\n",
  );
  const stopped = job({
    stopped: true,
    stoppedBy: "client1",
    signal: "SIGTERM",
  });
  assert.equal(
    jobTable([stopped], utc),
    "ID  COMMAND    STATE    STARTED   STOPPED   EXIT\n" +
      "1   sleep 100  stopped  10:29:24  10:30:10  stopped\n",
  );
});

Deno.test("formatTable pads every column but the last by two", () => {
  assert.equal(
    formatTable([["a", "bb", "c"], ["ccc", "", "dddd"], ["e"]]),
    "a    bb  c\nccc      dddd\ne\n",
  );
  // Widths count characters, not UTF-16 units.
  assert.equal(formatTable([["é", "x"], ["ab", "y"]]), "é   x\nab  y\n");
});

Deno.test("STATE and EXIT for every way a job ends", () => {
  const cases: [Partial<Job>, string, string][] = [
    [{ state: JobState.JOB_STATE_RUNNING }, "running", ""],
    [{ exitCode: 0 }, "exited", "0"],
    [{ exitCode: 3 }, "exited", "3"],
    [{ signal: "SIGSEGV" }, "exited", "SIGSEGV"],
    [{ oomKilled: true, signal: "SIGKILL" }, "exited", "oom"],
    [{ stopped: true, signal: "SIGTERM" }, "stopped", "stopped"],
    [{ stopped: true, exitCode: 0 }, "stopped", "stopped"],
    [{ outputLimitReached: true, signal: "SIGKILL" }, "exited", "output-limit"],
    [{ lostInRestart: true, signal: "SIGKILL" }, "lost", "SIGKILL"],
    [{ lostInRestart: true }, "lost", ""],
  ];
  for (const [fields, state, exit] of cases) {
    const j = job(fields);
    assert.equal(jobState(j), state, JSON.stringify(fields));
    assert.equal(jobExit(j), exit, JSON.stringify(fields));
  }
});

Deno.test("COMMAND is shell-quoted so it reads back as the same words", () => {
  assert.equal(shellQuote("plain-word_1.txt"), "plain-word_1.txt");
  assert.equal(shellQuote(""), "''");
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote("$HOME"), "'$HOME'");
  assert.equal(shellQuote("a\nb\tc\x01"), "$'a\\nb\\tc\\x01'");
  assert.equal(shellQuote("it's\n"), "$'it\\'s\\n'");
  assert.equal(
    commandLine("sh", ["-c", "echo hi; exit 3"]),
    "sh -c 'echo hi; exit 3'",
  );
  // A newline in an argument does not break the table's lines.
  const table = jobTable([job({ command: "printf", args: ["a\nb"] })], utc);
  assert.equal(table.split("\n").length, 3);
});

Deno.test("jobJson: the API's fields plus the table's state and exit", () => {
  const j = jobJson(
    job({
      exitCode: 2,
      usage: {
        cpuUsec: 5,
        memoryPeakBytes: 6,
        ioReadBytes: 7,
        ioWriteBytes: 8,
      },
    }),
  );
  assert.equal(j.state, "exited");
  assert.equal(j.exit, "2");
  assert.equal(j.exitCode, 2);
  assert.equal(j.signal, null);
  assert.equal(j.startedAt, "2026-11-28T10:29:24.000Z");
  assert.equal(j.endedAt, "2026-11-28T10:30:10.000Z");
  assert.deepEqual(j.usage, {
    cpuUsec: 5,
    memoryPeakBytes: 6,
    ioReadBytes: 7,
    ioWriteBytes: 8,
  });
  const running = jobJson(
    job({ state: JobState.JOB_STATE_RUNNING, endedAt: undefined }),
  );
  assert.equal(running.endedAt, null);
  assert.equal(running.exitCode, null);
  assert.deepEqual(JSON.parse(JSON.stringify(running)), running);
});

Deno.test("an OWNER column only when asked (an admin's view)", () => {
  const jobs = [
    job({ owner: "client1", exitCode: 0 }),
    job({ id: "2", owner: "client2", exitCode: 1 }),
  ];
  assert.equal(
    jobTable(jobs, { ...utc, owner: true }),
    "ID  OWNER    COMMAND    STATE   STARTED   STOPPED   EXIT\n" +
      "1   client1  sleep 100  exited  10:29:24  10:30:10  0\n" +
      "2   client2  sleep 100  exited  10:29:24  10:30:10  1\n",
  );
  assert.ok(jobTable(jobs, utc).startsWith("ID  COMMAND    STATE"));
});

Deno.test("tables escape every hidden, control and bidi character", () => {
  const cases: [string, string][] = [
    ["ad\u200bmin", "$'ad\\u200bmin'"],
    ["a\u202egnp.exe", "$'a\\u202egnp.exe'"],
    ["c1\u0085x", "$'c1\\u0085x'"],
    ["line\u2028para\u2029", "$'line\\u2028para\\u2029'"],
    ["tag\u{e0041}", "$'tag\\U000e0041'"],
    ["bom\ufeff", "$'bom\\ufeff'"],
    ["nul\0it's\\", "$'nul\\x00it\\'s\\\\'"],
  ];
  for (const [raw, shown] of cases) {
    assert.equal(shellQuote(raw), shown, JSON.stringify(raw));
    assert.equal(safeName(raw), shown, JSON.stringify(raw));
  }
  // Printable names stay as they are, accents and all.
  assert.equal(safeName("José"), "José");
  const table = jobTable([
    job({ owner: "ad\u200bmin", command: "ls\u202e", args: ["\u0090"] }),
  ], { ...utc, owner: true });
  assert.doesNotMatch(
    table.replaceAll("\n", ""),
    /\p{Cc}|\p{Cf}|\p{Zl}|\p{Zp}/u,
  );
  assert.match(table, /^1\s+\$'ad\\u200bmin'\s+\$'ls\\u202e' \$'\\u0090'/m);
  // JSON keeps the exact strings.
  const json = jobJson(job({ owner: "ad\u200bmin", args: ["\u202e"] }));
  assert.equal(json.owner, "ad\u200bmin");
  assert.deepEqual(json.args, ["\u202e"]);
});

Deno.test("USER and UID columns only with --output wide; not-started jobs", () => {
  const jobs = [
    job({ exitCode: 0, account: "telejob-2000000000", uid: 2000000000 }),
    job({ id: "2", account: "nobody", uid: 65534, startError: "cannot run x" }),
  ];
  assert.equal(
    jobTable(jobs, { ...utc, wide: true }),
    "ID  COMMAND    STATE   STARTED   STOPPED   EXIT         USER                UID\n" +
      "1   sleep 100  exited  10:29:24  10:30:10  0            telejob-2000000000  2000000000\n" +
      "2   sleep 100  exited  10:29:24  10:30:10  not-started  nobody              65534\n",
  );
  assert.ok(
    jobTable(jobs, utc).startsWith(
      "ID  COMMAND    STATE   STARTED   STOPPED   EXIT\n",
    ),
  );
  assert.equal(jobJson(jobs[1]).startError, "cannot run x");
  assert.equal(jobJson(jobs[0]).startError, null);
  assert.equal(jobJson(jobs[1]).uid, 65534);
});
