import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { CheckedCallback } from './callback-url';

/**
 * POSTs `body` to a checked callback and resolves to the receiver's status. The connection
 * goes to the address the check resolved (TLS still verifies the URL's host name), so the
 * host cannot be re-pointed at an internal address after its check. Redirects are not followed.
 */
export function postWebhook(target: CheckedCallback, headers: Record<string, string>, body: string, timeoutMs: number): Promise<number> {
  const { url, address } = target;
  const lookup: LookupFunction | undefined = address
    ? (_host, options, callback) => {
        if ((options as { all?: boolean }).all) (callback as (err: null, addresses: { address: string; family: number }[]) => void)(null, [address]);
        else callback(null, address.address, address.family);
      }
    : undefined;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, lookup, timeout: timeoutMs }, (res: IncomingMessage) => {
      res.resume(); // the answer's body is not read: only its status counts
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within CALLBACK_TIMEOUT_MS=${timeoutMs}`)));
    req.on('error', reject);
    req.end(body);
  });
}
