/**
 * The benchmark's results: what each section measured, against which floor
 * and target, and how it is printed for a person.
 * @module
 */
import {
  formatNumber,
  formatTable,
  type Section,
  type Target,
  verdict,
} from "./stats.ts";

/** One number the benchmark measured. */
export interface Measurement {
  /** Stable key for JSON consumers, e.g. `engine.start.p50`. */
  key: string;
  /** What was measured, for a person. */
  label: string;
  value: number;
  /** Unit of `value`, `floor` and `target`, e.g. `ms`, `/s`, `MB/s`. */
  unit: string;
  /** The same machine's floor for the same work, when there is one. */
  floor?: number;
  /** The issue's target, when it sets one. */
  target?: Target;
  /** How it was obtained: counts, command, concurrency. */
  detail?: string;
}

/** Everything one section produced. */
export interface SectionResult {
  section: Section;
  measurements: Measurement[];
  /** Findings that are not numbers: where a ramp stopped and why, skips. */
  notes: string[];
  /** Set when the section failed part-way; measurements so far are kept. */
  error?: string;
  /** Wall time of the section in seconds. */
  seconds: number;
}

/** The machine the numbers were taken on. */
export interface MachineInfo {
  date: string;
  hostname: string;
  kernel: string;
  cpus: number;
  cpuModel: string;
  memTotalBytes: number;
  deno: string;
  v8: string;
  /** 1-, 5- and 15-minute load averages before and after the run. */
  loadBefore: number[];
  loadAfter?: number[];
  fdLimit: string;
}

/** The whole run, as written by `--json`. */
export interface BenchReport {
  machine: MachineInfo;
  quick: boolean;
  sections: SectionResult[];
}

/** Collects a section's measurements and notes as it runs. */
export class Recorder {
  readonly measurements: Measurement[] = [];
  readonly notes: string[] = [];
  #onChange?: () => void;

  /**
   * `onChange` runs after every measurement and note, so a worker can keep
   * its results on disk as they come and lose none if it dies.
   */
  constructor(onChange?: () => void) {
    this.#onChange = onChange;
  }

  /** Records a measurement and echoes it to stderr as progress. */
  add(measurement: Measurement): void {
    this.measurements.push(measurement);
    const floor = measurement.floor === undefined
      ? ""
      : ` (floor ${formatNumber(measurement.floor)})`;
    console.error(
      `  ${measurement.label}: ${
        formatNumber(measurement.value)
      } ${measurement.unit}${floor}`,
    );
    this.#onChange?.();
  }

  /** Records a finding that is not a number. */
  note(text: string): void {
    this.notes.push(text);
    console.error(`  note: ${text}`);
    this.#onChange?.();
  }

  /** The floor recorded earlier under `key`, if any. */
  value(key: string): number | undefined {
    return this.measurements.find((m) => m.key === key)?.value;
  }
}

/** Prints `report` as aligned tables, one per section. */
export function formatReport(report: BenchReport): string {
  const m = report.machine;
  const lines: string[] = [
    `Telejob benchmark${report.quick ? " (quick mode: small counts)" : ""}`,
    `${m.date}  ${m.hostname}  Linux ${m.kernel}  ${m.cpus} x ${m.cpuModel}  ${
      formatNumber(m.memTotalBytes / 2 ** 30)
    } GiB`,
    `Deno ${m.deno} (V8 ${m.v8})  open files ${m.fdLimit}  load ${
      m.loadBefore.join(" ")
    } before${m.loadAfter ? `, ${m.loadAfter.join(" ")} after` : ""}`,
  ];
  for (const section of report.sections) {
    lines.push(
      "",
      `== ${section.section} (${formatNumber(section.seconds)} s)`,
    );
    if (section.measurements.length > 0) {
      const rows: string[][] = [["measure", "value", "floor", "target", ""]];
      for (const x of section.measurements) {
        rows.push([
          x.label,
          `${formatNumber(x.value)} ${x.unit}`,
          x.floor === undefined ? "" : `${formatNumber(x.floor)} ${x.unit}`,
          x.target === undefined
            ? ""
            : `${x.target.op} ${formatNumber(x.target.value)} ${x.unit}`,
          x.target === undefined ? "" : verdict(x.value, x.target),
        ]);
      }
      lines.push(formatTable(rows));
    }
    for (const note of section.notes) lines.push(`- ${note}`);
    if (section.error) lines.push(`! section failed: ${section.error}`);
  }
  return lines.join("\n");
}

/** `report` as Markdown: one table per section, notes as list items. */
export function formatMarkdown(report: BenchReport): string {
  const m = report.machine;
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const lines: string[] = [
    `Measured ${m.date} on ${m.hostname}: Linux ${m.kernel}, ${m.cpus} x ` +
    `${m.cpuModel}, ${formatNumber(m.memTotalBytes / 2 ** 30)} GiB, Deno ` +
    `${m.deno}, open files ${m.fdLimit}; load average ${
      m.loadBefore.join(" ")
    } before${m.loadAfter ? ` and ${m.loadAfter.join(" ")} after` : ""}` +
    `${report.quick ? " (quick mode)" : ""}.`,
  ];
  for (const section of report.sections) {
    lines.push(
      "",
      `### ${section.section} (${formatNumber(section.seconds)} s)`,
      "",
    );
    if (section.measurements.length > 0) {
      lines.push(
        "| measure | value | floor | target | | how |",
        "|---|---:|---:|---:|---|---|",
      );
      for (const x of section.measurements) {
        lines.push(
          `| ${
            [
              x.label,
              `${formatNumber(x.value)} ${x.unit}`,
              x.floor === undefined ? "" : `${formatNumber(x.floor)} ${x.unit}`,
              x.target === undefined
                ? ""
                : `${x.target.op} ${formatNumber(x.target.value)} ${x.unit}`,
              x.target === undefined ? "" : verdict(x.value, x.target),
              x.detail ?? "",
            ].map((c) => cell(c.trim())).join(" | ")
          } |`,
        );
      }
    }
    if (section.notes.length > 0) lines.push("");
    for (const note of section.notes) {
      const [first, ...rest] = note.split("\n");
      lines.push(`- ${first}`);
      if (rest.length > 0) {
        lines.push(
          "",
          "  ```",
          ...rest.map((r) => `  ${r}`),
          "  ```",
        );
      }
    }
    if (section.error) {
      lines.push("", `Section failed: \`${section.error.split("\n")[0]}\``);
    }
  }
  return lines.join("\n") + "\n";
}
