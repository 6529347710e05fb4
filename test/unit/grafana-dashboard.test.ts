import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { GatewayMetrics, MetricsRegistry, WorkerMetrics } from '@visionq/observability';
import { GRAFANA_DIR, panelQueries, provisionedDatasources, readDashboard, substitute } from '../support/grafana-dashboard';
import { REPO_ROOT } from '../support/model-fixtures';

describe('deploy/grafana: the provisioned dashboard', () => {
  const dashboard = readDashboard();
  const [datasource] = provisionedDatasources();

  it('provisions one Prometheus datasource with a fixed uid, and the dashboards folder as a file provider', () => {
    expect(provisionedDatasources()).to.have.length(1);
    expect(datasource).to.include({ type: 'prometheus', url: 'http://prometheus:9090' });
    expect(datasource!.uid).to.match(/^[\w-]{1,40}$/);
    const { providers } = parse(readFileSync(join(GRAFANA_DIR, 'provisioning', 'dashboards', 'visionq.yml'), 'utf8'));
    expect(providers).to.have.length(1);
    expect(providers[0]).to.include({ type: 'file' });
    expect(providers[0].options.path).to.be.a('string');
  });

  it('is well formed: unique panel ids, every panel and query on the provisioned datasource, every target with an expr', () => {
    expect(dashboard.uid).to.equal('visionq');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size, `panel ids ${ids}`).to.equal(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.datasource, panel.title).to.deep.equal({ type: 'prometheus', uid: datasource!.uid });
      expect(panel.targets, panel.title).to.be.an('array').that.is.not.empty;
      const refIds = panel.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, `${panel.title}: refIds ${refIds}`).to.equal(refIds.length);
      for (const target of panel.targets!) {
        expect(target.expr, `${panel.title} / ${target.refId}`).to.be.a('string').and.match(/\S/);
        expect(target.datasource?.uid, `${panel.title} / ${target.refId}`).to.equal(datasource!.uid);
      }
    }
    for (const variable of dashboard.templating.list) expect(variable.datasource?.uid, `$${variable.name}`).to.equal(datasource!.uid);
  });

  it('lays its panels out on Grafana\'s 24 columns without overlaps', () => {
    const cells = new Map<string, string>();
    for (const { title, gridPos: g } of dashboard.panels) {
      expect(g.x + g.w, title).to.be.at.most(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.get(`${x},${y}`), `${title} overlaps`).to.equal(undefined);
          cells.set(`${x},${y}`, title);
        }
      }
    }
  });

  it('queries only series that visionq exports or that rules.yml records, with no variable left unknown', () => {
    const gateway = new GatewayMetrics(new MetricsRegistry(), { backlog: async () => ({}), liveWorkers: async () => ({ total: 0, byModel: {} }), pingRedis: async () => 'PONG' });
    const worker = new WorkerMetrics(new MetricsRegistry());
    const exported = new Set([...gateway.registry.getMetricsAsArray(), ...worker.registry.getMetricsAsArray()].map((m) => m.name));
    const recorded = new Set([...readFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'rules.yml'), 'utf8').matchAll(/- record: (\S+)/g)].map((m) => m[1]!));
    const queries = panelQueries(dashboard);
    const text = queries.map((q) => q.expr).join('\n');
    const series = new Set([...text.matchAll(/\b(visionq_[a-z_]+?)(?:_bucket|_sum|_count)?\b/g)].map((m) => m[1]!));
    const rules = new Set([...text.matchAll(/\b(visionq:[a-z0-9_:]+)/g)].map((m) => m[1]!));
    expect([...series].filter((name) => !exported.has(name))).to.deep.equal([]);
    expect([...rules].filter((name) => !recorded.has(name))).to.deep.equal([]);
    // The panels the operations issue asks for, each on its series.
    for (const name of ['visionq_http_request_duration_seconds', 'visionq_chunk_duration_seconds', 'visionq_inference_duration_seconds', 'visionq_queue_oldest_seconds', 'visionq_batch_fill_ratio', 'visionq_session_busy_seconds_total', 'visionq_image_errors_total', 'visionq_http_errors_total', 'visionq_model_workers_live', 'visionq_callbacks_total', 'visionq_redis_up']) {
      expect(series, name).to.include(name);
    }
    for (const name of ['visionq:images:rate1m', 'visionq:backlog_images']) expect(rules, name).to.include(name);
    const variables = { __rate_interval: '1m', ...Object.fromEntries(dashboard.templating.list.map((v) => [v.name, '.*'])) };
    for (const { name, expr } of queries) expect(() => substitute(expr, variables), name).to.not.throw();
    expect(() => substitute('rate(x[$__interval])', variables)).to.throw(/__interval/);
  });
});
