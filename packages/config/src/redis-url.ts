/** A host and port of a Redis Cluster node or a Sentinel. */
export interface RedisNode {
  host: string;
  port: number;
}

/** Where REDIS_URL points: one server, a Redis Cluster, or a master found through Sentinels. */
export type RedisTarget =
  | { kind: 'server'; url: string }
  | { kind: 'cluster'; nodes: RedisNode[]; username?: string; password?: string }
  /** `username`/`password` authenticate to the master, not to the Sentinels. */
  | { kind: 'sentinel'; sentinels: RedisNode[]; masterName: string; db: number; username?: string; password?: string };

export const REDIS_URL_FORMS =
  'redis://[user:pass@]host:port[/db], rediss://… (TLS), redis+cluster://[user:pass@]host:port[,host:port…] or redis+sentinel://[user:pass@]host:port[,host:port…]/master-name[/db]';

const MULTI_HOST = /^(redis\+cluster|redis\+sentinel):\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?$/;
const NODE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/;

/**
 * Reads REDIS_URL. A plain `redis://`/`rediss://` URL is ioredis's own form and is passed on
 * as it is; the two multi-host forms list their seeds comma-separated, since a Cluster or a
 * set of Sentinels is reached through any of several addresses. Throws one line naming the
 * problem and the accepted forms.
 */
export function parseRedisUrl(url: string): RedisTarget {
  if (/^rediss?:\/\/[^/]/.test(url)) return { kind: 'server', url };
  const match = MULTI_HOST.exec(url);
  if (!match) throw new Error(`expected one of ${REDIS_URL_FORMS}`);
  const [, scheme, userinfo, hosts, path = ''] = match as unknown as [string, string, string | undefined, string, string | undefined];
  const credentials = parseUserinfo(userinfo);
  if (scheme === 'redis+cluster') {
    // A Cluster has one database; a path would be silently ignored by ioredis.
    if (path !== '' && path !== '/') throw new Error(`a Redis Cluster has no database or master name: drop "${path}"`);
    return { kind: 'cluster', nodes: parseNodes(hosts, 6379), ...credentials };
  }
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.length === 0 || segments.length > 2) throw new Error('a Sentinel URL ends with /master-name or /master-name/db');
  const [masterName, db = '0'] = segments as [string, string | undefined];
  if (!/^\d+$/.test(db)) throw new Error(`database "${db}" is not a number`);
  return { kind: 'sentinel', sentinels: parseNodes(hosts, 26379), masterName: decodeURIComponent(masterName), db: Number(db), ...credentials };
}

function parseNodes(hosts: string, defaultPort: number): RedisNode[] {
  return hosts.split(',').map((node) => {
    const match = NODE.exec(node.trim());
    if (!match) throw new Error(`"${node}" is not host:port`);
    const port = match[2] === undefined ? defaultPort : Number(match[2]);
    if (port < 1 || port > 65535) throw new Error(`port ${port} of "${node}" is out of range`);
    return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  });
}

function parseUserinfo(userinfo: string | undefined): { username?: string; password?: string } {
  if (!userinfo) return {};
  // As in any URL: `user@`, `user:pass@`, or `:pass@` for Redis's default user.
  const colon = userinfo.indexOf(':');
  const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const password = colon < 0 ? '' : decodeURIComponent(userinfo.slice(colon + 1));
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}
