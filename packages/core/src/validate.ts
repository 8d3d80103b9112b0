/** Option checks with one message shape everywhere: "Expected X for name but received Y". */
import { UsageError } from './errors.js';

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}' of type string`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${String(value)} of type ${typeof value}`;
  if (value === null) return 'null';
  return `a value of type ${typeof value}`;
}

export function expectInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`Expected integer between ${min} and ${max} for ${name} but received ${describe(value)}`);
  }
  return value;
}

export function expectOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`Expected one of ${allowed.join(', ')} for ${name} but received ${describe(value)}`);
  }
  return value as T;
}

/** Parses a CLI string as an integer, then range-checks it. */
export function parseIntegerOption(text: string | undefined, name: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (Number.isNaN(value)) throw new UsageError(`Expected integer between ${min} and ${max} for ${name} but received '${text}'`);
  return expectInteger(value, name, min, max);
}

/** Parses a CLI string as a finite number (positive, or inside a range, when asked). */
export function parseNumberOption(text: string | undefined, name: string, options: { positive?: boolean; range?: { min: number; max: number } } = {}): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (options.range && !(v >= options.range.min && v <= options.range.max)) throw new UsageError(`Expected number between ${options.range.min} and ${options.range.max} for ${name} but received '${text}'`);
  if (!Number.isFinite(v) || (options.positive && v <= 0)) throw new UsageError(`Expected a ${options.positive ? 'positive ' : ''}number for ${name} but received '${text}'`);
  return v;
}
