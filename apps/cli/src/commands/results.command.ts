import { createWriteStream } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command, Option } from 'commander';
import { stringify } from 'csv-stringify';
import type { ImageResult } from '@visionq/api';
import type { VisionqClient } from '@visionq/client';
import { gatewayClient, withGateway, type GatewayOptions } from './gateway.options';
import { formatTable } from './result-table';

type Format = 'ndjson' | 'csv' | 'table';

interface ResultsOptions extends GatewayOptions {
  format: Format;
  out?: string;
}

const CSV_COLUMNS = ['image', 'rank', 'class_id', 'label', 'probability', 'error_code', 'error_message'];

export function registerResults(program: Command, setExitCode: (code: number) => void): void {
  withGateway(
    program
      .command('results')
      .description("a task's results, streamed: one line per image (ndjson), one row per class (csv), or a table")
      .argument('<id>', 'task id')
      .addOption(new Option('--format <format>', 'output format').choices(['ndjson', 'csv', 'table']).default('ndjson'))
      .option('--out <file>', 'write to this file instead of stdout'),
  )
    .addHelpText('after', '\nExit status: 0 when every image has predictions, 1 when any has an error.')
    .action(async (id: string, options: ResultsOptions) => {
      const client = gatewayClient(options);
      const out: Writable = options.out ? createWriteStream(options.out) : process.stdout;
      let failed = 0;
      const counted = async function* (results: AsyncIterable<ImageResult>) {
        for await (const result of results) {
          if ('error' in result) failed++;
          yield result;
        }
      };
      await write(client, id, options.format, counted(client.results(id)), out);
      setExitCode(failed > 0 ? 1 : 0);
    });
}

async function write(client: VisionqClient, id: string, format: Format, results: AsyncIterable<ImageResult>, out: Writable): Promise<void> {
  // stdout stays open for whatever the process writes next.
  const end = out !== process.stdout;
  if (format === 'ndjson') {
    await pipeline(Readable.from(ndjson(results)), out, { end });
  } else if (format === 'csv') {
    await pipeline(Readable.from(csvRows(results)), stringify({ header: true, columns: CSV_COLUMNS }), out, { end });
  } else {
    // A table is aligned over every row, so it is the one format read whole.
    const all: ImageResult[] = [];
    for await (const result of results) all.push(result);
    await pipeline(Readable.from([formatTable(all, (await client.get(id)).model)]), out, { end });
  }
}

async function* ndjson(results: AsyncIterable<ImageResult>): AsyncGenerator<string> {
  for await (const result of results) yield `${JSON.stringify(result)}\n`;
}

async function* csvRows(results: AsyncIterable<ImageResult>): AsyncGenerator<Record<string, string | number>> {
  for await (const result of results) {
    if ('error' in result) {
      yield { image: result.image, error_code: result.error.code, error_message: result.error.message };
      continue;
    }
    for (const [i, p] of result.predictions.entries()) yield { image: result.image, rank: i + 1, class_id: p.class_id, label: p.label, probability: p.probability };
  }
}
