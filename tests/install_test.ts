/**
 * install.sh against a local release server (Deno.serve on 127.0.0.1)
 * serving release assets packed by tools/package.sh around stand-in
 * binaries: a good install with curl and with wget, running it again, the
 * systemd layout, a corrupted archive, an unknown version, an unknown
 * architecture and a dry run. Everything is installed below a temporary
 * `--root`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO } from "./server_harness.ts";

const TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];
const GOOD = "0.1.0";
const CORRUPT = "0.2.0";

interface Result {
  code: number;
  out: string;
  err: string;
}

async function sh(
  args: string[],
  env: Record<string, string> = {},
): Promise<Result> {
  const output = await new Deno.Command("sh", {
    args,
    cwd: REPO,
    env: { PATH: "/usr/local/bin:/usr/bin:/bin", ...env },
    clearEnv: true,
    stdin: "null",
  }).output();
  const decode = (b: Uint8Array): string => new TextDecoder().decode(b);
  return {
    code: output.code,
    out: decode(output.stdout),
    err: decode(output.stderr),
  };
}

/** Packs the archives of `version` into `dir/v<version>/` with SHA256SUMS. */
async function release(dir: string, version: string): Promise<string> {
  // The stand-in binaries live next to the served directory, not in it.
  const bin = join(dir, "..", `bin-${version}`);
  await Deno.mkdir(bin, { recursive: true });
  for (const target of TARGETS) {
    for (const program of ["telejob", "telejob-server"]) {
      await Deno.writeTextFile(
        join(bin, `${program}-${target}`),
        `#!/bin/sh\necho "${program} ${version} ${target}"\n`,
      );
    }
  }
  const out = join(dir, `v${version}`);
  for (const target of TARGETS) {
    const packed = await sh(["tools/package.sh", version, target, bin, out]);
    assert.equal(packed.code, 0, packed.err);
  }
  const sums = await sh(["tools/package.sh", "--sums", version, out]);
  assert.equal(sums.code, 0, sums.err);
  return out;
}

/** Serves `dir` over HTTP on 127.0.0.1; records the paths asked for. */
function serve(
  dir: string,
): { url: string; paths: string[]; server: Deno.HttpServer } {
  const paths: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      paths.push(path);
      if (path.includes("..")) return new Response("no", { status: 400 });
      try {
        return new Response(await Deno.readFile(join(dir, path)));
      } catch {
        return new Response("Not Found", { status: 404 });
      }
    },
  );
  return { url: `http://127.0.0.1:${server.addr.port}`, paths, server };
}

/** Whether `program` is on PATH. */
async function installed(program: string): Promise<boolean> {
  const found = await sh(["-c", `command -v ${program}`]);
  return found.code === 0;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

const mode = async (path: string): Promise<string> =>
  ((await Deno.stat(path)).mode! & 0o7777).toString(8).padStart(4, "0");

async function run(path: string): Promise<string> {
  const output = await new Deno.Command(path, { stdout: "piped" }).output();
  return new TextDecoder().decode(output.stdout).trim();
}

Deno.test("install.sh", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "telejob-install-test-" });
  const assets = join(dir, "assets");
  const tmp = join(dir, "tmp");
  await Deno.mkdir(tmp);
  await release(assets, GOOD);
  await Deno.mkdir(join(assets, "latest"));
  await Deno.writeTextFile(join(assets, "latest", "VERSION"), `${GOOD}\n`);
  // A release whose archive was damaged after its checksums were written.
  const corrupt = await release(assets, CORRUPT);
  const damaged = join(corrupt, `telejob-${CORRUPT}-${TARGETS[0]}.tar.gz`);
  const bytes = await Deno.readFile(damaged);
  bytes[bytes.length >> 1] ^= 0xff;
  await Deno.writeFile(damaged, bytes);
  const arch = Deno.build.arch; // x86_64 or aarch64, as uname -m says
  // Both where both are installed (CI installs both); else the one there is.
  const downloaders: string[] = [];
  for (const name of ["curl", "wget"]) {
    if (await installed(name)) downloaders.push(name);
  }
  assert.ok(downloaders.length > 0, "install.sh needs curl or wget");

  const { url, paths, server } = serve(assets);
  const install = (args: string[], env: Record<string, string> = {}) =>
    sh(["install.sh", ...args], {
      TELEJOB_RELEASE_URL: url,
      TMPDIR: tmp,
      ...env,
    });
  const fresh = async (name: string): Promise<string> => {
    const root = join(dir, name);
    await Deno.mkdir(root);
    return root;
  };

  try {
    await t.step(
      `good install of the latest release, with ${downloaders[0]}`,
      async () => {
        const root = await fresh("latest");
        const result = await install(["--root", root], {
          TELEJOB_DOWNLOADER: downloaders[0],
        });
        assert.equal(result.code, 0, result.err);
        assert.match(
          result.err,
          new RegExp(
            `installed ${root}/usr/local/bin/telejob and ${root}/usr/local/bin/telejob-server \\(${GOOD}\\)`,
          ),
        );
        for (const program of ["telejob", "telejob-server"]) {
          const path = join(root, "usr/local/bin", program);
          assert.equal(await mode(path), "0755");
          assert.equal(
            await run(path),
            `${program} ${GOOD} ${arch}-unknown-linux-gnu`,
          );
        }
        assert.ok(paths.includes("/latest/VERSION"));
        assert.ok(!(await exists(join(root, "etc"))), "no --systemd, no /etc");

        // Again: the same result, no leftovers.
        const again = await install(["--root", root]);
        assert.equal(again.code, 0, again.err);
        assert.deepEqual(
          [...Deno.readDirSync(join(root, "usr/local/bin"))].map((e) => e.name)
            .sort(),
          ["telejob", "telejob-server"],
        );
      },
    );

    const other = downloaders.at(-1)!;
    await t.step(
      `--version, --prefix and --systemd, with ${other}`,
      async () => {
        const root = await fresh("systemd");
        const args = [
          "--root",
          root,
          "--version",
          `v${GOOD}`,
          "--prefix",
          "/opt/telejob",
          "--systemd",
        ];
        const result = await install(args, { TELEJOB_DOWNLOADER: other });
        assert.equal(result.code, 0, result.err);
        assert.equal(
          await run(join(root, "opt/telejob/bin/telejob")),
          `telejob ${GOOD} ${arch}-unknown-linux-gnu`,
        );
        const unit = join(root, "etc/systemd/system/telejob-server.service");
        assert.equal(await mode(unit), "0644");
        const text = await Deno.readTextFile(unit);
        assert.match(
          text,
          /^ExecStart=\/opt\/telejob\/bin\/telejob-server --config \/etc\/telejob\/server\.toml$/m,
        );
        assert.equal(await mode(join(root, "etc/telejob")), "0750");
        assert.equal(await mode(join(root, "var/lib/telejob")), "0711");
        assert.match(result.err, /telejob-server certs --dir/);

        // Again, with a configuration in place: kept, modes restored.
        const config = join(root, "etc/telejob/server.toml");
        await Deno.writeTextFile(config, "# mine\n");
        await Deno.chmod(join(root, "etc/telejob"), 0o755);
        const again = await install(args, { TELEJOB_DOWNLOADER: other });
        assert.equal(again.code, 0, again.err);
        assert.equal(await Deno.readTextFile(config), "# mine\n");
        assert.equal(await mode(join(root, "etc/telejob")), "0750");
        assert.match(
          again.err,
          /systemctl restart telejob-server \(this stops running jobs\)/,
        );
      },
    );

    await t.step(
      "a corrupted archive installs nothing and says why",
      async () => {
        const root = await fresh("corrupt");
        const good = await install([
          "--root",
          root,
          "--arch",
          "x86_64",
          "--version",
          GOOD,
        ]);
        assert.equal(good.code, 0, good.err);
        const result = await install([
          "--root",
          root,
          "--arch",
          "x86_64",
          "--version",
          CORRUPT,
        ]);
        assert.equal(result.code, 1);
        assert.match(
          result.err,
          new RegExp(
            `^install\\.sh: Checksum mismatch for telejob-${CORRUPT}-x86_64-unknown-linux-gnu\\.tar\\.gz: SHA256SUMS says [0-9a-f]{64}, the download is [0-9a-f]{64}; it is corrupt or was tampered with, so nothing was installed`,
            "m",
          ),
        );
        // The earlier install is untouched.
        assert.equal(
          await run(join(root, "usr/local/bin/telejob")),
          `telejob ${GOOD} x86_64-unknown-linux-gnu`,
        );
        assert.deepEqual(
          [...Deno.readDirSync(join(root, "usr/local/bin"))].map((e) => e.name)
            .sort(),
          ["telejob", "telejob-server"],
        );
      },
    );

    await t.step(
      "an unknown version installs nothing and says why",
      async () => {
        const root = await fresh("unknown-version");
        const result = await install(["--root", root, "--version", "9.9.9"]);
        assert.equal(result.code, 1);
        assert.match(
          result.err,
          new RegExp(
            `Cannot download ${url}/v9\\.9\\.9/telejob-9\\.9\\.9-${arch}-unknown-linux-gnu\\.tar\\.gz: check that release 9\\.9\\.9 exists`,
          ),
        );
        assert.deepEqual([...Deno.readDirSync(root)], []);
      },
    );

    await t.step(
      "an unknown architecture installs nothing and says why",
      async () => {
        const root = await fresh("unknown-arch");
        const before = paths.length;
        const result = await install(["--root", root, "--arch", "mips64"]);
        assert.equal(result.code, 1);
        assert.equal(
          result.err,
          'install.sh: Unsupported architecture "mips64": Telejob is released for x86_64 and aarch64 Linux; nothing was installed\n',
        );
        assert.equal(paths.length, before, "nothing downloaded");
        assert.deepEqual([...Deno.readDirSync(root)], []);
      },
    );

    await t.step(
      "--dry-run says what it would do and changes nothing",
      async () => {
        const root = await fresh("dry-run");
        const before = paths.length;
        const result = await install([
          "--root",
          root,
          "--systemd",
          "--dry-run",
          "--version",
          "latest",
        ]);
        assert.equal(result.code, 0, result.err);
        const name = `telejob-${GOOD}-${arch}-unknown-linux-gnu.tar.gz`;
        assert.equal(
          result.out,
          [
            `Would download ${url}/v${GOOD}/${name}`,
            `Would check it against ${url}/v${GOOD}/SHA256SUMS`,
            `Would install ${root}/usr/local/bin/telejob and ${root}/usr/local/bin/telejob-server`,
            `Would install ${root}/etc/systemd/system/telejob-server.service`,
            `Would create ${root}/etc/telejob (0750) and ${root}/var/lib/telejob (0711)`,
            "",
          ].join("\n"),
        );
        assert.deepEqual(paths.slice(before), ["/latest/VERSION"]);
        assert.deepEqual([...Deno.readDirSync(root)], []);
      },
    );

    await t.step("bad usage exits 2 with a pointer to --help", async () => {
      const result = await install(["--prefix", "relative"]);
      assert.equal(result.code, 2);
      assert.match(
        result.err,
        /--prefix must be an absolute path, got "relative"; run "sh install\.sh --help"/,
      );
      const unknown = await install(["--frobnicate"]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.err, /Unknown option "--frobnicate"/);
    });

    // Every run cleaned up its download directory.
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
