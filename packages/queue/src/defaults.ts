/**
 * The queue's limits and defaults, written once: the CLI's help, the worker and the docs read them here.
 *
 * A worker renews its lock on a job every lockSeconds / 2 while it scans. A worker that dies
 * (SIGKILL, power loss) stops renewing; the next stalled check after the lock expires moves the job
 * back to waiting, and another worker picks it up. So a lost slide is retried after at most
 * lockSeconds + stalledSeconds.
 */
export const QUEUE_DEFAULTS = {
  /** BullMQ queue name and Redis key prefix: several labs can share one Redis with their own. */
  queue: 'fqa-scan',
  prefix: 'fqa',
  /** Scan attempts per slide before the job lands in `failed` with the last error. */
  attempts: 3,
  /** First retry delay after a failed attempt; doubles with each attempt. */
  backoffSeconds: 2,
  lockSeconds: 30,
  stalledSeconds: 5,
  /** A job whose worker died this many times is failed, not retried forever (a slide that kills workers). */
  maxStalledCount: 3,
} as const;

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Where the CLI and the tests look for Redis when --redis is not given. */
export const REDIS_URL_ENV = 'FQA_REDIS_URL';

/**
 * Limits on what a job in Redis may name. Whoever can write to the Redis can put jobs in it, so a
 * job is checked like user input (see job-check.ts) against these.
 */
export const JOB_LIMITS = {
  /** Longest slide, model or output path (Linux PATH_MAX). */
  pathChars: 4096,
  /**
   * Longest report stem: the worker writes `.<stem>.scores.tsv.<pid>.<8 hex>.tmp` (writeAtomic's
   * temp name), which must stay under the 255 bytes a file name may have.
   */
  stemChars: 200,
  /** Largest <stem>.json an earlier attempt left that the worker reads back (real ones are a few kB). */
  previousReportBytes: 16 * 2 ** 20,
  /** Longest line of a bad job shown by `queue status` (its reason can quote the job's data). */
  reasonChars: 500,
} as const;

/** Where the CLI takes the shared secret that signs jobs (or --secret-file FILE; never the command line). */
export const QUEUE_SECRET_ENV = 'FQA_QUEUE_SECRET';
/** A shorter shared secret is guessable; a longer file is not a secret file. */
export const QUEUE_SECRET_CHARS = { min: 16, max: 4096 } as const;
