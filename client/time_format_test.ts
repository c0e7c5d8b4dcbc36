import assert from "node:assert/strict";
import {
  DEFAULT_LAYOUT,
  formatTime,
  GO_LAYOUTS,
  parseTimeFormat,
} from "./time_format.ts";

// Expected strings are what Go's time.Format prints for the same instant.
const t = new Date("2009-11-10T23:04:05.123Z");
const utc = { offsetMinutes: 0, zoneName: "UTC" };
const est = { offsetMinutes: -300, zoneName: "EST" };

Deno.test("Go's named layouts, in UTC", () => {
  const want: Record<string, string> = {
    Layout: "11/10 11:04:05PM '09 +0000",
    ANSIC: "Tue Nov 10 23:04:05 2009",
    UnixDate: "Tue Nov 10 23:04:05 UTC 2009",
    RubyDate: "Tue Nov 10 23:04:05 +0000 2009",
    RFC822: "10 Nov 09 23:04 UTC",
    RFC822Z: "10 Nov 09 23:04 +0000",
    RFC850: "Tuesday, 10-Nov-09 23:04:05 UTC",
    RFC1123: "Tue, 10 Nov 2009 23:04:05 UTC",
    RFC1123Z: "Tue, 10 Nov 2009 23:04:05 +0000",
    RFC3339: "2009-11-10T23:04:05Z",
    RFC3339Nano: "2009-11-10T23:04:05.123Z",
    Kitchen: "11:04PM",
    Stamp: "Nov 10 23:04:05",
    StampMilli: "Nov 10 23:04:05.123",
    StampMicro: "Nov 10 23:04:05.123000",
    StampNano: "Nov 10 23:04:05.123000000",
    DateTime: "2009-11-10 23:04:05",
    DateOnly: "2009-11-10",
    TimeOnly: "23:04:05",
  };
  assert.deepEqual(Object.keys(want).sort(), Object.keys(GO_LAYOUTS).sort());
  for (const [name, layout] of Object.entries(GO_LAYOUTS)) {
    assert.equal(formatTime(t, layout, utc), want[name], name);
  }
});

Deno.test("zones west of UTC, numeric and named", () => {
  assert.equal(
    formatTime(t, GO_LAYOUTS.RFC3339, est),
    "2009-11-10T18:04:05-05:00",
  );
  assert.equal(
    formatTime(t, GO_LAYOUTS.RFC1123Z, est),
    "Tue, 10 Nov 2009 18:04:05 -0500",
  );
  assert.equal(
    formatTime(t, GO_LAYOUTS.UnixDate, est),
    "Tue Nov 10 18:04:05 EST 2009",
  );
  // Without a zone name Go prints the offset for MST.
  assert.equal(formatTime(t, "MST", { offsetMinutes: 330 }), "+0530");
  const ist = { offsetMinutes: 330 };
  assert.equal(
    formatTime(t, "Z07|Z0700|Z07:00|Z070000|Z07:00:00", ist),
    "+05|+0530|+05:30|+053000|+05:30:00",
  );
  assert.equal(
    formatTime(t, "-07|-0700|-07:00|-070000|-07:00:00", utc),
    "+00|+0000|+00:00|+000000|+00:00:00",
  );
  assert.equal(formatTime(t, "Z07:00 Z0700", utc), "Z Z");
  // The date moves with the zone: 23:04 UTC is 04:34 the next day in +05:30.
  assert.equal(formatTime(t, "2006-01-02 15:04", ist), "2009-11-11 04:34");
});

Deno.test("every element: padding, 12-hour clock, day of year", () => {
  const jan = new Date("2006-01-05T03:07:09.000Z");
  assert.equal(
    formatTime(jan, "1 01 Jan January|2 _2 02|__2 002|3 03 15 PM pm", utc),
    "1 01 Jan January|5  5 05|  5 005|3 03 03 AM am",
  );
  assert.equal(
    formatTime(jan, "4 04 5 05|06 2006 _2006|Mon Monday", utc),
    "7 07 9 09|06 2006 _2006|Thu Thursday",
  );
  assert.equal(formatTime(t, "002 __2", utc), "314 314");
  assert.equal(
    formatTime(new Date("2009-11-10T12:00:00Z"), "3PM", utc),
    "12PM",
  );
  assert.equal(
    formatTime(new Date("2009-11-10T00:30:00Z"), "3:04pm", utc),
    "12:30am",
  );
});

Deno.test("fractional seconds: .000 keeps zeros, .999 trims them, , works", () => {
  assert.equal(formatTime(t, "05.0 05.00 05,000", utc), "05.1 05.12 05,123");
  assert.equal(formatTime(t, "05.9999", utc), "05.123");
  const whole = new Date("2009-11-10T23:04:05Z");
  assert.equal(formatTime(whole, "05.999|05.000", utc), "05|05.000");
  // A dot followed by digits that don't all match is no fraction; as in Go,
  // the "01" inside it is then the month.
  assert.equal(formatTime(t, "05.0001", utc), "05.0011");
});

Deno.test("text that only looks like an element stays literal", () => {
  // "Jan" before a lower-case letter, and letters without a meaning.
  assert.equal(formatTime(t, "Janet at 15h", utc), "Janet at 23h");
  assert.equal(formatTime(t, "Monk", utc), "Monk");
});

Deno.test("the local zone by default", () => {
  const offset = -t.getTimezoneOffset();
  assert.equal(
    formatTime(t, "2006-01-02 15:04:05 -07:00", {}),
    formatTime(t, "2006-01-02 15:04:05 -07:00", { offsetMinutes: offset }),
  );
});

Deno.test("parseTimeFormat: names in any case, layouts, clear errors", () => {
  assert.equal(DEFAULT_LAYOUT, "2006-01-02T15:04:05Z07:00");
  assert.equal(parseTimeFormat("RFC3339"), DEFAULT_LAYOUT);
  assert.equal(parseTimeFormat("kitchen"), "3:04PM");
  assert.equal(parseTimeFormat("15:04:05"), "15:04:05");
  assert.equal(parseTimeFormat("Jan _2 15:04:05"), "Jan _2 15:04:05");
  for (const bad of ["%H:%M:%S", "", "hh:mm"]) {
    assert.throws(
      () => parseTimeFormat(bad),
      (err: Error) =>
        err.message.startsWith(
          `Invalid time format ${
            JSON.stringify(bad)
          }: write the reference time`,
        ),
      bad,
    );
  }
});
