import { Presets, SingleBar } from 'cli-progress';
import { isTerminal, type TaskView } from '@visionq/api';

/** Shows a task's progress while it runs: a bar on a terminal, plain lines otherwise. */
export interface ProgressDisplay {
  update(view: TaskView): void;
  stop(): void;
}

export function progressDisplay(stream: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  return stream.isTTY ? new BarDisplay(stream) : new LineDisplay(stream);
}

/** Images per second since the display began, and seconds left at that rate. */
class Pace {
  private readonly started = Date.now();

  of(view: TaskView): { rate: number; eta: string } {
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? view.progress.done / seconds : 0;
    const left = view.progress.total - view.progress.done;
    return { rate, eta: rate > 0 && !isTerminal(view.status) ? `${Math.ceil(left / rate)} s` : '-' };
  }
}

class BarDisplay implements ProgressDisplay {
  private readonly bar: SingleBar;
  private readonly pace = new Pace();
  private started = false;

  constructor(stream: NodeJS.WriteStream) {
    this.bar = new SingleBar({ stream, format: '{status} |{bar}| {done}/{all} images | {rate}/s | ETA {left} | {failed} failed', hideCursor: true }, Presets.shades_classic);
  }

  update(view: TaskView): void {
    const { rate, eta } = this.pace.of(view);
    // The bar's own total cannot be 0: a `source` task has none until its first page is listed.
    const total = Math.max(view.progress.total, 1);
    const payload = { status: view.status.padEnd(9), done: view.progress.done, all: view.progress.total, rate: rate.toFixed(1), left: eta, failed: view.progress.failed };
    if (!this.started) {
      this.bar.start(total, view.progress.done, payload);
      this.started = true;
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(view.progress.done, payload);
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}

class LineDisplay implements ProgressDisplay {
  private readonly pace = new Pace();

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(view: TaskView): void {
    const { rate, eta } = this.pace.of(view);
    const { done, total, failed } = view.progress;
    this.stream.write(`${view.status} ${done}/${total} images, ${failed} failed, ${rate.toFixed(1)} images/s, ETA ${eta}\n`);
  }

  stop(): void {}
}
