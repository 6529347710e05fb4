import type { ImageResult } from '@visionq/api';
import { stringify } from 'csv-stringify/browser/esm/sync';

export type ResultsFormat = 'ndjson' | 'csv';

/** The CLI's CSV: one row per class of each prediction, one per error line. */
const CSV_COLUMNS = ['image', 'rank', 'class_id', 'label', 'probability', 'error_code', 'error_message'];

function csvRows(results: ImageResult[]): Array<Record<string, string | number>> {
  return results.flatMap<Record<string, string | number>>((result) =>
    'error' in result
      ? [{ image: result.image, error_code: result.error.code, error_message: result.error.message }]
      : result.predictions.map((p, i) => ({ image: result.image, rank: i + 1, class_id: p.class_id, label: p.label, probability: p.probability })),
  );
}

/** The results as a file to save, `<task id>.ndjson` or `.csv`. */
export function resultsFile(taskId: string, results: ImageResult[], format: ResultsFormat): File {
  const text = format === 'csv' ? stringify(csvRows(results), { header: true, columns: CSV_COLUMNS }) : results.map((r) => `${JSON.stringify(r)}\n`).join('');
  return new File([text], `${taskId}.${format}`, { type: format === 'csv' ? 'text/csv' : 'application/x-ndjson' });
}

/** Hands a file to the browser's download. */
export function download(file: File): void {
  const url = URL.createObjectURL(file);
  const link = Object.assign(document.createElement('a'), { href: url, download: file.name });
  link.click();
  // The click has started the download; the URL is no longer needed once it has been read.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
