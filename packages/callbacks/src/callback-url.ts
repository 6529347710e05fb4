import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { ErrorCode, VisionqError } from '@visionq/api';

/** Addresses a callback may never reach unless its host is listed in CALLBACK_ALLOWED_HOSTS. */
const PRIVATE = new BlockList();
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/**
 * Checks a callback URL the way it will be reached: `https:` (or `http:` to a host that
 * `allowedHosts` lists), no credentials in it, and, after DNS resolution, no loopback,
 * link-local, private, shared, multicast or unspecified address unless its host is listed.
 * So a callback can never be turned on the deployment's own network (SSRF).
 */
/** A callback URL as checked, with the address it resolved to: delivery connects there and nowhere else. */
export interface CheckedCallback {
  url: URL;
  /** Undefined for a listed host (connected to as named). */
  address?: { address: string; family: 4 | 6 };
}

export async function checkCallbackUrl(raw: string, allowedHosts: readonly string[], field = 'callback_url'): Promise<CheckedCallback> {
  const refuse = (why: string) => new VisionqError(ErrorCode.InvalidArgument, `${field}: ${why}`, [{ field, message: why }]);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('not a URL');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const listed = allowedHosts.includes(host);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && listed)) throw refuse('must be https (or http to a host in CALLBACK_ALLOWED_HOSTS)');
  if (url.username || url.password) throw refuse('must not carry credentials');
  if (listed) return { url };
  let addresses: { address: string; family: number }[];
  try {
    addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true, verbatim: true });
  } catch (err) {
    throw refuse(`host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  for (const { address, family } of addresses) {
    if (PRIVATE.check(address, family === 6 ? 'ipv6' : 'ipv4')) throw refuse(`host ${host} resolves to ${address}, a loopback, private or link-local address`);
  }
  // Pinned: a DNS answer that changes between this check and the connection (rebinding) is never used.
  return { url, address: { address: addresses[0]!.address, family: addresses[0]!.family === 6 ? 6 : 4 } };
}
