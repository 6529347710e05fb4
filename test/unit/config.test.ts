import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_VARIABLES, loadConfig } from '@visionq/config';
import { ConfigError, ErrorCode } from '@visionq/api';

describe('config', () => {
  it('runs everything on the embedded defaults', () => {
    const config = loadConfig({});
    expect(config.models).to.deep.equal({ dir: 'models', defaultModel: 'fashion-vgg', watch: true, reloadDebounceMs: 1000 });
    expect(config.inference.providers).to.deep.equal(['cpu']);
    expect(config.batching.maxBatchSize).to.equal(16);
  });

  it('parses lists and always keeps cpu as the last resort', () => {
    const config = loadConfig({ EXECUTION_PROVIDERS: 'TensorRT, cuda', PREFERRED_BATCH_SIZES: '4, 8', MAX_BATCH_SIZE: '8' });
    expect(config.inference.providers).to.deep.equal(['tensorrt', 'cuda', 'cpu']);
    expect(config.batching.preferredBatchSizes).to.deep.equal([4, 8]);
  });

  it('names every bad variable in one error', () => {
    let caught: unknown;
    try {
      loadConfig({ MAX_BATCH_SIZE: 'lots', EXECUTION_PROVIDERS: 'gpu', WARMUP: 'maybe' });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.code).to.equal(ErrorCode.ConfigInvalid);
    expect(error.details.map((d) => d.field)).to.have.members(['MAX_BATCH_SIZE', 'EXECUTION_PROVIDERS', 'WARMUP']);
  });

  it('refuses preferred batch sizes above the maximum', () => {
    expect(() => loadConfig({ MAX_BATCH_SIZE: '4', PREFERRED_BATCH_SIZES: '8' })).to.throw(ConfigError, /PREFERRED_BATCH_SIZES/);
  });

  it('parses the bench-only simulated device, and leaves it out of the documented variables', () => {
    expect(loadConfig({}).bench.simulatedDevice).to.equal(null);
    expect(loadConfig({ VISIONQ_BENCH_SIMULATED_DEVICE: '40' }).bench.simulatedDevice).to.deep.equal({ msPerBatch: 40, msPerImage: 0 });
    expect(loadConfig({ VISIONQ_BENCH_SIMULATED_DEVICE: '20+1.5' }).bench.simulatedDevice).to.deep.equal({ msPerBatch: 20, msPerImage: 1.5 });
    expect(() => loadConfig({ VISIONQ_BENCH_SIMULATED_DEVICE: 'fast' })).to.throw(ConfigError, /VISIONQ_BENCH_SIMULATED_DEVICE="fast" is invalid/);
    expect(CONFIG_VARIABLES.map((v) => v.name)).not.to.include('VISIONQ_BENCH_SIMULATED_DEVICE');
  });

  it('is documented in the README, every variable with its default', () => {
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
    for (const v of CONFIG_VARIABLES) {
      expect(readme, v.name).to.contain(`| \`${v.name}\` | \`${v.default === '' ? '(empty)' : v.default}\` |`);
    }
  });
});
