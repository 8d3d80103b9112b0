/**
 * Errors a user can act on. Each carries the CLI exit code it maps to, so the one top-level
 * handler in the CLI can set process.exitCode without knowing where the error came from.
 */
export class FqaError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad arguments or options (exit code 2). */
export class UsageError extends FqaError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** An input file that is missing, unreadable or not what it claims to be (exit code 3). */
export class InputError extends FqaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 3, options);
  }
}

/** A model file that fails validation (exit code 3: it is an unreadable input). */
export class ModelFileError extends InputError {}

/**
 * An image or slide smaller than one patch at the model's resolution: readable, but there is
 * nothing the model can score. Not an unreadable input (exit 3) but a slide that does not pass QC
 * (exit 1), reported with its own status `too-small`.
 */
export class TooSmallError extends FqaError {
  constructor(message: string) {
    super(message, 1);
  }
}
