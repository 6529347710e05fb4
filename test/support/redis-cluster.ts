import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './moto-server';

/** Redis servers of a test's own on loopback ports, in a temp folder of their own. */
export interface RedisTopology {
  /** What REDIS_URL says to reach them. */
  url: string;
  /** Stops every server and removes the temp folder. Idempotent. */
  stop(): Promise<void>;
}

export interface RedisClusterTopology extends RedisTopology {
  /** Client ports of the masters. */
  ports: number[];
  /** Stops every node, keeping their folder: the whole Cluster is down. */
  kill(): Promise<void>;
  /** Starts the nodes again from their nodes files (their data is gone); resolves once the Cluster is ok. */
  restart(): Promise<void>;
}

export interface RedisSentinelTopology extends RedisTopology {
  masterName: string;
  masterPort: number;
  sentinelPort: number;
}

const START_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 100;
/** Time SIGTERM gets before SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** A server's output kept for error messages. */
const OUTPUT_TAIL_CHARS = 4_000;
const MASTER_NAME = 'visionq-master';

const run = promisify(execFile);

/**
 * A three-master Redis Cluster (no replicas): `redis-server --cluster-enabled yes` three
 * times, joined by `redis-cli --cluster create`; resolves once every node says
 * `cluster_state:ok`. On any failure, what was started is stopped and the folder removed.
 */
export async function startRedisCluster(): Promise<RedisClusterTopology> {
  const servers = new Servers(await mkdtemp(join(tmpdir(), 'vq-redis-cluster-')));
  try {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // The bus port is chosen too: port + 10000, the default, may be taken or out of range.
      const busPort = await freePort();
      servers.start(`node-${port}`, [
        '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
        '--cluster-config-file', join(servers.dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--dir', servers.dir,
      ]);
      ports.push(port);
    }
    await Promise.all(ports.map((port) => servers.waitFor(`node-${port}`, port, async (r) => (await r.ping()) === 'PONG')));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: START_TIMEOUT_MS });
    const clusterOk = () => Promise.all(ports.map((port) => servers.waitFor(`node-${port}`, port, async (r) => /cluster_state:ok/.test(String(await r.cluster('INFO'))))));
    await clusterOk();
    return {
      url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
      ports,
      kill: () => servers.stopProcesses(),
      restart: async () => {
        servers.restartAll();
        await clusterOk();
      },
      stop: () => servers.stopAll(),
    };
  } catch (err) {
    await servers.stopAll();
    throw err;
  }
}

/**
 * A master and one Sentinel watching it (`redis-server --sentinel`, quorum 1); resolves
 * once the Sentinel names the master's address.
 */
export async function startRedisSentinel(): Promise<RedisSentinelTopology> {
  const servers = new Servers(await mkdtemp(join(tmpdir(), 'vq-redis-sentinel-')));
  try {
    const masterPort = await freePort();
    servers.start('master', ['--port', String(masterPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', servers.dir]);
    await servers.waitFor('master', masterPort, async (r) => (await r.ping()) === 'PONG');
    const sentinelPort = await freePort();
    // A Sentinel rewrites its configuration file, so it gets one of its own in the folder.
    const config = join(servers.dir, 'sentinel.conf');
    await writeFile(config, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${servers.dir}`, `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 1`, ''].join('\n'));
    servers.start('sentinel', [config, '--sentinel']);
    await servers.waitFor('sentinel', sentinelPort, async (r) => {
      const address = (await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as string[] | null;
      return address?.[1] === String(masterPort);
    });
    return { url: `redis+sentinel://127.0.0.1:${sentinelPort}/${MASTER_NAME}`, masterName: MASTER_NAME, masterPort, sentinelPort, stop: () => servers.stopAll() };
  } catch (err) {
    await servers.stopAll();
    throw err;
  }
}

/** The redis-server processes of one topology and their folder. */
class Servers {
  private readonly children = new Map<string, { args: string[]; child: ChildProcess; output: () => string; exited: Promise<void> }>();
  private stopping?: Promise<void>;

  constructor(readonly dir: string) {}

  start(name: string, args: string[]): void {
    const child = spawn('redis-server', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (text: string) => (output = (output + text).slice(-OUTPUT_TAIL_CHARS));
    child.stdout!.setEncoding('utf8').on('data', keep);
    child.stderr!.setEncoding('utf8').on('data', keep);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    void exited.then(() => process.removeListener('exit', killOnExit));
    this.children.set(name, { args, child, output: () => output, exited });
  }

  /** Starts every server again with its arguments. */
  restartAll(): void {
    for (const [name, { args }] of this.children) this.start(name, args);
  }

  /** Polls the server on `port` until `ready` holds; rejects with its output if it exits or takes too long. */
  async waitFor(name: string, port: number, ready: (redis: Redis) => Promise<boolean>): Promise<void> {
    const { child, output } = this.children.get(name)!;
    const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined);
    const deadline = Date.now() + START_TIMEOUT_MS;
    try {
      for (;;) {
        if (redis.status === 'wait' || redis.status === 'end') await redis.connect().catch(() => undefined);
        if (redis.status === 'ready' && (await ready(redis).catch(() => false))) return;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server ${name} on port ${port} did not get ready:\n${output()}`);
        await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
      }
    } finally {
      redis.disconnect();
    }
  }

  /** SIGTERM (then SIGKILL) to every server; the folder stays. */
  async stopProcesses(): Promise<void> {
    await Promise.all(
      [...this.children.values()].map(async ({ child, exited }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Stops every server, then the folder goes. Idempotent. */
  stopAll(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.stopProcesses();
      } finally {
        await rm(this.dir, { recursive: true, force: true });
      }
    })();
    return this.stopping;
  }
}
