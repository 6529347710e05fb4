import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { S3ObjectStore } from '@visionq/object-store';

/** A moto S3 server of its own, on a loopback port. */
export interface MotoServer {
  endpoint: string;
  /** Stops the server; resolves once its process is gone. Idempotent. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 100;
/** Time SIGTERM gets before SIGKILL. */
const STOP_GRACE_MS = 2_000;
/** moto's stderr kept for error messages (it logs every request there). */
const STDERR_TAIL_CHARS = 8_000;

const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const REGION = 'us-east-1';

/**
 * Starts `python3 -m moto.server` on a free loopback port and waits until it answers.
 * Rejects within START_TIMEOUT_MS, with moto's stderr, if it does not. The process is also
 * killed when this Node process exits without calling stop().
 */
export async function startMotoServer(): Promise<MotoServer> {
  const port = await freePort();
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL_CHARS);
  });
  let ended: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = `exited (code ${code}, signal ${signal})`;
      resolve();
    });
    child.once('error', (err) => {
      ended = `could not start: ${err.message}`;
      resolve(); // A process that never started has no exit to wait for.
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (ended) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    })());

  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (ended) break;
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) return { endpoint, stop };
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  await stop();
  const why = ended ?? `did not answer within ${START_TIMEOUT_MS} ms`;
  throw new Error(`moto server on port ${port} ${why}; is moto[server] installed for python3?\nstderr:\n${stderr}`);
}

/** An S3ObjectStore on the server; the caller closes it. */
export function motoStore(server: MotoServer): S3ObjectStore {
  return new S3ObjectStore({ endpoint: server.endpoint, region: REGION, forcePathStyle: true, credentials: CREDENTIALS });
}

export async function createBucket(server: MotoServer, bucket: string): Promise<void> {
  const client = motoClient(server);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

/** A raw SDK client on the server, for what the store does not expose; the caller destroys it. */
export function motoClient(server: MotoServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A loopback port nothing listens on (at the moment of asking). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
