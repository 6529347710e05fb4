import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '@visionq/config';
import { GRAFANA_DIR, provisionedDatasources } from '../support/grafana-dashboard';
import { REPO_ROOT } from '../support/model-fixtures';
import { NGINX_CONF, renderNginxConf, upstreamServers } from '../support/nginx-server';

type Service = {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  secrets?: string[];
  ports?: string[];
  deploy?: { replicas?: number };
  depends_on?: Record<string, unknown> | string[];
};

const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
};
const services = compose.services;

/** A service's bind mounts, `host path (from the repository root) → container path`. */
function mounts(service: Service): Map<string, string> {
  return new Map(
    (service.volumes ?? [])
      .filter((v) => v.startsWith('./'))
      .map((v) => {
        const [host, container] = v.split(':');
        return [container!, join(REPO_ROOT, host!)];
      }),
  );
}

/** Container ports a service publishes. */
const published = (service: Service) => (service.ports ?? []).map((p) => Number(p.split(':').at(-1)));

function run(command: string, args: string[], cwd?: string): { status: number | null; out: string } {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw new Error(`${command} cannot run (Debian's package; .ci/run installs it): ${result.error.message}`);
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

describe('docker-compose.yml: what can be checked without a Docker engine', () => {
  const prometheusConfig = parse(readFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'prometheus.compose.yml'), 'utf8'));
  const visionqServices = Object.entries(services).filter(([, s]) => s.build !== undefined);

  it('mounts only files of the repository, and takes as secrets only the files deploy/README.md has the user make (ignored by git)', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [container, host] of mounts(service)) expect(existsSync(host), `${name}: ${host} → ${container}`).to.equal(true);
      for (const volume of (service.volumes ?? []).filter((v) => !v.startsWith('./'))) expect(compose.volumes, `${name}: volume ${volume}`).to.have.property(volume.split(':')[0]!);
      for (const secret of service.secrets ?? []) expect(compose.secrets, `${name}: secret ${secret}`).to.have.property(secret);
    }
    const ignored = readFileSync(join(REPO_ROOT, '.gitignore'), 'utf8').split('\n');
    const readme = readFileSync(join(REPO_ROOT, 'deploy', 'README.md'), 'utf8');
    for (const { file } of Object.values(compose.secrets)) {
      expect(ignored, file).to.include(`/${posix.normalize(file)}`);
      expect(readme, file).to.include(posix.relative('deploy', file));
    }
  });

  it('sets only configuration variables visionq knows on its gateways and workers, and runs their npm scripts\' commands', () => {
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    const scripts = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    expect(visionqServices.map(([name]) => name).sort()).to.deep.equal(['gateway', 'worker', 'worker-gpu']);
    for (const [name, service] of visionqServices) {
      expect(Object.keys(service.environment!).filter((v) => !known.has(v)), name).to.deep.equal([]);
      expect(service.command!.join(' '), name).to.equal(scripts[name.startsWith('gateway') ? 'gateway' : 'worker']);
    }
  });

  it('runs two gateway replicas behind nginx, the only door to the API, on the port and upstream nginx.conf names', () => {
    const { gateway, nginx } = services;
    expect(gateway!.deploy?.replicas).to.equal(2);
    expect(gateway!.ports ?? [], 'gateway replicas cannot share a host port').to.deep.equal([]);
    const conf = readFileSync(NGINX_CONF, 'utf8');
    expect(mounts(nginx!).get('/etc/nginx/nginx.conf')).to.equal(NGINX_CONF);
    expect(published(nginx!)).to.deep.equal([Number(/^\s*listen\s+(\d+);/m.exec(conf)![1])]);
    expect(upstreamServers(conf)).to.deep.equal([`gateway:${gateway!.environment!.PORT}`]);
    expect(nginx!.depends_on).to.have.property('gateway');
  });

  it('has nginx.conf pass the real nginx\'s own check (nginx -t), upstreams on loopback', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vq-nginx-'));
    try {
      await writeFile(join(dir, 'nginx.conf'), renderNginxConf(['127.0.0.1:8080'], 8080, dir));
      const check = run('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')]);
      expect(check.status, check.out).to.equal(0);
      // The check can fail: nginx refuses a directive it does not know.
      await writeFile(join(dir, 'nginx.conf'), renderNginxConf(['127.0.0.1:8080'], 8080, dir).replace('proxy_buffering off;', 'proxy_buffering sometimes;'));
      expect(run('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')]).status).to.not.equal(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('has Prometheus scrape every gateway and worker service on their ports, with an admin key, and load the rules of deploy/prometheus', () => {
    const { prometheus } = services;
    const files = mounts(prometheus!);
    const configPath = /--config\.file=(\S+)/.exec(prometheus!.command!.join(' '))![1]!;
    expect(files.get(configPath)).to.equal(join(REPO_ROOT, 'deploy', 'prometheus', 'prometheus.compose.yml'));
    for (const rules of prometheusConfig.rule_files) expect(relative(join(REPO_ROOT, 'deploy', 'prometheus'), files.get(rules) ?? '(not mounted)'), rules).to.match(/^rules\.yml$/);
    const jobs = Object.fromEntries(prometheusConfig.scrape_configs.map((job: any) => [job.job_name, job]));
    const gatewayJob = jobs['visionq-gateway'].dns_sd_configs[0];
    expect(gatewayJob.names).to.deep.equal(['gateway']);
    expect(gatewayJob.port).to.equal(Number(services.gateway!.environment!.PORT));
    const credentials = jobs['visionq-gateway'].authorization.credentials_file as string;
    expect(prometheus!.secrets!.map((s) => `/run/secrets/${s}`)).to.include(credentials);
    const workerJob = jobs['visionq-worker'].dns_sd_configs[0];
    const workers = visionqServices.filter(([name]) => name.startsWith('worker'));
    expect(workerJob.names).to.deep.equal(workers.map(([name]) => name));
    for (const [name, service] of workers) expect(workerJob.port, name).to.equal(Number(service.environment!.WORKER_METRICS_PORT));
  });

  it('has a Prometheus config the real promtool accepts, as mounted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vq-prom-compose-'));
    try {
      // Container paths become paths in `dir`, holding what compose mounts there.
      const files = mounts(services.prometheus!);
      const config = readFileSync(files.get('/etc/prometheus/prometheus.yml')!, 'utf8')
        .replaceAll('/etc/prometheus/rules.yml', join(dir, 'rules.yml'))
        .replaceAll('/run/secrets/visionq_admin_key', join(dir, 'visionq_admin_key'));
      await writeFile(join(dir, 'prometheus.yml'), config);
      await writeFile(join(dir, 'rules.yml'), readFileSync(files.get('/etc/prometheus/rules.yml')!));
      await writeFile(join(dir, 'visionq_admin_key'), 'vq_example\n');
      const check = run('promtool', ['check', 'config', 'prometheus.yml'], dir);
      expect(check.status, check.out).to.equal(0);
      expect(check.out).to.match(/SUCCESS: 1 rule files found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('provisions Grafana with the dashboard folder where its provider reads, and a datasource on the Prometheus service', () => {
    const { grafana, prometheus } = services;
    const files = mounts(grafana!);
    expect(files.get('/etc/grafana/provisioning')).to.equal(join(GRAFANA_DIR, 'provisioning'));
    expect((grafana!.volumes ?? []).filter((v) => v.startsWith('./')).every((v) => v.endsWith(':ro')), 'read-only').to.equal(true);
    const provider = parse(readFileSync(join(GRAFANA_DIR, 'provisioning', 'dashboards', 'visionq.yml'), 'utf8')).providers[0];
    expect(files.get(provider.options.path)).to.equal(join(GRAFANA_DIR, 'dashboards'));
    const home = grafana!.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    expect(existsSync(join(files.get(posix.dirname(home))!, posix.basename(home))), home).to.equal(true);
    const url = new URL(provisionedDatasources()[0]!.url);
    expect(services).to.have.property(url.hostname);
    expect(url.hostname).to.equal('prometheus');
    expect(published(prometheus!)).to.include(Number(url.port));
    expect(grafana!.depends_on).to.deep.equal(['prometheus']);
  });
});
