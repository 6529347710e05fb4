import { expect } from 'chai';
import * as ort from 'onnxruntime-node';
import { ErrorCode, UnavailableError } from '@visionq/api';
import { writeNormalized, type PreprocessedImage } from '@visionq/imaging';
import { InferenceEngine, ModelRegistry, ModelSession, softmaxInPlace } from '@visionq/inference';
import { createLogger } from '@visionq/observability';
import { tempModelsDir, writeModel } from '../support/model-fixtures';

const logger = createLogger({ silent: true });
const cpu = { providers: ['cpu' as const] };

/** A deterministic 224×224 RGB image, different for every seed. */
function syntheticImage(seed: number): PreprocessedImage {
  const pixels = new Uint8Array(224 * 224 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * (seed + 3) + seed * 7919 + ((i >> 7) % 13) * seed) & 0xff;
  return { pixels, width: 224, height: 224 };
}

describe('inference engine (real onnxruntime)', function () {
  let models: { dir: string; cleanup: () => Promise<void> };
  let registry: ModelRegistry;
  let modelDir: string;

  before(async () => {
    models = await tempModelsDir();
    modelDir = await writeModel(models.dir);
    registry = await ModelRegistry.load(models.dir, cpu, { logger });
  });
  after(async () => {
    await registry.release();
    await models.cleanup();
  });

  it('batches many callers together and routes each its own result, equal to a direct run', async () => {
    const engine = new InferenceEngine(registry, { batching: { maxBatchSize: 8, maxQueueDelayMs: 20, preferredBatchSizes: [] }, warmup: true, logger });
    await engine.start();
    const images = Array.from({ length: 19 }, (_, i) => syntheticImage(i));
    const results = await Promise.all(images.map((image) => engine.classify('tiny-vgg', image, 10)));

    const model = registry.get('tiny-vgg');
    const direct = await ort.InferenceSession.create(`${modelDir}/model.onnx`);
    try {
      const input = new Float32Array(images.length * 3 * 224 * 224);
      images.forEach((image, i) => writeNormalized(image, model.spec, input, i * 3 * 224 * 224));
      const out = await direct.run({ input: new ort.Tensor('float32', input, [images.length, 3, 224, 224]) });
      const logits = out.logits!.data as Float32Array;
      images.forEach((_, i) => {
        const expected = softmaxInPlace(logits.slice(i * 10, (i + 1) * 10));
        const got = results[i]!;
        expect(got).to.have.length(10);
        for (const p of got) expect(p.probability).to.be.closeTo(expected[p.class_id]!, 1e-5);
        expect(got[0]!.class_id).to.equal(expected.indexOf(Math.max(...expected)));
      });
      // Different images get different answers: a mix-up between callers would show.
      expect(new Set(results.map((r) => r[0]!.probability.toFixed(6))).size).to.be.greaterThan(10);
    } finally {
      await direct.release();
      await engine.stop();
    }
  });

  it('refuses new images after stop() and finishes those already queued', async () => {
    const engine = new InferenceEngine(registry, { batching: { maxBatchSize: 4, maxQueueDelayMs: 1000, preferredBatchSizes: [] }, warmup: false, logger });
    const queued = engine.classify('tiny-vgg', syntheticImage(1), 3);
    await new Promise((resolve) => setImmediate(resolve));
    await engine.stop();
    expect(await queued).to.have.length(3);
    try {
      await engine.classify('tiny-vgg', syntheticImage(2), 3);
      expect.fail('accepted work after stop');
    } catch (err) {
      expect(err).to.be.instanceOf(UnavailableError);
    }
  });

  it('refuses an unknown model and a wrongly sized image', async () => {
    const engine = new InferenceEngine(registry, { batching: { maxBatchSize: 4, maxQueueDelayMs: 1, preferredBatchSizes: [] }, warmup: false, logger });
    try {
      await engine.classify('nope', syntheticImage(1), 3).then(() => expect.fail('classified'), (err) => expect(err.code).to.equal(ErrorCode.ModelNotFound));
      const small = { pixels: new Uint8Array(10 * 10 * 3), width: 10, height: 10 };
      await engine.classify('tiny-vgg', small, 3).then(() => expect.fail('classified'), (err) => expect(err.code).to.equal(ErrorCode.InvalidArgument));
    } finally {
      await engine.stop();
    }
  });
});

describe('model session thread', function () {
  let models: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    models = await tempModelsDir();
  });
  after(async () => {
    await models.cleanup();
  });

  it('keeps the event loop live during a long inference', async () => {
    const dir = await writeModel(models.dir, { depth: 11, widthDivisor: 4, numClasses: 10, seed: 3, name: 'busy-vgg' });
    const session = await ModelSession.create(`${dir}/model.onnx`, cpu);
    try {
      // Grow the batch until one run is long enough to tell a live loop from a blocked one, whatever the CPU.
      let run: { batch: number; elapsed: number; ticks: number; dims: readonly number[] };
      let batch = 4;
      do {
        batch *= 2;
        const input = new Float32Array(batch * 3 * 224 * 224).fill(0.5);
        let ticks = 0;
        const timer = setInterval(() => ticks++, 5);
        const started = performance.now();
        const output = await session.run('input', input, [batch, 3, 224, 224], 'logits');
        run = { batch, elapsed: performance.now() - started, ticks, dims: output.dims };
        clearInterval(timer);
      } while (run.elapsed < 100 && batch < 1024);
      expect(run.dims).to.deep.equal([run.batch, 10]);
      // A blocked loop would tick at most once; a live one about every 5 ms.
      expect(run.elapsed, 'inference too short to tell').to.be.greaterThan(100);
      expect(run.ticks).to.be.greaterThan(run.elapsed / 5 / 4);
    } finally {
      await session.release();
    }
  });

  it('fails pending runs with an unavailable error once released, and release is idempotent', async () => {
    const dir = await writeModel(models.dir);
    const session = await ModelSession.create(`${dir}/model.onnx`, cpu);
    const first = session.release();
    expect(session.release()).to.equal(first);
    await first;
    try {
      await session.run('input', new Float32Array(3 * 224 * 224), [1, 3, 224, 224], 'logits');
      expect.fail('ran after release');
    } catch (err) {
      expect(err).to.be.instanceOf(UnavailableError);
    }
  });

  it('released mid-run, fails that run, lets onnxruntime finish, and ends the thread', async () => {
    const dir = await writeModel(models.dir, { depth: 11, widthDivisor: 4, numClasses: 10, seed: 3, name: 'busy-vgg' });
    const session = await ModelSession.create(`${dir}/model.onnx`, cpu);
    const running = session.run('input', new Float32Array(16 * 3 * 224 * 224), [16, 3, 224, 224], 'logits');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const released = session.release();
    await running.then(
      () => expect.fail('a released session answered'),
      (err) => expect(err).to.be.instanceOf(UnavailableError).with.property('message', 'session released'),
    );
    await released;
    expect(session.alive).to.equal(false);
  });

  it('fails runs at once, not never, when its thread has died', async () => {
    const dir = await writeModel(models.dir);
    const session = await ModelSession.create(`${dir}/model.onnx`, cpu);
    await session.run('input', new Float32Array(3 * 224 * 224), [1, 3, 224, 224], 'logits');
    // What a dead thread looks like from outside: it exited (here between runs; ending it
    // from outside in the middle of native work would abort the test process itself).
    await (session as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    expect(session.alive).to.equal(false);
    await session.run('input', new Float32Array(3 * 224 * 224), [1, 3, 224, 224], 'logits').then(
      () => expect.fail('ran on a dead thread'),
      (err) => expect(err).to.be.instanceOf(UnavailableError).with.property('message').that.contains('exited'),
    );
    await session.release();
  });

  it('reports a failed run as inference_failed and keeps serving', async () => {
    const dir = await writeModel(models.dir);
    const session = await ModelSession.create(`${dir}/model.onnx`, cpu);
    try {
      await session.run('input', new Float32Array(3 * 100 * 100), [1, 3, 100, 100], 'logits').then(
        () => expect.fail('ran a wrongly shaped input'),
        (err) => expect(err.code).to.equal(ErrorCode.InferenceFailed),
      );
      const ok = await session.run('input', new Float32Array(3 * 224 * 224), [1, 3, 224, 224], 'logits');
      expect(ok.dims).to.deep.equal([1, 10]);
    } finally {
      await session.release();
    }
  });
});
