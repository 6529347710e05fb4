/**
 * `npm run bench -- <suite>`: measures side by side in one run and ends with one JSON
 * line `{"suite", "figures", "ratios"}`. Figures come from this machine, this run.
 */
import { runDecodeMemoryBench } from './decode-memory.bench';
import { runE2eBench } from './e2e.bench';
import { runEngineBench } from './engine.bench';
import { runImagingBench } from './imaging.bench';
import { runScaleBench } from './scale.bench';

const SUITES: Record<string, () => Promise<BenchResult>> = {
  engine: runEngineBench,
  e2e: runE2eBench,
  'decode-memory': runDecodeMemoryBench,
  imaging: runImagingBench,
  scale: runScaleBench,
};

export interface BenchResult {
  suite: string;
  figures: Record<string, number | string>;
  ratios: Record<string, number>;
}

async function main(): Promise<void> {
  const name = process.argv[2] ?? 'engine';
  const suite = SUITES[name];
  if (!suite) {
    console.error(`unknown suite "${name}"; suites: ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
  const result = await suite();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
