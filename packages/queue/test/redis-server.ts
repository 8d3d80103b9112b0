/**
 * A real redis-server for the queue tests, on a free port, with its data in a temp folder:
 * append-only file with fsync on every write, so a restart keeps every job, as a production Redis
 * with persistence would. redis-server comes from Debian's redis-server package (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
/** CI sets FQA_REQUIRE_ALL=1: a test that would skip for lack of a tool fails instead. */
export const requireAll = process.env.FQA_REQUIRE_ALL === '1';
if (!hasRedisServer) console.warn(`[fqa tests] ${requireAll ? 'FAILING' : 'skipping'} the queue tests: redis-server is not installed (apt-get install redis-server)`);

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      socket.destroy();
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      resolve(false);
      socket.destroy();
    });
  });
}

export class RedisServer {
  private process: ChildProcess | null = null;
  readonly dir = mkdtempSync(path.join(tmpdir(), 'fqa-redis-'));
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    if (!hasRedisServer) throw new Error('redis-server is not installed (apt-get install redis-server)');
    const server = new RedisServer(await freePort());
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    this.process = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction',
    ], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await answers(this.port))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${this.port}`);
      if (this.process.exitCode !== null) throw new Error(`redis-server exited with code ${this.process.exitCode}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM (Redis flushes and exits), then the same port and data folder again. */
  async restart(downMs = 500): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }

  async stop(): Promise<void> {
    const p = this.process;
    this.process = null;
    if (!p || p.exitCode !== null) return;
    const exited = once(p, 'exit');
    p.kill('SIGTERM');
    await exited;
  }
}
