// docs/queue.md tells labs to protect Redis with a password and TLS (rediss://). Checked here on a
// real redis-server that speaks only TLS and requires a password, with a certificate of the test's
// own CA: the CLI and a worker connect with rediss:// when the CA is trusted (NODE_EXTRA_CA_CERTS),
// and refuse to when it is not, when the URL says redis://, or when the password is wrong.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { missing, repoRoot } from '../../../test/helpers/shared.js';
import { RedisServer, hasRedisServer } from './redis-server.js';

const bin = path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js');
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe.skipIf(missing(hasRedisServer, 'redis-server') || missing(hasOpenssl, 'openssl'))('Redis over TLS with a password', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'fqa-redis-tls-'));
  const cert = path.join(work, 'cert.pem');
  const key = path.join(work, 'key.pem');
  const password = 'p@ss:word/with-specials';
  let server: RedisServer;

  const fqa = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot, env: { ...process.env, NODE_EXTRA_CA_CERTS: '', ...env } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const trusted = () => ({ NODE_EXTRA_CA_CERTS: cert });

  beforeAll(async () => {
    // A self-signed certificate for 127.0.0.1: the CA the clients are told to trust, or not.
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    server = await RedisServer.start({ password, tls: { cert, key } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('rediss:// with the password connects; plain redis://, an untrusted certificate or a wrong password is exit 3 without the password', () => {
    expect(server.url).toMatch(/^rediss:\/\/:p%40ss%3Aword%2Fwith-specials@127\.0\.0\.1:\d+$/);
    const ok = fqa(['queue', 'status', '--redis', server.url], trusted());
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^queue fqa\/fqa-scan at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
    // The scheme in capitals is TLS too (ioredis alone would speak plain text for it).
    const upper = fqa(['queue', 'status', '--redis', server.url.replace('rediss://', 'REDISS://')], trusted());
    expect(upper.code, upper.stderr).toBe(0);

    const refused: [string, NodeJS.ProcessEnv][] = [
      [server.url.replace('rediss://', 'redis://'), trusted()],
      [server.url, {}],
      [server.url.replace(encodeURIComponent(password), 'wrong-password'), trusted()],
    ];
    for (const [url, env] of refused) {
      const r = fqa(['queue', 'status', '--redis', url], env);
      expect(r.code, `${url}: ${r.stderr}`).toBe(3);
      expect(r.stderr, url).toMatch(/^fqa-scan: cannot reach Redis at rediss?:\/\/:\*\*\*@127\.0\.0\.1:\d+\/?: /);
      expect(r.stderr, url).not.toContain('ss:word');
    }
  }, 120_000);

  test('a worker connects over rediss://, waits for jobs and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [bin, 'worker', '--redis', server.url, '--slides-root', work, '--out-root', work], { cwd: repoRoot, env: { ...process.env, ...trusted() }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const ready = new Promise<void>((resolve) => child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      log += d;
      if (log.includes('taking jobs from')) resolve();
    }));
    await Promise.race([ready, exited]);
    expect(log).toMatch(/taking jobs from fqa\/fqa-scan at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
    child.kill('SIGTERM');
    expect(await exited, log).toBe(0);
  }, 120_000);
});
