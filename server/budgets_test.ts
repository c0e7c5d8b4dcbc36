import assert from "node:assert/strict";
import {
  BudgetError,
  CallBudget,
  countOpenFds,
  FdBudget,
  isFdExhaustion,
  listenBacklog,
  readFdLimit,
} from "./budgets.ts";

Deno.test("CallBudget counts calls per user and names its flag at the budget", () => {
  const budget = new CallBudget(2);
  const a = budget.acquire("alice");
  budget.acquire("alice");
  budget.acquire("bob");
  assert.throws(
    () => budget.acquire("alice"),
    (e) => e instanceof BudgetError && /--max-calls-per-user/.test(e.message),
  );
  a();
  a(); // idempotent
  assert.equal(budget.active("alice"), 1);
  budget.acquire("alice");
});

Deno.test("FdBudget refuses streams at the reserve and connections at half of it", () => {
  let open = 80;
  const fds = new FdBudget({
    reserve: 32,
    limit: 128,
    count: () => open,
    refreshMs: 0,
  });
  assert.equal(fds.refusal("stream"), undefined);
  open = 96;
  assert.match(fds.refusal("stream") ?? "", /--fd-reserve 32/);
  assert.equal(fds.refusal("connection"), undefined);
  open = 112;
  assert.match(fds.refusal("connection") ?? "", /16 are free/);
  open = 10;
  assert.equal(fds.refusal("stream"), undefined);
});

Deno.test("FdBudget recounts before refusing on an estimate", async () => {
  const open = 50;
  let counts = 0;
  const fds = new FdBudget({
    reserve: 10,
    limit: 100,
    count: () => (counts++, open),
    refreshMs: 60_000,
  });
  for (let i = 0; i < 35; i++) assert.equal(fds.refusal(), undefined);
  await new Promise((r) => setTimeout(r, 15));
  // The estimate (50 + 35 granted) reaches the reserve; a recount says 50.
  for (let i = 0; i < 10; i++) assert.equal(fds.refusal(), undefined);
  assert.equal(counts, 2);
});

Deno.test("isFdExhaustion knows EMFILE and ENFILE without reading the stack", () => {
  const error = new Error("Too many open files (os error 24)");
  Object.defineProperty(error, "stack", {
    get() {
      throw new Error("stack read");
    },
  });
  assert.ok(isFdExhaustion(error));
  assert.ok(isFdExhaustion({ code: "ENFILE" }));
  assert.ok(!isFdExhaustion(new Error("No such file or directory")));
  assert.ok(!isFdExhaustion(undefined));
});

Deno.test("the fd limit and count are read from /proc", () => {
  assert.ok(readFdLimit() > 0);
  const n = countOpenFds();
  assert.ok(n !== undefined && n >= 3);
  assert.ok(listenBacklog(128) <= 32 && listenBacklog(0) === 511);
});
