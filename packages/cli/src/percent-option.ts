/** Shares typed on the command line (`--max-out-of-focus`, `--min-tissue`): percent, checked once for scan and queue add. */
import { UsageError, parseNumberOption } from '@fqa/core';

/**
 * A share given in percent, checked; the percentage (as a queue job records it). A value below 1 is
 * kept as given (0.5 % is a legitimate limit) but said through `notice`: it is the usual sign of a
 * fraction typed where a percent was meant (0.05 for 5 %).
 */
export function parsePercentage(text: string | undefined, name: string, notice: (line: string) => void = () => {}): number | undefined {
  const v = parseNumberOption(text, name);
  if (v !== undefined && !(v >= 0 && v <= 100)) throw new UsageError(`Expected number between 0 and 100 for ${name} but received '${text}'`);
  if (v !== undefined && v > 0 && v < 1) notice(`--${name} ${text} is ${text} %, not ${100 * v} %: shares are given in percent`);
  return v;
}

/** The same, as the fraction scanSlide takes. */
export function parsePercent(text: string | undefined, name: string, notice: (line: string) => void = () => {}): number | undefined {
  const v = parsePercentage(text, name, notice);
  return v === undefined ? undefined : v / 100;
}
