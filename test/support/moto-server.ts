import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { createServer } from 'node:net';
import { S3ObjectStore } from '@visionq/object-store';
import { startServerProcess, untilAnswers } from './server-process';

/** A moto S3 server of its own, on a loopback port. */
export interface MotoServer {
  endpoint: string;
  /** Stops the server; resolves once its process is gone. Idempotent. */
  stop(): Promise<void>;
}


const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const REGION = 'us-east-1';

/**
 * Starts `python3 -m moto.server` on a free loopback port and waits until it answers.
 * Rejects within START_TIMEOUT_MS, with moto's stderr, if it does not. The process is also
 * killed when this Node process exits without calling stop().
 */
export async function startMotoServer(): Promise<MotoServer> {
  const port = await freePort();
  const server = startServerProcess('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { installHint: 'is moto[server] installed for python3?' });
  const endpoint = `http://127.0.0.1:${port}`;
  await untilAnswers(server, `moto server on port ${port}`, `${endpoint}/moto-api/`);
  return { endpoint, stop: server.stop };
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
