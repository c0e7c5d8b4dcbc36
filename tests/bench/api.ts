/**
 * Placeholder.
 * @module
 */
import type { SectionContext } from "./context.ts";

/** Runs the api section. */
export function runApi(_ctx: SectionContext): Promise<void> {
  return Promise.reject(new Error("not written yet"));
}
