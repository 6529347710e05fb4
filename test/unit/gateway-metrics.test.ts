import { expect } from 'chai';
import { GatewayMetrics, MetricsRegistry, type GatewaySources } from '@visionq/observability';

describe('GatewayMetrics: live workers per model', () => {
  const sources = (liveWorkers: GatewaySources['liveWorkers']): GatewaySources => ({ backlog: async () => ({}), liveWorkers, pingRedis: async () => 'PONG' });

  it('reports every model version, those no worker serves at 0, from one read of the heartbeats per scrape', async () => {
    let reads = 0;
    const metrics = new GatewayMetrics(
      new MetricsRegistry(),
      sources(async () => {
        reads++;
        return { total: 2, byModel: { 'fashion-vgg@1': 2, 'fashion-vgg@2': 1, 'vgg16@1': 0 } };
      }),
    );
    const text = await metrics.registry.metrics();
    expect(text).to.match(/^visionq_workers_live 2$/m);
    expect(text).to.match(/^visionq_model_workers_live\{model="fashion-vgg",version="1"\} 2$/m);
    expect(text).to.match(/^visionq_model_workers_live\{model="fashion-vgg",version="2"\} 1$/m);
    expect(text).to.match(/^visionq_model_workers_live\{model="vgg16",version="1"\} 0$/m);
    expect(reads).to.equal(1);
    // The next scrape reads again (the read is shared within one scrape only).
    await new Promise(setImmediate);
    await metrics.registry.metrics();
    expect(reads).to.equal(2);
  });

  it('reports no worker series while the heartbeats cannot be read (unknown, not zero), and a scrape still answers', async () => {
    let down = false;
    const metrics = new GatewayMetrics(new MetricsRegistry(), sources(async () => (down ? Promise.reject(new Error('Redis is down')) : { total: 1, byModel: { 'fashion-vgg@1': 1 } })));
    expect(await metrics.registry.metrics()).to.match(/^visionq_workers_live 1$/m);
    down = true;
    await new Promise(setImmediate);
    const text = await metrics.registry.metrics();
    expect(text).to.not.match(/^visionq_workers_live /m);
    expect(text).to.not.match(/^visionq_model_workers_live\{/m);
    expect(text).to.match(/^visionq_redis_up 1$/m);
  });
});
