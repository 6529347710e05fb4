import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './model-fixtures';
import { freePort } from './moto-server';
import { startServerProcess, untilAnswers } from './server-process';

export const NGINX_CONF = join(REPO_ROOT, 'deploy', 'nginx', 'nginx.conf');

/** deploy/nginx/nginx.conf's upstream servers, as `host:port`. */
export function upstreamServers(conf = readFileSync(NGINX_CONF, 'utf8')): string[] {
  const block = /upstream visionq_gateways \{([^}]*)\}/.exec(conf)?.[1] ?? '';
  return [...block.matchAll(/^\s*server\s+(\S+?)[\s;]/gm)].map((m) => m[1]!);
}

/**
 * deploy/nginx/nginx.conf for this host: the upstream servers replaced by `gateways`
 * (compose's service names resolve only inside compose), listening on `port`, its pid
 * file and access log (`access.log`) in `dir`.
 */
export function renderNginxConf(gateways: string[], port: number, dir: string): string {
  const conf = readFileSync(NGINX_CONF, 'utf8');
  return conf
    .replace(/^(\s*)server\s+\S+?(\s[^;]*)?;\n/m, (_line, indent: string, params = '') => gateways.map((g) => `${indent}server ${g}${params};\n`).join(''))
    .replace(/^(\s*)listen\s+\d+;/m, `$1listen 127.0.0.1:${port};`)
    .replace(/^pid\s+\S+;/m, `pid ${join(dir, 'nginx.pid')};`)
    .replace(/^(\s*)access_log\s+\/dev\/stdout(\s)/m, `$1access_log ${join(dir, 'access.log')}$2`);
}

/** The real nginx (Debian's package) running deploy/nginx/nginx.conf on a loopback port, in a folder of its own. */
export interface NginxServer {
  url: string;
  /** The access log's lines so far (the JSON of nginx.conf's `log_format visionq`). */
  accessLog(): Promise<Array<Record<string, unknown>>>;
  /** Stops nginx and removes its folder; resolves once both are gone. Idempotent. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 5_000;

/** Starts nginx in front of `gateways` (`host:port` each) and waits until it answers its health route. */
export async function startNginx(gateways: string[]): Promise<NginxServer> {
  const dir = await mkdtemp(join(tmpdir(), 'vq-nginx-'));
  const port = await freePort();
  await writeFile(join(dir, 'nginx.conf'), renderNginxConf(gateways, port, dir));
  // SIGTERM is nginx's fast shutdown (SIGQUIT would wait for open streams to end).
  const program = startServerProcess('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    installHint: "Debian's nginx package; .ci/run installs it",
    graceMs: STOP_GRACE_MS,
    cleanUp: () => rm(dir, { recursive: true, force: true }),
  });
  const url = `http://127.0.0.1:${port}`;
  const server: NginxServer = {
    url,
    accessLog: async () =>
      (await readFile(join(dir, 'access.log'), 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: program.stop,
  };
  await untilAnswers(program, `nginx on port ${port}`, `${url}/nginx-healthz`);
  return server;
}
