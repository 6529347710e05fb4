import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayMetrics, MetricsRegistry, WorkerMetrics } from '@visionq/observability';
import { REPO_ROOT } from '../support/model-fixtures';

const PROMETHEUS_DIR = join(REPO_ROOT, 'deploy', 'prometheus');

function promtool(cwd: string, ...args: string[]): { status: number | null; out: string } {
  const run = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (run.error) throw new Error(`promtool (Debian's prometheus package; .ci/run installs it) cannot run: ${run.error.message}`);
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

describe('deploy/prometheus with the real promtool', () => {
  it('uses only series that visionq exports', async () => {
    const gateway = new GatewayMetrics(new MetricsRegistry(), { backlog: async () => ({}), liveWorkers: async () => ({ total: 0, byModel: {} }), pingRedis: async () => 'PONG' });
    const worker = new WorkerMetrics(new MetricsRegistry());
    const exported = new Set([...gateway.registry.getMetricsAsArray(), ...worker.registry.getMetricsAsArray()].map((m) => m.name));
    const used = new Set([...readFileSync(join(PROMETHEUS_DIR, 'rules.yml'), 'utf8').matchAll(/\b(visionq_[a-z_]+?)(?:_bucket|_sum|_count)?\b/g)].map((m) => m[1]!));
    expect([...used].filter((name) => !exported.has(name))).to.deep.equal([]);
    expect(used.size).to.be.at.least(7);
  });

  it('has a valid scrape config', async () => {
    // As deployed: the admin key file beside the config (the repository keeps none).
    const dir = await mkdtemp(join(tmpdir(), 'vq-prom-'));
    try {
      await cp(PROMETHEUS_DIR, dir, { recursive: true });
      await writeFile(join(dir, 'visionq-admin-key'), 'vq_example\n');
      const check = promtool(dir, 'check', 'config', 'prometheus.yml');
      expect(check.status, check.out).to.equal(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('has valid recording and alert rules', () => {
    const check = promtool(PROMETHEUS_DIR, 'check', 'rules', 'rules.yml');
    expect(check.status, check.out).to.equal(0);
    expect(check.out).to.match(/SUCCESS: 10 rules found/);
  });

  it('fires every alert when it should and not before (promtool test rules)', () => {
    const test = promtool(PROMETHEUS_DIR, 'test', 'rules', 'rules.test.yml');
    expect(test.status, test.out).to.equal(0);
    expect(test.out).to.match(/SUCCESS/);
    // Every alert of rules.yml has its cases.
    const rules = readFileSync(join(PROMETHEUS_DIR, 'rules.yml'), 'utf8');
    const cases = readFileSync(join(PROMETHEUS_DIR, 'rules.test.yml'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
    expect(alerts).to.have.length(5);
    for (const alert of alerts) expect(cases, alert).to.include(`alertname: ${alert}`);
  });
});
