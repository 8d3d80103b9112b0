/**
 * Redis connections for the queue. ioredis reconnects by itself after a Redis restart; a worker's
 * connection waits for it (maxRetriesPerRequest: null, as BullMQ requires for workers), while the
 * short-lived CLI commands (queue add/status/report) fail fast with one line naming the URL.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { FqaError, UsageError } from '@fqa/core';

/** Checks a redis:// or rediss:// URL before ioredis retries forever against a typo. */
export function parseRedisUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`Expected a redis://host:port URL for redis but received '${url}'`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new UsageError(`Expected a redis:// or rediss:// URL for redis but received '${url}'`);
  if (!parsed.hostname) throw new UsageError(`Expected a host in the redis URL but received '${url}'`);
  if (parsed.pathname.length > 1 && !/^\/\d{1,2}$/.test(parsed.pathname)) throw new UsageError(`Expected a database number (redis://host:port/N) in the redis URL but received '${url}'`);
  return parsed;
}

/**
 * What the URL itself cannot say to ioredis: TLS for rediss://. ioredis turns TLS on only for a URL
 * spelled exactly 'rediss://' (not 'REDISS://', which URL parsing accepts), so it is set here from the
 * parsed scheme. The server's certificate is verified against Node's CAs (add a private CA with
 * NODE_EXTRA_CA_CERTS=ca.pem); the password in the URL goes to Redis only after the TLS handshake.
 */
function urlOptions(url: string): RedisOptions {
  return parseRedisUrl(url).protocol === 'rediss:' ? { tls: {} } : {};
}

/** The URL without its password, for messages. */
export function displayUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/** Backoff between reconnection attempts: quick at first, then every 2 s for as long as it takes. */
const retryStrategy = (times: number) => Math.min(100 * times, 2000);

/** A connection for a worker: it outlives Redis restarts and network cuts. */
export function workerConnection(url: string): Redis {
  return new Redis(url, { ...urlOptions(url), maxRetriesPerRequest: null, retryStrategy, lazyConnect: true });
}

/**
 * A connection for a one-shot command: connected and answering before it is returned, or an
 * error that names the URL (exit code 3, like any input that cannot be read).
 */
export async function clientConnection(url: string, timeoutMs = 5000): Promise<Redis> {
  const client = new Redis(url, { ...urlOptions(url), maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: timeoutMs, lazyConnect: true });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    const reason = (lastError ?? (err as Error)).message;
    throw new FqaError(`cannot reach Redis at ${displayUrl(url)}: ${reason}`, 3, { cause: err });
  }
  return client;
}
