/**
 * Work-around for a use-after-free in Deno's `node:http2` server (Deno
 * 2.9.4 – 2.9.6 at least, upstream issue denoland/deno#36788): when a client
 * sends GOAWAY, the http2 core emits the session's `'goaway'` event and then
 * calls `session.close()` (or `destroy()`) while nghttp2 is still inside its
 * frame callback. Deno frees the native session there and nghttp2 touches it
 * afterwards: SIGSEGV, or an nghttp2 assertion, about every 400 connections
 * of a CLI that connects, calls and closes (on the first one under
 * `MALLOC_PERTURB_=165`). See "The GOAWAY crash guard" in `docs/server.md`
 * and `tests/server_goaway_test.ts` for how it is reproduced.
 *
 * The fix defers that teardown by one turn of the event loop: while a session
 * handles a received GOAWAY, its `close`, `destroy` and `goaway` calls run in
 * `setImmediate`, after nghttp2 has returned. Deferring only one of them is
 * not enough (measured). On Node, or on a Deno without the bug, the deferral
 * costs one tick per closing session and changes nothing else.
 *
 * REMOVE this module once the pinned Deno contains the fix for
 * denoland/deno#36788 (see the list in `compat/mod.ts`): delete the
 * `protectSession` call in `server/app.ts`'s
 * http2 session hook and run `tests/server_goaway_test.ts`, which must still
 * pass without it.
 * @module
 */
import type { Http2Session } from "node:http2";

/** Environment variable that turns the protection off, for proving that the goaway test fails without it. Never set it in production. */
export const DISABLE_ENV = "TELEJOB_UNSAFE_DISABLE_GOAWAY_FIX";

const PROTECTED = Symbol("telejob.goawayProtected");

type Teardown = "close" | "destroy" | "goaway";
const TEARDOWNS: readonly Teardown[] = ["close", "destroy", "goaway"];

/**
 * Whether the protection is active in this process: on unless
 * {@linkcode DISABLE_ENV} is `1`.
 */
export function goawayProtectionEnabled(): boolean {
  try {
    return Deno.env.get(DISABLE_ENV) !== "1";
  } catch {
    // Without env permission nobody can have disabled it.
    return true;
  }
}

/**
 * Makes `session` defer its teardown calls made while it handles a received
 * GOAWAY frame (see the module doc). Call it from the http2 server's
 * `'session'` event, before any frame is processed. Idempotent.
 */
export function protectSession(session: Http2Session): void {
  const record = session as unknown as Record<PropertyKey, unknown>;
  if (record[PROTECTED]) return;
  record[PROTECTED] = true;

  let handlingGoaway = false;
  for (const name of TEARDOWNS) {
    const original = record[name] as (...args: unknown[]) => unknown;
    record[name] = function (this: Http2Session, ...args: unknown[]) {
      if (!handlingGoaway) return original.apply(this, args);
      setImmediate(() => {
        original.apply(this, args);
      });
      return undefined;
    };
  }
  // Prepended so the flag is up before any other 'goaway' listener (and the
  // core's own close() that follows the event) runs.
  session.prependListener("goaway", () => {
    if (handlingGoaway) return;
    handlingGoaway = true;
    setImmediate(() => {
      handlingGoaway = false;
    });
  });
}
