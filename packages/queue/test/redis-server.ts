/**
 * A real redis-server for the queue tests, on a free port, with its data in a temp folder:
 * append-only file with fsync on every write, so a restart keeps every job, as a production Redis
 * with persistence would. redis-server comes from Debian's redis-server package (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** Whether a Redis answers on the port (a password-protected one answers NOAUTH). */
async function answers(port: number, useTls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    // The probe only asks whether the server is up: the tests check the certificate themselves.
    const socket = useTls ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.on(useTls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      resolve(/^(\+PONG|-NOAUTH)/.test(d.toString()));
      socket.destroy();
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      resolve(false);
      socket.destroy();
    });
  });
}

export interface RedisServerOptions {
  /** requirepass: clients must give it (redis://:password@...). */
  password?: string;
  /** TLS only (no plain port): the server's certificate and key, PEM files. */
  tls?: { cert: string; key: string };
}

export class RedisServer {
  private process: ChildProcess | null = null;
  readonly dir = mkdtempSync(path.join(tmpdir(), 'fqa-redis-'));
  private constructor(readonly port: number, private readonly options: RedisServerOptions) {}

  get url(): string {
    return `${this.options.tls ? 'rediss' : 'redis'}://${this.options.password ? `:${encodeURIComponent(this.options.password)}@` : ''}127.0.0.1:${this.port}`;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    if (!hasRedisServer) throw new Error('redis-server is not installed (apt-get install redis-server)');
    const server = new RedisServer(await freePort(), options);
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    const { password, tls: certs } = this.options;
    const listen = certs
      ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.cert, '--tls-auth-clients', 'no']
      : ['--port', String(this.port)];
    this.process = spawn('redis-server', [
      ...listen, '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', ...(password ? ['--requirepass', password] : []),
    ], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await answers(this.port, certs !== undefined))) {
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
