import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { MetricsRegistry } from './metrics';

/** `GET /metrics` for Prometheus on `port`: a worker has no other HTTP surface. */
export async function serveMetrics(registry: MetricsRegistry, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
    );
  });
  server.listen(port);
  await once(server, 'listening');
  return server;
}
