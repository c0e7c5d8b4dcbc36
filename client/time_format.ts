/**
 * Go time layouts for `--time-format` / `$TELEJOB_TIME_FORMAT`, so the seed's
 * settings (`TELEJOB_TIME_FORMAT="15:04:05"`) keep working. A layout writes
 * the reference time `Mon Jan 2 15:04:05 MST 2006` the way times should look;
 * the names of Go's layout constants (`RFC3339`, `Kitchen`, `DateTime`, ...)
 * are accepted too. Times are shown in the local time zone, as the seed did.
 * @module
 */

/** Go's named layouts (package time), accepted by name. */
export const GO_LAYOUTS: Readonly<Record<string, string>> = {
  Layout: "01/02 03:04:05PM '06 -0700",
  ANSIC: "Mon Jan _2 15:04:05 2006",
  UnixDate: "Mon Jan _2 15:04:05 MST 2006",
  RubyDate: "Mon Jan 02 15:04:05 -0700 2006",
  RFC822: "02 Jan 06 15:04 MST",
  RFC822Z: "02 Jan 06 15:04 -0700",
  RFC850: "Monday, 02-Jan-06 15:04:05 MST",
  RFC1123: "Mon, 02 Jan 2006 15:04:05 MST",
  RFC1123Z: "Mon, 02 Jan 2006 15:04:05 -0700",
  RFC3339: "2006-01-02T15:04:05Z07:00",
  RFC3339Nano: "2006-01-02T15:04:05.999999999Z07:00",
  Kitchen: "3:04PM",
  Stamp: "Jan _2 15:04:05",
  StampMilli: "Jan _2 15:04:05.000",
  StampMicro: "Jan _2 15:04:05.000000",
  StampNano: "Jan _2 15:04:05.000000000",
  DateTime: "2006-01-02 15:04:05",
  DateOnly: "2006-01-02",
  TimeOnly: "15:04:05",
};

/** The default: RFC 3339, as the seed's CLI used. */
export const DEFAULT_LAYOUT: string = GO_LAYOUTS.RFC3339;

type Chunk =
  | { kind: "literal"; text: string }
  | { kind: "std"; std: string }
  | { kind: "frac"; digits: number; trim: boolean; sep: string };

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = [
  "Sunday",
  "Monday",
  "Tuesday",
  "Wednesday",
  "Thursday",
  "Friday",
  "Saturday",
];

const ZONES = [
  "Z070000",
  "Z07:00:00",
  "Z0700",
  "Z07:00",
  "Z07",
  "-070000",
  "-07:00:00",
  "-0700",
  "-07:00",
  "-07",
];

const isLower = (c: string | undefined) =>
  c !== undefined && c >= "a" && c <= "z";
const isDigit = (c: string | undefined) =>
  c !== undefined && c >= "0" && c <= "9";

/** Splits a layout into literals and elements, following Go's nextStdChunk. */
function tokenize(layout: string): Chunk[] {
  const chunks: Chunk[] = [];
  let literal = "";
  const push = (chunk: Chunk) => {
    if (literal) chunks.push({ kind: "literal", text: literal });
    literal = "";
    chunks.push(chunk);
  };
  let i = 0;
  const at = (s: string) => layout.startsWith(s, i);
  while (i < layout.length) {
    const c = layout[i];
    let std: string | undefined;
    switch (c) {
      case "J":
        if (at("January")) std = "January";
        else if (at("Jan") && !isLower(layout[i + 3])) std = "Jan";
        break;
      case "M":
        if (at("Monday")) std = "Monday";
        else if (at("Mon") && !isLower(layout[i + 3])) std = "Mon";
        else if (at("MST")) std = "MST";
        break;
      case "0":
        if (layout[i + 1] >= "1" && layout[i + 1] <= "6") {
          std = layout.slice(i, i + 2);
        } else if (at("002")) std = "002";
        break;
      case "1":
        std = at("15") ? "15" : "1";
        break;
      case "2":
        std = at("2006") ? "2006" : "2";
        break;
      case "_":
        if (at("_2006")) {
          // A literal underscore followed by the year, as in Go.
          literal += "_";
          i++;
          std = "2006";
        } else if (at("_2")) std = "_2";
        else if (at("__2")) std = "__2";
        break;
      case "3":
      case "4":
      case "5":
        std = c;
        break;
      case "P":
        if (at("PM")) std = "PM";
        break;
      case "p":
        if (at("pm")) std = "pm";
        break;
      case "-":
      case "Z":
        std = ZONES.find((z) => z[0] === c && at(z));
        break;
      case ".":
      case ",": {
        const d = layout[i + 1];
        if (d === "0" || d === "9") {
          let j = i + 1;
          while (layout[j] === d) j++;
          if (!isDigit(layout[j])) {
            push({ kind: "frac", digits: j - i - 1, trim: d === "9", sep: c });
            i = j;
            continue;
          }
        }
        break;
      }
    }
    if (std === undefined) {
      literal += c;
      i++;
    } else {
      push({ kind: "std", std });
      i += std.length;
    }
  }
  if (literal) chunks.push({ kind: "literal", text: literal });
  return chunks;
}

/**
 * Resolves a `--time-format` value: a Go constant's name (any case) or a Go
 * layout. Returns the layout.
 *
 * @throws {Error} when the text has no date or time element at all (such as
 * an strftime pattern like `%H:%M`), since Go would print it verbatim.
 */
export function parseTimeFormat(text: string): string {
  const name = Object.keys(GO_LAYOUTS).find((k) =>
    k.toLowerCase() === text.toLowerCase()
  );
  if (name) return GO_LAYOUTS[name];
  if (!tokenize(text).some((c) => c.kind !== "literal")) {
    throw new Error(
      `Invalid time format ${
        JSON.stringify(text)
      }: write the reference time Mon Jan 2 15:04:05 MST 2006 the way times should look, such as "15:04:05" or "2006-01-02 15:04:05", or use a name such as RFC3339, DateTime or Kitchen`,
    );
  }
  return text;
}

/** Options of {@linkcode formatTime}. */
export interface FormatOptions {
  /**
   * Zone offset east of UTC, in minutes; default the local zone's offset at
   * that moment.
   */
  offsetMinutes?: number;
  /** Zone abbreviation for `MST`; default the local zone's, if it has one. */
  zoneName?: string;
}

// Made once: building an Intl formatter costs about 0.1 ms, which a table
// of 10,000 jobs paid 20,000 times.
let zoneFormat: Intl.DateTimeFormat | undefined;

function localZoneName(date: Date): string | undefined {
  zoneFormat ??= new Intl.DateTimeFormat("en-US", { timeZoneName: "short" });
  const part = zoneFormat.formatToParts(date).find((p) =>
    p.type === "timeZoneName"
  )?.value;
  // Intl falls back to "GMT+1" where a zone has no abbreviation; Go prints
  // a numeric offset then.
  return part && /^[A-Z]{2,5}$/.test(part) ? part : undefined;
}

const pad = (n: number, width: number, fill = "0") =>
  String(n).padStart(width, fill);

function formatZone(std: string, offset: number): string {
  if (std.startsWith("Z") && offset === 0) return "Z";
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const hh = pad(Math.floor(abs / 60), 2);
  const mm = pad(abs % 60, 2);
  const colon = std.includes(":");
  if (std.endsWith("07")) return sign + hh;
  // Offsets here are whole minutes, so the seconds field is always 00.
  const seconds = std.length === 7 || std.length === 9
    ? (colon ? ":00" : "00")
    : "";
  return sign + hh + (colon ? ":" : "") + mm + seconds;
}

/**
 * Formats `date` with a Go layout (see {@linkcode parseTimeFormat}), in the
 * local time zone unless `options` fixes one.
 */
export function formatTime(
  date: Date,
  layout: string,
  options: FormatOptions = {},
): string {
  const offset = options.offsetMinutes ?? -date.getTimezoneOffset();
  // Looked up only for a layout that shows it: it is the costly part.
  const zoneName = () =>
    options.offsetMinutes === undefined
      ? options.zoneName ?? localZoneName(date)
      : options.zoneName;
  // Shift the instant so that the UTC getters read the wall clock.
  const t = new Date(date.getTime() + offset * 60_000);
  const year = t.getUTCFullYear();
  const month = t.getUTCMonth();
  const day = t.getUTCDate();
  const hour = t.getUTCHours();
  const yearStart = Date.UTC(year, 0, 1);
  const yday = Math.floor((t.getTime() - yearStart) / 86_400_000) + 1;
  const hour12 = hour % 12 === 0 ? 12 : hour % 12;
  let out = "";
  for (const chunk of tokenize(layout)) {
    if (chunk.kind === "literal") {
      out += chunk.text;
      continue;
    }
    if (chunk.kind === "frac") {
      // JavaScript dates carry milliseconds; finer digits are zero.
      let digits = (pad(t.getUTCMilliseconds(), 3) + "0".repeat(6)).slice(
        0,
        chunk.digits,
      );
      if (chunk.trim) digits = digits.replace(/0+$/, "");
      if (digits) out += chunk.sep + digits;
      continue;
    }
    const s = chunk.std;
    switch (s) {
      case "January":
        out += MONTHS[month];
        break;
      case "Jan":
        out += MONTHS[month].slice(0, 3);
        break;
      case "1":
        out += month + 1;
        break;
      case "01":
        out += pad(month + 1, 2);
        break;
      case "Monday":
        out += DAYS[t.getUTCDay()];
        break;
      case "Mon":
        out += DAYS[t.getUTCDay()].slice(0, 3);
        break;
      case "2":
        out += day;
        break;
      case "_2":
        out += pad(day, 2, " ");
        break;
      case "02":
        out += pad(day, 2);
        break;
      case "__2":
        out += pad(yday, 3, " ");
        break;
      case "002":
        out += pad(yday, 3);
        break;
      case "15":
        out += pad(hour, 2);
        break;
      case "3":
        out += hour12;
        break;
      case "03":
        out += pad(hour12, 2);
        break;
      case "4":
        out += t.getUTCMinutes();
        break;
      case "04":
        out += pad(t.getUTCMinutes(), 2);
        break;
      case "5":
        out += t.getUTCSeconds();
        break;
      case "05":
        out += pad(t.getUTCSeconds(), 2);
        break;
      case "2006":
        out += pad(year, 4);
        break;
      case "06":
        out += pad(year % 100, 2);
        break;
      case "PM":
        out += hour >= 12 ? "PM" : "AM";
        break;
      case "pm":
        out += hour >= 12 ? "pm" : "am";
        break;
      case "MST":
        out += zoneName() ??
          (offset === 0 ? "UTC" : formatZone("-0700", offset));
        break;
      default:
        out += formatZone(s, offset);
    }
  }
  return out;
}
