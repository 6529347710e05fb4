import { createServer, STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Express } from 'express';
import { ErrorCode, errorBody, httpStatusOf, VisionqError } from '@visionq/api';
import type { Config } from '@visionq/config';
import type { GatewayMetrics, Logger } from '@visionq/observability';

/**
 * The gateway's HTTP server: bounded in time at every stage of a request (headers, the
 * whole body, an idle keep-alive), and Node's own refusals (malformed framing, headers too
 * large, a request too slow) answered with the DESIGN.md error body, not an empty one.
 */
export function createHttpServer(app: Express, limits: Pick<Config['server'], 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'>, logger: Logger, metrics: GatewayMetrics): Server {
  const server = createServer(
    {
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often Node looks for connections past those limits; its default is 30 s.
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 2))),
    },
    app,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const refusal = clientRefusal(err);
    // Node's own handling looks at the response in flight on the socket the same way.
    const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (!refusal || !socket.writable || pending?.headersSent) {
      socket.destroy();
      return;
    }
    logger.debug('request refused by the HTTP parser', { code: err.code, error: err.message });
    const status = httpStatusOf(refusal.code);
    const body = JSON.stringify(errorBody(refusal));
    metrics.errors.inc({ code: refusal.code });
    if (pending) {
      // The request broke off (timed out, or its client half-closed) while its route still
      // reads it: answer on its response, then end the request itself, so the route's
      // reading fails and cleans up (a finished response alone would leave it waiting).
      pending.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body, () => {
        pending.req.destroy(refusal);
        socket.destroy();
      });
      return;
    }
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}

/** What Node's parser refused, in DESIGN.md's words; undefined for a connection that is simply gone. */
function clientRefusal(err: NodeJS.ErrnoException): VisionqError | undefined {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return undefined;
  if (err.code === 'HPE_HEADER_OVERFLOW') return new VisionqError(ErrorCode.HeadersTooLarge, 'the request headers are too large');
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new VisionqError(ErrorCode.RequestTimeout, 'the request did not arrive in time (HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS)');
  return new VisionqError(ErrorCode.InvalidRequest, `malformed HTTP request (${err.code ?? 'parse error'})`);
}
