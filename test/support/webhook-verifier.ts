// The receiver's check of a visionq callback, exactly as the README shows it.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function verify(secret: string, headers: Record<string, string>, body: string, toleranceS = 300): boolean {
  const id = headers['webhook-id'], ts = Number(headers['webhook-timestamp']);
  if (!id || !Number.isFinite(ts) || Math.abs(Date.now() / 1000 - ts) > toleranceS) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = Buffer.from(`v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}`);
  return (headers['webhook-signature'] ?? '').split(' ').some((sig) => sig.length === expected.length && timingSafeEqual(Buffer.from(sig), expected));
}
