import { createServer } from 'node:http';
import { freePort } from './moto-server';

/** One callback a receiver got: the task it was for (the URL's `task` query parameter), as sent, and what it answered. */
export interface Received {
  task: string;
  headers: Record<string, string>;
  body: string;
  answered: number;
}

/** A callback receiver on loopback: every POST kept in `received`; `answer` picks the status from how many that task got before. */
export async function startWebhookReceiver(answer: (task: string, earlier: number) => number = () => 200): Promise<{ url: string; received: Received[]; close(): void }> {
  const received: Received[] = [];
  const port = await freePort();
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (piece: string) => (body += piece));
    req.on('end', () => {
      const task = new URL(req.url!, 'http://x').searchParams.get('task') ?? '';
      const answered = answer(task, received.filter((r) => r.task === task).length);
      received.push({ task, headers: req.headers as Record<string, string>, body, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}/hook`, received, close: () => server.close() };
}
