/**
 * Isolation between owners, with the real server (real cgroups, mTLS) and
 * the real CLI: every job runs as an unprivileged identity of its owner's,
 * entered by the static startup shim before any user code runs, and can
 * reach neither another owner's jobs nor the server's files nor its limits.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { TelejobClient } from "../proto/gen/telejob/v1/telejob.ts";
import {
  call,
  clientFor,
  failure,
  readLogs,
  REPO,
  type ServerProcess,
  startServer,
  TESTDATA,
  waitFinished,
} from "./server_harness.ts";

const CLI = join(REPO, "client", "main.ts");
// The server inherits this fd without close-on-exec from the shell that
// execs it, as a careless launcher would leak one.
const LEAKED_FD = 7;

/**
 * What client2's job tries against client1's job and the server. Each probe
 * prints NAME:allowed or NAME:denied. Positional parameters: client1's
 * output file, the store, the server key, the data dir, client1's home,
 * client1's job's pid.
 */
const PROBE_SCRIPT =
  `probe() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name:allowed"; else echo "$name:denied"; fi; }
probe output cat "$1"
probe store cat "$2"
probe key cat "$3"
probe data-dir ls "$4"
probe other-home ls "$5"
kill -9 "$6" 2>&1 | sed 's/^.*: //' | sed 's/^/kill: /'
for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do
  [ -e "$f" ] && probe "procs $f" sh -c 'echo $$ > "$1"' sh "$f"
done
while IFS=: read -r n c p; do
  for d in "/sys/fs/cgroup/$c$p" "/sys/fs/cgroup/unified$p" "/sys/fs/cgroup$p"; do
    if [ -e "$d/cgroup.procs" ]; then
      probe "own procs $d" sh -c 'echo $$ > "$1"' sh "$d/cgroup.procs"
      probe "own mkdir $d" sh -c 'mkdir "$1" && rmdir "$1"' sh "$d/escape"
      break
    fi
  done
done < /proc/self/cgroup
for d in /sys/fs/cgroup /sys/fs/cgroup/*; do
  [ -d "$d" ] && probe "mkdir $d" sh -c 'mkdir "$1" && rmdir "$1"' sh "$d/telejob-escape-$$"
done`;

interface Job {
  id: string;
  account: string;
  uid: number;
  startError: string;
  exitCode?: number;
}

async function start(
  client: TelejobClient,
  command: string,
  args: string[],
  extra: Record<string, unknown> = {},
): Promise<string> {
  const { id } = await call<{ id: string }>(client, "start", {
    command,
    args,
    env: [],
    cwd: "",
    user: "",
    ...extra,
  });
  return id;
}

/** Runs a job to its end; returns its record and output. */
async function run(
  client: TelejobClient,
  script: string,
  extra: Record<string, unknown> = {},
): Promise<{ job: Job; output: string }> {
  const id = await start(client, "/bin/sh", ["-c", script], extra);
  const job = await waitFinished(client, id) as unknown as Job;
  const logs = await readLogs(client, { id });
  if ("code" in logs) throw new Error(logs.details);
  return { job, output: new TextDecoder().decode(logs.data) };
}

async function cli(
  server: ServerProcess,
  user: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const env: Record<string, string> = {
    PATH: "/usr/bin:/bin",
    NO_COLOR: "1",
    TELEJOB_ADDRESS: server.address,
    TELEJOB_CLIENT_CERT: join(TESTDATA, `${user}.crt`),
    TELEJOB_CLIENT_KEY: join(TESTDATA, `${user}.key`),
    TELEJOB_SERVER_CA_CERT: join(TESTDATA, "server-ca.crt"),
  };
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) env.DENO_DIR = denoDir;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env,
    clearEnv: true,
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    out: text.decode(output.stdout),
    err: text.decode(output.stderr),
  };
}

/** Pids of live processes whose argv is exactly `argv`. */
function processesRunning(argv: string[]): number[] {
  const want = argv.join("\0") + "\0";
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2)[0];
      if (cmdline === want && state !== "Z") found.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

async function waitUntil(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `cc` a shared object whose constructor records who and where it runs. */
async function buildProbe(dir: string, record: string): Promise<string> {
  const source = join(dir, "probe.c");
  const object = join(dir, "probe.so");
  await Deno.writeTextFile(
    source,
    `#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void probe(void) {
  char comm[64] = "?", line[512];
  FILE *in = fopen("/proc/self/comm", "r");
  if (in) { if (fgets(comm, sizeof comm, in)) {} fclose(in); }
  for (char *p = comm; *p; p++) if (*p == '\\n') *p = 0;
  FILE *out = fopen(${JSON.stringify(record)}, "a");
  if (!out) return;
  in = fopen("/proc/self/cgroup", "r");
  while (in && fgets(line, sizeof line, in)) {
    fprintf(out, "%d|%u|%s|%s", (int)getpid(), (unsigned)getuid(), comm, line);
  }
  if (in) fclose(in);
  fclose(out);
}
`,
  );
  const cc = await new Deno.Command("gcc", {
    args: ["-shared", "-fPIC", "-o", object, source],
  }).output();
  assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
  return object;
}

Deno.test("jobs are isolated from other owners, the server and their limits", async (t) => {
  // A private copy of the server key: the committed one is world-readable.
  const keyDir = await Deno.makeTempDir({ prefix: "telejob-isolation-key-" });
  const key = join(keyDir, "server.key");
  await Deno.copyFile(join(TESTDATA, "server.key"), key);
  await Deno.chmod(key, 0o600);
  const server = await startServer({
    args: [
      "--server-key",
      key,
      "--run-as",
      "client1=nobody,daemon",
      "--run-as",
      "admin=root",
    ],
    command: [
      "/bin/sh",
      "-c",
      `exec ${LEAKED_FD}</dev/null; exec "$@"`,
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      join(REPO, "server", "main.ts"),
    ],
  });
  const client1 = clientFor(server, "client1");
  const client2 = clientFor(server, "client2");
  const admin = clientFor(server, "admin");
  const shared = await Deno.makeTempDir({ prefix: "telejob-isolation-" });
  await Deno.chmod(shared, 0o1777);
  try {
    const ids: Record<string, Job> = {};

    await t.step("each owner runs as a uid of its own, never 0", async () => {
      for (
        const [name, client] of [["client1", client1], [
          "client2",
          client2,
        ]] as const
      ) {
        const { job, output } = await run(
          client,
          'id -u; id -g; id -G; echo "$HOME|$USER|$LOGNAME|$(pwd)"; stat -c %a:%u "$HOME"',
        );
        const [uid, gid, groups, env, home] = output.trim().split("\n");
        assert.notEqual(uid, "0");
        assert.equal(gid, uid);
        assert.equal(groups, uid, "no supplementary groups");
        assert.equal(job.uid, Number(uid));
        assert.equal(job.account, `telejob-${uid}`);
        const dir = join(server.dataDir, "home", job.account);
        assert.equal(env, `${dir}|${job.account}|${job.account}|${dir}`);
        assert.equal(home, `700:${uid}`);
        ids[name] = job;
      }
      assert.notEqual(ids.client1.uid, ids.client2.uid);
      // Not a login account: no /etc/passwd or /etc/group entry has the id.
      for (const file of ["/etc/passwd", "/etc/group"]) {
        for (const line of Deno.readTextFileSync(file).split("\n")) {
          const fields = line.split(":");
          for (const job of Object.values(ids)) {
            assert.notEqual(fields[2], String(job.uid), line);
          }
        }
      }
    });

    await t.step("the data dir holds nothing a job may read", () => {
      const mode = (path: string) =>
        (Deno.statSync(join(server.dataDir, path)).mode! & 0o7777).toString(8);
      assert.equal(mode("."), "711");
      assert.equal(mode("jobs.db"), "600");
      assert.equal(mode("output"), "700");
      assert.equal(mode("home"), "711");
    });

    await t.step(
      "client2's job cannot read, kill or escape into client1's",
      async () => {
        const id = await start(client1, "/bin/sh", [
          "-c",
          "echo client1-secret; exec sleep 6001",
        ]);
        await waitUntil(
          "client1's sleep",
          () => processesRunning(["sleep", "6001"]).length === 1,
        );
        const [victim] = processesRunning(["sleep", "6001"]);
        const { job: victimJob } = await call<{ job: Job }>(client1, "status", {
          id,
        });
        const output = join(server.dataDir, "output", `${id}.out`);
        const probeId = await start(client2, "/bin/sh", [
          "-c",
          PROBE_SCRIPT,
          "sh",
          output,
          join(server.dataDir, "jobs.db"),
          key,
          server.dataDir,
          join(server.dataDir, "home", victimJob.account),
          String(victim),
        ]);
        await waitFinished(client2, probeId);
        const logs = await readLogs(client2, { id: probeId });
        if ("code" in logs) {
          throw new Error(logs.details);
        }
        const probes = new TextDecoder().decode(logs.data);
        const lines = probes.trim().split("\n");
        assert.ok(lines.includes("kill: Operation not permitted"), probes);
        const results = lines.filter((line) => !line.startsWith("kill: "));
        for (
          const name of ["output", "store", "key", "data-dir", "other-home"]
        ) {
          assert.ok(results.includes(`${name}:denied`), probes);
        }
        assert.ok(results.some((l) => l.startsWith("own procs ")), probes);
        assert.ok(results.some((l) => l.startsWith("procs ")), probes);
        assert.ok(results.some((l) => l.startsWith("mkdir ")), probes);
        assert.deepEqual(
          results.filter((line) => !line.endsWith(":denied")),
          [],
          probes,
        );
        assert.deepEqual(processesRunning(["sleep", "6001"]), [victim]);
        const { job } = await call<{ job: Job }>(client1, "stop", {
          id,
          grace: { seconds: 0, nanos: 0 },
        });
        assert.equal(job.uid, victimJob.uid);
      },
    );

    await t.step("a job cannot outlive stop", async () => {
      const id = await start(client2, "/bin/sh", [
        "-c",
        // Tries to leave its cgroups, then double-forks a new session.
        'for f in /sys/fs/cgroup/*/cgroup.procs; do echo $$ > "$f"; done 2>/dev/null; setsid sh -c "exec sleep 6002" & exec sleep 6003',
      ]);
      await waitUntil(
        "both sleeps",
        () =>
          processesRunning(["sleep", "6002"]).length === 1 &&
          processesRunning(["sleep", "6003"]).length === 1,
      );
      await call(client2, "stop", { id, grace: { seconds: 0, nanos: 0 } });
      assert.deepEqual(processesRunning(["sleep", "6002"]), []);
      assert.deepEqual(processesRunning(["sleep", "6003"]), []);
    });

    await t.step(
      "LD_PRELOAD runs only in the job, as its uid, in its cgroup",
      async () => {
        const record = join(shared, "probe.log");
        const object = await buildProbe(shared, record);
        await Deno.chmod(object, 0o755);
        const id = await start(client1, "/bin/sh", [
          "-c",
          "/bin/true; echo ran",
        ], {
          env: [`LD_PRELOAD=${object}`, "BASH_ENV=/nonexistent", "ENV=/x"],
        });
        const job = await waitFinished(client1, id) as unknown as Job;
        assert.equal(job.exitCode, 0);
        const lines = (await Deno.readTextFile(record)).trim().split("\n");
        const comms = new Set(lines.map((line) => line.split("|")[2]));
        assert.deepEqual([...comms].sort(), ["sh", "true"]);
        const v1 = lines.some((line) => /\|\d+:[^:]*\bpids\b/.test(line));
        let checked = 0;
        for (const line of lines) {
          const [, uid, , cgroup] = line.split("|");
          assert.equal(Number(uid), job.uid, line);
          const [, controllers, path] = cgroup.split(":");
          const limited = v1
            ? /\b(pids|memory|cpu|blkio)\b/.test(controllers)
            : controllers === "";
          if (!limited) continue;
          checked++;
          assert.match(path, /\/telejob-[0-9a-f]+-\d+$/, line);
        }
        assert.ok(checked >= 2, lines.join("\n"));
      },
    );

    await t.step(
      "an fd the server inherited does not reach the job",
      async () => {
        const serverPid = server.child.pid;
        // The shell wrapper exec'd into deno, which kept the fd open.
        const leaked = Deno.readLinkSync(`/proc/${serverPid}/fd/${LEAKED_FD}`);
        assert.equal(leaked, "/dev/null");
        const { output } = await run(client1, "ls /proc/self/fd");
        assert.equal(output, "0\n1\n2\n3\n");
      },
    );

    await t.step(
      "--user: allowed by policy, refused with the reason, root only where named",
      async () => {
        const nobody = await cli(server, "client1", [
          "run",
          "--user",
          "nobody",
          "id",
          "-u",
        ]);
        assert.equal(nobody.code, 0, nobody.err);
        assert.equal(nobody.out, "65534\n");
        const daemon = await cli(server, "client1", [
          "run",
          "--user",
          "daemon",
          "sh",
          "-c",
          "id -un; pwd",
        ]);
        assert.equal(daemon.out, "daemon\n/usr/sbin\n");

        // Another owner's account, and root for an owner the policy gives
        // other accounts: both refused, naming the entry that is missing.
        for (
          const [owner, login] of [["client2", "nobody"], ["client1", "root"]]
        ) {
          const refused = await cli(server, owner, [
            "start",
            "--user",
            login,
            "true",
          ]);
          assert.notEqual(refused.code, 0);
          assert.match(
            refused.err,
            new RegExp(`may not run jobs as "${login}"`),
          );
          assert.match(
            refused.err,
            new RegExp(`no --run-as entry for ${owner}`),
          );
          assert.ok(
            refused.err.includes(`--run-as '${owner}=${login}'`),
            refused.err,
          );
        }
        const adminDefault = await cli(server, "admin", ["run", "id", "-u"]);
        assert.notEqual(
          adminDefault.out,
          "0\n",
          "admins get no account implicitly",
        );
        const root = await cli(server, "admin", [
          "run",
          "--user",
          "root",
          "id",
          "-u",
        ]);
        assert.equal(root.out, "0\n", root.err);

        const id =
          (await cli(server, "client1", ["start", "--user", "nobody", "true"]))
            .out.trim();
        const wide = await cli(server, "client1", ["status", "-o", "wide", id]);
        assert.match(wide.out.split("\n")[0], /EXIT\s+USER\s+UID$/);
        assert.match(wide.out.split("\n")[1], /\snobody\s+65534$/);
        const json = JSON.parse(
          (await cli(server, "client1", ["status", "-o", "json", id])).out,
        );
        assert.equal(json.account, "nobody");
        assert.equal(json.uid, 65534);
        const list = JSON.parse(
          (await cli(server, "client1", ["list", "-o", "json"])).out,
        );
        assert.ok(list.some((job: Job) => /^telejob-\d+$/.test(job.account)));
      },
    );

    await t.step(
      "a working directory the identity cannot enter is refused up front",
      async () => {
        const before =
          (await call<{ jobs: unknown[] }>(client1, "list", {})).jobs.length;
        const refused = await failure(client1, "start", {
          command: "true",
          args: [],
          env: [],
          cwd: keyDir, // 0700 root
          user: "",
        });
        assert.equal(refused.code, "FAILED_PRECONDITION");
        assert.match(
          refused.details,
          new RegExp(
            `Working directory "${keyDir}" cannot be entered by telejob-\\d+ \\(uid \\d+\\)`,
          ),
        );
        const after =
          (await call<{ jobs: unknown[] }>(client1, "list", {})).jobs.length;
        assert.equal(after, before, "nothing was created");
      },
    );

    await t.step(
      "a start that failed in the shim is reported as such",
      async () => {
        const bogus = join(shared, "not-a-program");
        await Deno.writeTextFile(bogus, "\x7fELF but not really\n");
        await Deno.chmod(bogus, 0o755);
        const id = await start(client1, bogus, []);
        const job = await waitFinished(client1, id) as unknown as Job;
        assert.equal(job.exitCode, undefined);
        assert.match(
          job.startError,
          /^cannot run .*not-a-program as uid \d+: Exec format error$/,
        );
        const table = await cli(server, "client1", ["status", id]);
        assert.match(table.out.split("\n")[1], /not-started$/);
      },
    );
  } finally {
    client1.close();
    client2.close();
    admin.close();
    await server.stop();
    await Deno.remove(shared, { recursive: true });
    await Deno.remove(keyDir, { recursive: true });
  }
});

Deno.test("a server key that others can read is warned about loudly at start-up", async () => {
  // The committed test key is world-readable (git keeps no modes but x).
  const key = await Deno.makeTempFile({ prefix: "telejob-key-" });
  await Deno.copyFile(join(TESTDATA, "server.key"), key);
  await Deno.chmod(key, 0o644);
  const server = await startServer({ args: ["--server-key", key] });
  try {
    assert.ok(
      server.lines.some((line) =>
        line.startsWith(
          `WARNING: The server key ${key} can be read by group or others (mode 0644)`,
        )
      ),
      server.lines.join("\n"),
    );
    const event = server.logs().find((entry) =>
      entry.event === "insecure_key_file"
    );
    assert.match(String(event?.warning), /chmod 600/);
  } finally {
    await server.stop();
    await Deno.remove(key);
  }
});
