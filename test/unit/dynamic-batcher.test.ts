import { expect } from 'chai';
import { ErrorCode, UnavailableError, VisionqError } from '@visionq/api';
import { DynamicBatcher, type BatchHandler, type DynamicBatcherOptions } from '@visionq/inference';
import { rejection } from '../support/promises';

/** Long enough that a partial batch never leaves on its own during a test. */
const NEVER = 60_000;

interface Call<I, O> {
  items: I[];
  release(): void;
  fail(err: unknown): void;
  settle(outputs: O[]): void;
}

/** A handler that records each batch and settles only when the test says so. */
function manualHandler<I, O>(f: (item: I) => O) {
  const calls: Call<I, O>[] = [];
  const handler: BatchHandler<I, O> = (items) =>
    new Promise<O[]>((resolve, reject) => {
      calls.push({ items, release: () => resolve(items.map(f)), fail: reject, settle: resolve });
    });
  return { handler, calls, sizes: () => calls.map((c) => c.items.length) };
}

/** Lets queued microtasks and promise callbacks run. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (condition()) return;
    await sleep(1);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('DynamicBatcher', function () {
  this.timeout(5_000); // a broken batcher hangs; fail fast instead

  describe('options', () => {
    const handler: BatchHandler<number, number> = async (items) => items;
    const bad: [Partial<DynamicBatcherOptions>, ErrorConstructor, RegExp][] = [
      [{ maxBatchSize: 0 }, RangeError, /maxBatchSize/],
      [{ maxBatchSize: 2.5 }, RangeError, /maxBatchSize/],
      [{ maxBatchSize: '8' as unknown as number }, TypeError, /maxBatchSize/],
      [{}, TypeError, /maxBatchSize/],
      [{ maxBatchSize: 8, maxQueueDelayMs: -1 }, RangeError, /maxQueueDelayMs/],
      [{ maxBatchSize: 8, maxQueueDelayMs: Infinity }, RangeError, /maxQueueDelayMs/],
      [{ maxBatchSize: 8, preferredBatchSizes: [4, 9] }, RangeError, /preferredBatchSizes\[1\]/],
      [{ maxBatchSize: 8, preferredBatchSizes: [0] }, RangeError, /preferredBatchSizes\[0\]/],
      [{ maxBatchSize: 8, preferredBatchSizes: 4 as unknown as number[] }, TypeError, /preferredBatchSizes/],
      [{ maxBatchSize: 8, maxConcurrentBatches: 0 }, RangeError, /maxConcurrentBatches/],
      [{ maxBatchSize: 8, maxBatchesAhead: -1 }, RangeError, /maxBatchesAhead/],
      [{ maxBatchSize: 8, maxQueueSize: 0 }, RangeError, /maxQueueSize/],
      [{ maxBatchSize: 8, maxHoldMs: -1 }, RangeError, /maxHoldMs/],
      [{ maxBatchSize: 8, upcoming: 3 as unknown as () => number }, TypeError, /upcoming/],
    ];
    for (const [options, type, message] of bad) {
      it(`rejects ${JSON.stringify(options, (_, v) => (v === Infinity ? 'Infinity' : v))} naming the option`, () => {
        expect(() => new DynamicBatcher(handler, options as DynamicBatcherOptions)).to.throw(type, message);
      });
    }

    it('rejects a handler that is not a function', () => {
      expect(() => new DynamicBatcher(null as unknown as BatchHandler<number, number>, { maxBatchSize: 1 })).to.throw(TypeError, /handler/);
    });
  });

  it('sends a full batch at once, without waiting for the delay', async () => {
    const { handler, calls, sizes } = manualHandler((x: number) => x);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 4, maxQueueDelayMs: NEVER });
    const results = Array.from({ length: 10 }, (_, i) => batcher.enqueue(i));
    expect(sizes()).to.deep.equal([4]);
    expect(batcher.queued).to.equal(6);
    calls[0].release();
    await waitFor(() => calls.length === 2, 'the second batch');
    expect(sizes()).to.deep.equal([4, 4]);
    calls[1].release();
    await tick();
    expect(sizes()).to.deep.equal([4, 4], 'the last two wait for the delay');
    const stopped = batcher.stop();
    await waitFor(() => calls.length === 3, 'the flushed batch');
    calls[2].release();
    expect(await Promise.all(results)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await stopped;
  });

  it('sends a partial batch once the oldest item has waited maxQueueDelayMs, not before', async () => {
    const batches: { items: number[]; at: number }[] = [];
    const batcher = new DynamicBatcher<number, number>(async (items) => (batches.push({ items, at: performance.now() }), items), {
      maxBatchSize: 8,
      maxQueueDelayMs: 40,
    });
    const start = performance.now();
    const results = [batcher.enqueue(1), batcher.enqueue(2)];
    await Promise.resolve(); // the batcher has looked at the queue and chosen to wait
    expect(batcher.queued).to.equal(2);
    results.push(batcher.enqueue(3)); // joins the same batch: the deadline is the oldest item's
    expect(await Promise.all(results)).to.deep.equal([1, 2, 3]);
    expect(batches.map((b) => b.items)).to.deep.equal([[1, 2, 3]]);
    expect(batches[0].at - start).to.be.at.least(39); // never an upper bound
    await batcher.stop();
  });

  it('with no delay, sends what arrived in the same turn as one batch', async () => {
    const { handler, calls, sizes } = manualHandler((x: number) => x * 10);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 8 });
    const results = [1, 2, 3].map((x) => batcher.enqueue(x));
    await tick();
    expect(sizes()).to.deep.equal([3]);
    calls[0].release();
    expect(await Promise.all(results)).to.deep.equal([10, 20, 30]);
  });

  it('sends the largest preferred size at once and the rest after the delay', async () => {
    const { handler, calls, sizes } = manualHandler((x: number) => x);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 8, preferredBatchSizes: [2, 4], maxQueueDelayMs: 30 });
    const start = performance.now();
    const results = [1, 2, 3, 4, 5].map((x) => batcher.enqueue(x));
    await tick();
    expect(sizes()).to.deep.equal([4]);
    calls[0].release();
    await waitFor(() => calls.length === 2, 'the remainder');
    expect(performance.now() - start).to.be.at.least(29);
    expect(calls[1].items).to.deep.equal([5]);
    calls[1].release();
    expect(await Promise.all(results)).to.deep.equal([1, 2, 3, 4, 5]);
  });

  it('once the delay has expired while busy, sends everything waiting rather than a small preferred size', async () => {
    const { handler, calls, sizes } = manualHandler((x: number) => x);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 8, preferredBatchSizes: [2], maxQueueDelayMs: 10 });
    const results = [1, 2].map((x) => batcher.enqueue(x));
    await tick();
    expect(sizes()).to.deep.equal([2]);
    results.push(...[3, 4, 5, 6, 7].map((x) => batcher.enqueue(x)));
    await sleep(25); // past the delay while the only slot is busy
    expect(sizes()).to.deep.equal([2]);
    calls[0].release();
    await waitFor(() => calls.length === 2, 'the second batch');
    expect(calls[1].items).to.deep.equal([3, 4, 5, 6, 7]);
    calls[1].release();
    expect(await Promise.all(results)).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
  });

  it('batches callers from different tasks together and routes each output to its caller', async () => {
    const batches: string[][] = [];
    const batcher = new DynamicBatcher<string, string>(async (items) => (batches.push(items), items.map((s) => s.toUpperCase())), {
      maxBatchSize: 12,
      maxQueueDelayMs: NEVER,
    });
    const task = async (name: string, turns: number) => {
      for (let i = 0; i < turns; i++) await tick(); // each task enqueues in its own turn
      return Promise.all([1, 2, 3].map((n) => batcher.enqueue(`${name}-${n}`)));
    };
    const outputs = await Promise.all([task('a', 0), task('b', 1), task('c', 2), task('d', 3)]);
    expect(batches).to.have.length(1);
    expect(batches[0]).to.have.length(12);
    expect(outputs).to.deep.equal(['A', 'B', 'C', 'D'].map((name) => [1, 2, 3].map((n) => `${name}-${n}`)));
    await batcher.stop();
  });

  it('keeps arrival order across batches and concurrent slots', async () => {
    const batches: number[][] = [];
    const batcher = new DynamicBatcher<number, number>(
      async (items) => {
        batches.push(items);
        await sleep(items[0] % 3); // batches finish out of order
        return items.map((x) => x * x);
      },
      { maxBatchSize: 4, maxConcurrentBatches: 2, maxQueueDelayMs: 5 },
    );
    const inputs = Array.from({ length: 23 }, (_, i) => i);
    const outputs = await Promise.all(inputs.map((x) => batcher.enqueue(x)));
    expect(outputs).to.deep.equal(inputs.map((x) => x * x));
    expect(batches.flat()).to.deep.equal(inputs);
    expect(Math.max(...batches.map((b) => b.length))).to.equal(4);
    await batcher.stop();
  });

  it('sends urgent items ahead of waiting normal ones, in their own arrival order', async () => {
    const { handler, calls } = manualHandler((x: number) => x);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 2, maxQueueDelayMs: NEVER });
    const results = [batcher.enqueue(1), batcher.enqueue(2), batcher.enqueue(3), batcher.enqueue(4), batcher.enqueue(5)];
    results.push(batcher.enqueue(100, { urgent: true }), batcher.enqueue(101, { urgent: true }));
    expect(calls[0].items).to.deep.equal([1, 2]); // already running
    calls[0].release();
    await waitFor(() => calls.length === 2, 'the second batch');
    expect(calls[1].items).to.deep.equal([100, 101]);
    calls[1].release();
    await waitFor(() => calls.length === 3, 'the third batch');
    expect(calls[2].items).to.deep.equal([3, 4]);
    calls[2].release();
    const stopped = batcher.stop(); // flushes the lone 5 at once
    await waitFor(() => calls.length === 4, 'the last batch');
    expect(calls[3].items).to.deep.equal([5]);
    calls[3].release();
    await stopped;
    expect(await Promise.all(results)).to.deep.equal([1, 2, 3, 4, 5, 100, 101]);
  });

  it('holds a partial batch past its delay while the caller still prepares items, up to maxHoldMs', async () => {
    const { handler, calls, sizes } = manualHandler((x: number) => x);
    let upcoming = 3;
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 4, maxQueueDelayMs: 1, maxHoldMs: 10_000, upcoming: () => upcoming });
    const results = [batcher.enqueue(1)];
    await sleep(20);
    expect(calls).to.have.length(0); // held: three more are on their way
    results.push(batcher.enqueue(2), batcher.enqueue(3));
    upcoming = 0; // the last one failed to decode: it will never come
    await waitFor(() => calls.length === 1, 'the held batch');
    expect(sizes()).to.deep.equal([3]);
    calls[0].release();
    expect(await Promise.all(results)).to.deep.equal([1, 2, 3]);
  });

  it('holds no longer than maxHoldMs, and never with an urgent item waiting', async () => {
    const { handler, calls, sizes } = manualHandler((x: number) => x);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 4, maxQueueDelayMs: 1, maxHoldMs: 30, upcoming: () => 5 });
    const started = performance.now();
    const first = batcher.enqueue(1);
    await waitFor(() => calls.length === 1, 'the batch after the hold');
    expect(performance.now() - started).to.be.at.least(25);
    calls[0].release();
    await first;
    const urgent = batcher.enqueue(2, { urgent: true });
    await waitFor(() => calls.length === 2, 'the urgent batch');
    expect(sizes()).to.deep.equal([1, 1]);
    calls[1].release();
    await urgent;
  });

  it('runs at most maxConcurrentBatches batches at once', async () => {
    const { handler, calls, sizes } = manualHandler((x: number) => x);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 2, maxConcurrentBatches: 2, maxQueueDelayMs: NEVER });
    const results = [1, 2, 3, 4, 5, 6].map((x) => batcher.enqueue(x));
    expect(sizes()).to.deep.equal([2, 2]);
    expect(batcher.queued).to.equal(2);
    calls[1].release();
    await waitFor(() => calls.length === 3, 'the third batch');
    expect(calls[2].items).to.deep.equal([5, 6]);
    calls[0].release();
    calls[2].release();
    expect(await Promise.all(results)).to.deep.equal([1, 2, 3, 4, 5, 6]);
  });

  it('sends full batches ahead while one runs, never partial ones', async () => {
    const { handler, calls, sizes } = manualHandler((x: number) => x * 10);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 3, maxBatchesAhead: 1, maxQueueDelayMs: 20 });
    const first = batcher.enqueue(1);
    await tick();
    expect(sizes(), 'a partial batch goes once the slot is free and its delay is over').to.deep.equal([]);
    await waitFor(() => calls.length === 1, 'the first batch');
    const rest = [2, 3, 4, 5, 6, 7, 8].map((x) => batcher.enqueue(x));
    // While [1] runs: [2,3,4] is full and goes ahead; [5,6,7] would be a second one ahead: it waits.
    expect(sizes()).to.deep.equal([1, 3]);
    await sleep(40);
    expect(sizes(), 'the partial [8] waits while the model is busy, whatever its delay').to.deep.equal([1, 3]);
    calls[0].release();
    await waitFor(() => calls.length === 3, 'the next full batch');
    expect(calls[2].items).to.deep.equal([5, 6, 7]);
    calls[1].release();
    await sleep(5);
    expect(sizes(), '[5,6,7] still runs: [8] keeps waiting').to.deep.equal([1, 3, 3]);
    calls[2].release();
    await waitFor(() => calls.length === 4, 'the partial batch');
    expect(calls[3].items).to.deep.equal([8]);
    calls[3].release();
    expect(await Promise.all([first, ...rest])).to.deep.equal([10, 20, 30, 40, 50, 60, 70, 80]);
  });

  it('rejects only the failing batch with the handler error, and goes on', async () => {
    const boom = new Error('boom');
    const batcher = new DynamicBatcher<string, string>(
      (items) => {
        if (items.includes('sync')) throw boom;
        return items.includes('bad') ? Promise.reject(boom) : Promise.resolve(items);
      },
      { maxBatchSize: 2 },
    );
    const results = ['a', 'bad', 'c', 'd', 'sync', 'f'].map((x) => batcher.enqueue(x));
    const settled = await Promise.allSettled(results);
    expect(settled.map((s) => s.status)).to.deep.equal(['rejected', 'rejected', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    for (const i of [0, 1, 4, 5]) expect((settled[i] as PromiseRejectedResult).reason).to.equal(boom);
    expect(await batcher.enqueue('later')).to.equal('later');
    await batcher.stop();
  });

  it('rejects a batch whose handler returns the wrong number of outputs', async () => {
    const batcher = new DynamicBatcher<number, number>(async (items) => items.slice(1), { maxBatchSize: 3 });
    const errors = await Promise.all([1, 2, 3].map((x) => rejection(batcher.enqueue(x))));
    for (const err of errors) {
      expect(err).to.be.instanceOf(VisionqError);
      expect((err as VisionqError).code).to.equal(ErrorCode.Internal);
      expect((err as Error).message).to.match(/2 outputs for 3 inputs/);
    }
    const notArray = new DynamicBatcher<number, number>(async () => undefined as unknown as number[], { maxBatchSize: 1 });
    expect(await rejection(notArray.enqueue(1))).to.be.instanceOf(VisionqError);
  });

  it('refuses items beyond maxQueueSize with UnavailableError and counts queued and in-flight items', async () => {
    const { handler, calls } = manualHandler((x: number) => x);
    const batcher = new DynamicBatcher(handler, { maxBatchSize: 2, maxQueueSize: 3, maxQueueDelayMs: NEVER });
    expect([batcher.queued, batcher.inFlight]).to.deep.equal([0, 0]);
    const running = [1, 2].map((x) => batcher.enqueue(x));
    expect([batcher.queued, batcher.inFlight]).to.deep.equal([0, 2]);
    const waiting = [3, 4, 5].map((x) => batcher.enqueue(x));
    expect([batcher.queued, batcher.inFlight]).to.deep.equal([3, 5]);
    const refused = await rejection(batcher.enqueue(6));
    expect(refused).to.be.instanceOf(UnavailableError);
    expect((refused as UnavailableError).code).to.equal(ErrorCode.Unavailable);
    expect([batcher.queued, batcher.inFlight]).to.deep.equal([3, 5]);

    calls[0].release();
    expect(await Promise.all(running)).to.deep.equal([1, 2]);
    await tick();
    expect([batcher.queued, batcher.inFlight]).to.deep.equal([1, 3]);
    const accepted = batcher.enqueue(7);
    expect(batcher.queued).to.equal(2);
    const stopped = batcher.stop();
    calls[1].release();
    await waitFor(() => calls.length === 3, 'the flushed batch');
    calls[2].release();
    expect(await Promise.all([...waiting, accepted])).to.deep.equal([3, 4, 5, 7]);
    await stopped;
    expect([batcher.queued, batcher.inFlight]).to.deep.equal([0, 0]);
  });

  describe('stop()', () => {
    it('refuses new items, runs queued ones without waiting for the delay, and resolves when all settled', async () => {
      const { handler, calls, sizes } = manualHandler((x: number) => -x);
      const batcher = new DynamicBatcher(handler, { maxBatchSize: 4, preferredBatchSizes: [2], maxQueueDelayMs: NEVER });
      const results = [1, 2, 3].map((x) => batcher.enqueue(x));
      await tick();
      expect(sizes()).to.deep.equal([2]);

      let stopped = false;
      const stopping = batcher.stop().then(() => (stopped = true));
      const refused = await rejection(batcher.enqueue(9));
      expect(refused).to.be.instanceOf(UnavailableError);
      expect((refused as Error).message).to.match(/batcher stopped/);

      calls[0].release();
      await waitFor(() => calls.length === 2, 'the flushed batch');
      expect(calls[1].items).to.deep.equal([3]);
      await tick();
      expect(stopped).to.equal(false, 'an item is still running');
      calls[1].release();
      await stopping;
      expect(await Promise.all(results)).to.deep.equal([-1, -2, -3]);
    });

    it('is idempotent and resolves at once when idle', async () => {
      const batcher = new DynamicBatcher<number, number>(async (items) => items, { maxBatchSize: 4 });
      const first = batcher.stop();
      expect(batcher.stop()).to.equal(first);
      await first;
    });

    it('resolves even when the flushed batch fails', async () => {
      const batcher = new DynamicBatcher<number, number>(async () => Promise.reject(new Error('down')), {
        maxBatchSize: 4,
        maxQueueDelayMs: NEVER,
      });
      const result = rejection(batcher.enqueue(1));
      await batcher.stop();
      expect(await result).to.have.property('message', 'down');
    });
  });
});
