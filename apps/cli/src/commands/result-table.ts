import type { ImageResult } from '@visionq/api';

/** Rows as aligned columns, two spaces apart. */
export function formatColumns(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return `${rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n')}\n`;
}

/** A readable table: one block per image, one row per predicted class. */
export function formatTable(results: ImageResult[], model: string): string {
  const rows: string[][] = [['IMAGE', 'CLASS', 'LABEL', 'PROBABILITY']];
  for (const result of results) {
    if ('error' in result) {
      rows.push([result.image, '-', `error ${result.error.code}`, result.error.message]);
      continue;
    }
    result.predictions.forEach((p, i) => {
      rows.push([i === 0 ? result.image : '', String(p.class_id), p.label, `${(p.probability * 100).toFixed(2)}%`]);
    });
  }
  return `model: ${model}\n${formatColumns(rows)}`;
}
