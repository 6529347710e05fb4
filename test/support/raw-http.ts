import { connect } from 'node:net';

export interface RawReply {
  /** 0 when the connection closed without a status line. */
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `request` (any bytes, well-formed or not) on a fresh connection to `port` and
 * reads until the server closes it (or `timeoutMs` passes, then gives up and closes).
 * What a client may send that fetch() would refuse to: broken framing, huge headers, a
 * body cut off, a connection dropped half-way (`hangUp`).
 */
export function rawRequest(port: number, request: Buffer | string, options: { hangUp?: boolean; timeoutMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), options.timeoutMs ?? 30_000);
    socket.on('data', (piece) => chunks.push(piece));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseReply(Buffer.concat(chunks).toString('utf8')));
    });
    socket.write(request, () => {
      if (options.hangUp) socket.resetAndDestroy();
    });
  });
}

function parseReply(text: string): RawReply {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  let body = end < 0 ? '' : text.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = unchunk(body);
  return { status, headers, body };
}

function unchunk(body: string): string {
  let out = '';
  for (let at = 0; ; ) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) return out;
    const size = parseInt(body.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/** A multipart body from parts `[name, value, filename?]`, framed by `boundary`; `cut` drops the closing boundary and the tail. */
export function multipart(boundary: string, parts: Array<[string, string | Buffer, string?]>, cut = false): Buffer {
  const pieces: Buffer[] = [];
  for (const [name, value, filename] of parts) {
    const disposition = `form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}`;
    pieces.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${filename === undefined ? '' : 'Content-Type: application/octet-stream\r\n'}\r\n`), Buffer.from(value), Buffer.from('\r\n'));
  }
  if (cut) return Buffer.concat(pieces).subarray(0, -2);
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(pieces);
}

/** A whole HTTP/1.1 request with `Connection: close` and a Content-Length (unless `headers` gives one). */
export function httpRequest(method: string, path: string, headers: Record<string, string>, body: Buffer | string = ''): Buffer {
  const bytes = Buffer.from(body);
  const all = { host: '127.0.0.1', connection: 'close', ...(headers['content-length'] === undefined && headers['transfer-encoding'] === undefined ? { 'content-length': String(bytes.length) } : {}), ...headers };
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), bytes]);
}
