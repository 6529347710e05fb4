import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster } from '../support/cluster';
import { panelQueries, readDashboard, substitute } from '../support/grafana-dashboard';
import { FASHION_DIR, REPO_ROOT } from '../support/model-fixtures';
import { freePort } from '../support/moto-server';
import { until } from '../support/promises';
import { startPrometheus, type PromSample, type PrometheusServer } from '../support/prometheus-server';
import { startWebhookReceiver } from '../support/webhook-receiver';

const BUCKET = 'visionq';
const WAIT_MS = 30_000;
/** The window Grafana's $__rate_interval stands for here: wide against 1 s scrapes, so a slow machine still has its samples in it. */
const RATE_INTERVAL = '1m';

/** Polls `probe` until it answers; fails after WAIT_MS. */
const eventually = <T>(what: string, probe: () => Promise<T | undefined>) => until(what, probe, WAIT_MS, 200);

const finite = (samples: PromSample[]) => samples.filter((s) => Number.isFinite(Number(s.value[1])));

describe('deploy/grafana: every dashboard query answers from a real Prometheus scraping a real gateway and worker', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let prometheus: PrometheusServer;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let callbackUrl: string;
  const dashboard = readDashboard();

  before(async () => {
    receiver = await startWebhookReceiver(() => 204);
    callbackUrl = receiver.url;
    const metricsPort = await freePort();
    cluster = await Cluster.start({
      bucket: BUCKET,
      workers: 1,
      env: { WORKER_METRICS_PORT: String(metricsPort), WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', CALLBACK_ALLOWED_HOSTS: '127.0.0.1' },
    });
    // The repository's job names and rules, every second.
    prometheus = await startPrometheus({
      intervalS: 1,
      ruleFiles: [join(REPO_ROOT, 'deploy', 'prometheus', 'rules.yml')],
      jobs: [
        { name: 'visionq-gateway', targets: [new URL(cluster.url).host] },
        { name: 'visionq-worker', targets: [`127.0.0.1:${metricsPort}`] },
      ],
    });
  });

  after(async () => {
    await prometheus?.stop();
    await cluster?.stop();
    receiver?.close();
  });

  /** A batch of `good` fashion images plus a truncated PNG and a missing object; resolves once the task has ended. */
  async function batch(round: number, good: number, extra: Record<string, unknown> = {}): Promise<any> {
    const files = (await readdir(FASHION_DIR)).filter((f) => f.endsWith('.png')).sort().slice(0, good);
    const images = [];
    for (const [i, file] of files.entries()) images.push(await cluster.putLocal(`round-${round}/${i}.png`, await readFile(join(FASHION_DIR, file))));
    const truncated = (await readFile(join(FASHION_DIR, files[0]!))).subarray(0, 100);
    images.push(await cluster.putLocal(`round-${round}/truncated.png`, truncated), `s3://${BUCKET}/round-${round}/missing.png`);
    const submitted = await cluster.request('POST', '/batch_predict', { images, top_k: 1, ...extra });
    expect(submitted.status, JSON.stringify(submitted.body)).to.equal(202);
    return cluster.waitForTask(submitted.body.task_id);
  }

  it('evaluates every panel query, with its variables substituted, to at least one series with a number', async () => {
    // Round one: good and bad images with a callback, a /predict, a malformed request.
    expect(await batch(1, 12, { callback_url: callbackUrl })).to.deep.include({ status: 'completed_with_errors', progress: { total: 14, done: 14, succeeded: 12, failed: 2 } });
    const predicted = await cluster.request('POST', '/predict', { image: `s3://${BUCKET}/round-1/0.png` });
    expect(predicted.status, JSON.stringify(predicted.body)).to.equal(200);
    expect((await cluster.request('POST', '/batch_predict', '{"images": [', { 'content-type': 'application/json' })).body.error.code).to.equal('invalid_request');
    await eventually('the callback delivered', async () => (receiver.received.length > 0 ? true : undefined));
    // Scraped: the worker's counts and the gateway's callback, so the second round's increments fall inside rate windows.
    await eventually('round one scraped', async () => {
      const images = await prometheus.query('sum(visionq_images_total)');
      const callbacks = await prometheus.query('visionq_callbacks_total{outcome="delivered"}');
      return Number(images[0]?.value[1]) >= 15 && callbacks.length > 0 ? true : undefined;
    });
    // Round two: rates, ratios and percentiles now have increments between two samples.
    await batch(2, 6);

    const variables: Record<string, string> = { __rate_interval: RATE_INTERVAL };
    for (const variable of dashboard.templating.list) {
      const [, metric, label] = /^label_values\((\w+),\s*(\w+)\)$/.exec(typeof variable.query === 'string' ? variable.query : variable.query.query) ?? [];
      expect(metric, `$${variable.name} is a label_values() query`).to.be.a('string');
      const values = await eventually(`values of $${variable.name}`, async () => {
        const found = await prometheus.labelValues(label!, metric!);
        return found.length > 0 ? found : undefined;
      });
      expect(values, `$${variable.name}`).to.deep.equal(['fashion-vgg']);
      variables[variable.name] = values[0]!;
    }

    const queries = panelQueries(dashboard);
    expect(queries.length).to.be.at.least(18);
    const answers = new Map<string, PromSample[]>();
    await eventually('every panel query answering', async () => {
      for (const { name, expr } of queries) {
        if (answers.has(name)) continue;
        const samples = await prometheus.query(substitute(expr, variables));
        if (finite(samples).length > 0) answers.set(name, samples);
      }
      const missing = queries.filter((q) => !answers.has(q.name)).map((q) => q.name);
      if (missing.length > 0) throw new Error(`no number yet from ${missing.join(', ')}`);
      return true;
    });

    // The series added for this dashboard say what happened.
    const labels = (name: string, label: string) => answers.get(name)!.map((s) => s.metric[label]).sort();
    expect(answers.get('Workers by model / A')!.map((s) => [s.metric.model, s.value[1]])).to.deep.equal([['fashion-vgg', '1']]);
    expect(labels('Errors by code / A', 'code')).to.include.members(['image_not_found', 'image_decode_failed']);
    expect(labels('Errors by code / B', 'code')).to.include('invalid_request');
    expect(labels('Callbacks / A', 'outcome')).to.include('delivered');
    expect(labels('Throughput / A', 'outcome')).to.deep.equal(['failed', 'succeeded']);
    expect(answers.get('Redis / A')![0]!.value[1]).to.equal('1');
  });
});
