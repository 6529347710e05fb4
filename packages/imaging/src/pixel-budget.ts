/**
 * A weighted semaphore over decoded pixels: decodes hold their image's pixel count while
 * its pixels are in memory, so the memory of decoding is bounded by pixels in flight, not
 * by image count (one 100-megapixel image weighs as much as eight phone photos).
 * First come, first served: a large image waits its turn rather than starving behind
 * small ones. An image larger than the whole budget is admitted alone.
 */
export class PixelBudget {
  private used = 0;
  private highest = 0;
  private readonly waiting: Array<{ pixels: number; admit: () => void }> = [];

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /** Waits until `pixels` fit, holds them, and resolves to the function that gives them back (once). */
  async acquire(pixels: number): Promise<() => void> {
    const weight = Math.min(Math.max(1, Math.ceil(pixels)), this.capacity);
    if (this.waiting.length > 0 || this.used + weight > this.capacity) {
      await new Promise<void>((admit) => this.waiting.push({ pixels: weight, admit }));
    } else {
      this.take(weight);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= weight;
      this.admitWaiting();
    };
  }

  /** Pixels held right now, and the most ever held at once. */
  get inUse(): number {
    return this.used;
  }

  get peak(): number {
    return this.highest;
  }

  private take(weight: number): void {
    this.used += weight;
    if (this.used > this.highest) this.highest = this.used;
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.pixels <= this.capacity) {
      const next = this.waiting.shift()!;
      this.take(next.pixels);
      next.admit();
    }
  }
}
