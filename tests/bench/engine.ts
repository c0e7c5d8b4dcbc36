/**
 * Placeholder.
 * @module
 */
import type { SectionContext } from "./context.ts";

/** Runs the engine section. */
export function runEngine(_ctx: SectionContext): Promise<void> {
  return Promise.reject(new Error("not written yet"));
}
