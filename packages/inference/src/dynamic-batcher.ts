import { ErrorCode, UnavailableError, VisionqError } from '@visionq/api';

/**
 * Groups single items into batches for one handler, after Triton's dynamic batch scheduler.
 *
 * Contract:
 * - Model-agnostic: the batcher never looks inside items. The engine keeps one batcher per
 *   model (one handler per session), so a batch never mixes models.
 * - The handler is called with 1..maxBatchSize items, at most maxConcurrentBatches calls at
 *   once, and must return exactly one output per input, in order. Items leave in arrival
 *   order and each caller receives the output at its own index.
 * - A batch is sent when a slot is free and (a) maxBatchSize items wait, or (b) the oldest
 *   item has waited maxQueueDelayMs (or stop() was called): min(queued, maxBatchSize) go, or
 *   (c) a preferred size can be formed: the largest preferred size <= queued goes.
 *   Items enqueued in the same turn of the event loop are considered together.
 *   With maxBatchesAhead, full batches (only) may also go while all slots are busy.
 * - A handler error rejects every item of that batch with that error, nothing else.
 * - After stop(), enqueue rejects with UnavailableError; queued items still run, at once.
 * - Urgent items (interactive requests) queue ahead of every normal item, behind earlier
 *   urgent ones; they never make a waiting item's deadline later.
 * - With `upcoming` and `maxHoldMs`: when (b) would send a partial batch but the caller is
 *   still preparing items for it, the batch waits for them up to maxHoldMs more, unless
 *   an urgent item waits. An idle model then starts a task with a full batch instead of
 *   a batch of one image that costs nearly a full batch's time.
 */
export interface DynamicBatcherOptions {
  /** Largest batch handed to the handler. Required, an integer >= 1. */
  maxBatchSize: number;
  /** Longest the oldest queued item waits for its batch to fill, in ms. Default 0 (take what is there). */
  maxQueueDelayMs?: number;
  /** Batch sizes sent as soon as they can be formed, each 1..maxBatchSize. Default [] (only maxBatchSize). */
  preferredBatchSizes?: number[];
  /** Handler calls running at once; 1 for one inference session. Default 1. */
  maxConcurrentBatches?: number;
  /**
   * Full batches handed to the handler ahead, beyond maxConcurrentBatches, so that under
   * load the model starts its next batch the moment one ends instead of waiting for a
   * round trip through this thread. Partial batches are never sent ahead: while the
   * model is busy they keep waiting to fill. Default 0.
   */
  maxBatchesAhead?: number;
  /** Items waiting (not yet in a batch) beyond which enqueue rejects with UnavailableError. Default Infinity. */
  maxQueueSize?: number;
  /** Items the caller is preparing that will be enqueued soon (fetched, decoding). Default: none. */
  upcoming?: () => number;
  /** Longest a partial batch waits, past maxQueueDelayMs, for upcoming items. Default 0 (never). */
  maxHoldMs?: number;
}

/** How often a held batch looks again whether its upcoming items are still coming (some end as errors, never enqueued). */
const HOLD_RECHECK_MS = 5;

/** Runs one batch; must return exactly one output per input, in order. */
export type BatchHandler<I, O> = (items: I[]) => Promise<O[]>;

interface Entry<I, O> {
  item: I;
  deadline: number;
  resolve: (output: O) => void;
  reject: (err: unknown) => void;
}

/** Largest value setTimeout accepts; longer delays would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class DynamicBatcher<I, O> {
  private readonly maxBatchSize: number;
  private readonly maxQueueDelayMs: number;
  /** Descending, without duplicates. */
  private readonly preferred: number[];
  private readonly maxConcurrentBatches: number;
  private readonly maxBatchesAhead: number;
  private readonly maxQueueSize: number;
  private readonly upcoming: () => number;
  private readonly maxHoldMs: number;

  private readonly queue: Entry<I, O>[] = [];
  /** Urgent entries at the head of `queue`. */
  private urgentQueued = 0;
  private runningBatches = 0;
  private runningItems = 0;
  private dispatchScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = 0;
  private stopPromise: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  constructor(
    private readonly handler: BatchHandler<I, O>,
    options: DynamicBatcherOptions,
  ) {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.maxBatchSize = checkNumber('maxBatchSize', options.maxBatchSize, 1, Infinity, true);
    this.maxQueueDelayMs = checkNumber('maxQueueDelayMs', options.maxQueueDelayMs ?? 0, 0, MAX_TIMER_MS, false);
    this.maxConcurrentBatches = checkNumber('maxConcurrentBatches', options.maxConcurrentBatches ?? 1, 1, Infinity, true);
    this.maxBatchesAhead = checkNumber('maxBatchesAhead', options.maxBatchesAhead ?? 0, 0, Infinity, true);
    const maxQueueSize = options.maxQueueSize ?? Infinity;
    this.maxQueueSize = maxQueueSize === Infinity ? Infinity : checkNumber('maxQueueSize', maxQueueSize, 1, Infinity, true);
    this.maxHoldMs = checkNumber('maxHoldMs', options.maxHoldMs ?? 0, 0, MAX_TIMER_MS, false);
    if (options.upcoming !== undefined && typeof options.upcoming !== 'function') throw new TypeError('upcoming must be a function');
    this.upcoming = options.upcoming ?? (() => 0);
    const preferred = options.preferredBatchSizes ?? [];
    if (!Array.isArray(preferred)) throw new TypeError('preferredBatchSizes must be an array of integers');
    preferred.forEach((size, i) => checkNumber(`preferredBatchSizes[${i}]`, size, 1, this.maxBatchSize, true));
    this.preferred = [...new Set(preferred)].sort((a, b) => b - a);
  }

  /** Queues one item; resolves with its output, or rejects with its batch's error. */
  enqueue(item: I, options: { urgent?: boolean } = {}): Promise<O> {
    if (this.stopPromise) return Promise.reject(new UnavailableError('batcher stopped'));
    if (this.queue.length >= this.maxQueueSize) {
      return Promise.reject(new UnavailableError(`batcher queue is full (maxQueueSize=${this.maxQueueSize})`));
    }
    return new Promise<O>((resolve, reject) => {
      const deadline = performance.now() + this.maxQueueDelayMs;
      if (options.urgent) {
        // The head's deadline stays the earliest, so the timer never waits longer for the items behind.
        const head = this.queue[0]?.deadline ?? deadline;
        this.queue.splice(this.urgentQueued++, 0, { item, deadline: Math.min(deadline, head), resolve, reject });
      } else {
        this.queue.push({ item, deadline, resolve, reject });
      }
      if (this.queue.length >= this.maxBatchSize) {
        this.dispatch(); // a full batch gains nothing by waiting
      } else if (!this.dispatchScheduled) {
        // Let the rest of this turn's enqueues join before forming a partial batch.
        this.dispatchScheduled = true;
        queueMicrotask(() => {
          this.dispatchScheduled = false;
          this.dispatch();
        });
      }
    });
  }

  /** Items enqueued and not yet settled: queued plus running. */
  get inFlight(): number {
    return this.queue.length + this.runningItems;
  }

  /** Items waiting for a batch. */
  get queued(): number {
    return this.queue.length;
  }

  /** Refuses new items, runs the queued ones at once, resolves when all have settled. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopPromise) {
      this.stopPromise = new Promise<void>((resolve) => (this.drained = resolve));
      this.dispatch();
      this.checkDrained();
    }
    return this.stopPromise;
  }

  /** Sends every batch the rules allow now, then arms the timer for the oldest item if needed. */
  private dispatch(): void {
    while (this.queue.length > 0) {
      if (this.runningBatches < this.maxConcurrentBatches) {
        const size = this.nextBatchSize();
        if (size === 0) break;
        void this.run(this.take(size));
      } else if (this.runningBatches < this.maxConcurrentBatches + this.maxBatchesAhead && this.queue.length >= this.maxBatchSize) {
        void this.run(this.take(this.maxBatchSize));
      } else {
        break;
      }
    }
    this.armTimer();
  }

  private take(size: number): Entry<I, O>[] {
    this.urgentQueued = Math.max(0, this.urgentQueued - size);
    return this.queue.splice(0, size);
  }

  /** How many items to send now; 0 to wait for more or for the oldest item's deadline. */
  private nextBatchSize(): number {
    const queued = this.queue.length;
    if (queued >= this.maxBatchSize) return this.maxBatchSize;
    const preferred = this.preferred.find((size) => size <= queued) ?? 0;
    if (this.stopPromise) return queued;
    if (performance.now() >= this.queue[0].deadline) return this.holding() ? preferred : queued;
    return preferred;
  }

  /** A partial batch whose deadline has passed keeps waiting: more items are on their way. */
  private holding(): boolean {
    return this.maxHoldMs > 0 && this.urgentQueued === 0 && performance.now() < this.queue[0].deadline + this.maxHoldMs && this.upcoming() > 0;
  }

  /** One timer, for the oldest item's deadline, only while it could start a batch. */
  private armTimer(): void {
    const waiting = this.queue.length > 0 && this.runningBatches < this.maxConcurrentBatches;
    if (!waiting) {
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    let deadline = this.queue[0].deadline;
    const now = performance.now();
    if (now >= deadline && this.maxHoldMs > 0) deadline = Math.min(deadline + this.maxHoldMs, now + HOLD_RECHECK_MS);
    if (this.timer && this.timerDeadline === deadline) return;
    clearTimeout(this.timer);
    this.timerDeadline = deadline;
    // Ref'd on purpose: nothing else keeps the process alive for a pending promise.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dispatch(); // re-arms if the timer fired a little early
    }, Math.max(0, deadline - now));
  }

  private async run(batch: Entry<I, O>[]): Promise<void> {
    this.runningBatches++;
    this.runningItems += batch.length;
    try {
      const outputs = await this.handler(batch.map((entry) => entry.item));
      if (!Array.isArray(outputs) || outputs.length !== batch.length) {
        const got = Array.isArray(outputs) ? `${outputs.length} outputs` : 'a non-array';
        throw new VisionqError(ErrorCode.Internal, `batch handler returned ${got} for ${batch.length} inputs`);
      }
      batch.forEach((entry, i) => entry.resolve(outputs[i]));
    } catch (err) {
      for (const entry of batch) entry.reject(err);
    } finally {
      this.runningBatches--;
      this.runningItems -= batch.length;
      this.dispatch();
      this.checkDrained();
    }
  }

  private checkDrained(): void {
    if (this.drained && this.inFlight === 0) {
      this.drained();
      this.drained = undefined;
    }
  }
}

function checkNumber(name: string, value: unknown, min: number, max: number, integer: boolean): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${name} must be a number, got ${String(value)}`);
  if ((integer && !Number.isInteger(value)) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in ${min}..${max}`;
    throw new RangeError(`${name} must be ${integer ? 'an integer' : 'a number'} ${range}, got ${value}`);
  }
  return value;
}
