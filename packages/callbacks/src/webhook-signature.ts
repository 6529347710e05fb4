import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new secret in the Standard Webhooks form: `whsec_` and 24 random bytes, base64. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/**
 * The Standard Webhooks signature of one message: `v1,` and the base64 HMAC-SHA256, keyed
 * with the secret's bytes (the base64 after `whsec_`), of `<id>.<timestamp>.<body>`.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** Whether `header` (space-separated `v1,<sig>` entries) holds a valid signature of the message under `secret`. */
export function verifyWebhook(secret: string, id: string, timestamp: number, body: string, header: string): boolean {
  const expected = Buffer.from(signWebhook(secret, id, timestamp, body));
  return header.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
