import type { Readable } from 'node:stream';
import { ErrorCode, isTerminal, VisionqError, type ImageResult } from '@visionq/api';
import { joinObjectUri, ObjectNotFoundError, type ObjectStore } from '@visionq/object-store';
import type { TaskRecord } from './task.record';
import type { TaskStore } from './task.store';

/** Where to go on reading: the chunk, and the line within it. */
interface Position {
  chunk: number;
  line: number;
}

export interface ResultPage {
  results: ImageResult[];
  /** Pass as `cursor` for the next page; null when every result has been read. */
  nextCursor: string | null;
}

/** Largest part a reader accepts: a chunk's lines are small; this only guards against a foreign object. */
const MAX_PART_BYTES = 256 * 1024 * 1024;

/**
 * Result parts: one JSON Lines object per chunk, `<output><task id>/part-000042.jsonl`.
 * A chunk that runs twice writes the same part twice, whole; readers use only committed
 * chunks, in chunk order, so every image is read exactly once. A retry that reruns a
 * chunk's failed images writes a part of its round, and readers take it from the commit on.
 *
 * While a task runs, reading stops at its first chunk not yet committed (the cursor
 * points there, to resume later); once it has ended, chunks that never ran (a cancelled
 * or failed task) are skipped.
 */
export class ResultStore {
  constructor(
    private readonly store: ObjectStore,
    private readonly tasks: TaskStore,
  ) {}

  /** The folder holding a task's parts: `<output><task id>/`. */
  static folderUri(task: Pick<TaskRecord, 'id' | 'output'>): string {
    return joinObjectUri(task.output, `${task.id}/`);
  }

  /** A chunk's part; a retry that reran its failed images writes it anew for its round (`part-000042.r1.jsonl`). */
  static partUri(task: Pick<TaskRecord, 'id' | 'output'>, chunk: number, round = 0): string {
    return `${ResultStore.folderUri(task)}part-${String(chunk).padStart(6, '0')}${round > 0 ? `.r${round}` : ''}.jsonl`;
  }

  async writePart(task: Pick<TaskRecord, 'id' | 'output'>, chunk: number, results: ImageResult[], round = 0): Promise<void> {
    const body = results.map((r) => JSON.stringify(r) + '\n').join('');
    await this.store.put(ResultStore.partUri(task, chunk, round), body, { contentType: 'application/x-ndjson' });
  }

  /** A committed chunk's result lines, from the part of `round`. */
  async readPart(task: Pick<TaskRecord, 'id' | 'output'>, chunk: number, round: number): Promise<ImageResult[]> {
    const bytes = await this.openPart(task, chunk, () => this.store.getBytes(ResultStore.partUri(task, chunk, round), MAX_PART_BYTES));
    return bytes
      .toString('utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as ImageResult);
  }

  /** Up to `limit` results from `cursor` (or the start). */
  async page(task: TaskRecord, cursor: string | null, limit: number): Promise<ResultPage> {
    let position = cursor === null ? { chunk: 0, line: 0 } : decodeCursor(cursor);
    const results: ImageResult[] = [];
    const [chunks, rounds] = await Promise.all([this.readableChunks(task, position.chunk), this.tasks.partVersions(task.id)]);
    for (const chunk of chunks) {
      if (chunk === 'pending') return { results, nextCursor: encodeCursor(position) };
      if (chunk > position.chunk) position = { chunk, line: 0 };
      const lines = await this.readPart(task, chunk, rounds.get(chunk) ?? 0);
      const taken = lines.slice(position.line, position.line + (limit - results.length));
      results.push(...taken);
      position = { chunk, line: position.line + taken.length };
      if (results.length === limit) {
        const more = position.line < lines.length || chunk + 1 < task.chunks || !task.listed;
        return { results, nextCursor: more ? encodeCursor(position.line < lines.length ? position : { chunk: chunk + 1, line: 0 }) : null };
      }
      position = { chunk: chunk + 1, line: 0 };
    }
    return { results, nextCursor: isTerminal(task.status) ? null : encodeCursor(position) };
  }

  /** Every readable result as JSON Lines, part after part, without holding them in memory. */
  async *stream(task: TaskRecord): AsyncGenerator<Buffer | string> {
    const [chunks, rounds] = await Promise.all([this.readableChunks(task, 0), this.tasks.partVersions(task.id)]);
    for (const chunk of chunks) {
      if (chunk === 'pending') return;
      const part = await this.openPart(task, chunk, () => this.store.get(ResultStore.partUri(task, chunk, rounds.get(chunk) ?? 0)));
      for await (const piece of part.body as Readable) yield piece as Buffer;
    }
  }

  /** Committed chunks from `first` on, in order, ending with 'pending' where a running task's next chunk is missing. */
  private async readableChunks(task: TaskRecord, first: number): Promise<(number | 'pending')[]> {
    const committed = (await this.tasks.committedChunks(task.id)).filter((c) => c >= first);
    if (isTerminal(task.status)) return committed;
    const out: (number | 'pending')[] = [];
    let expected = first;
    for (const chunk of committed) {
      if (chunk !== expected) break;
      out.push(chunk);
      expected++;
    }
    if (expected < task.chunks || !task.listed) out.push('pending');
    return out;
  }

  /** A committed chunk's part is missing only if someone deleted it: that is our failure, not the client's. */
  private async openPart<T>(task: Pick<TaskRecord, 'id'>, chunk: number, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw new VisionqError(ErrorCode.Internal, `result part of chunk ${chunk} of task ${task.id} is missing from the store`, [], { cause: err });
      }
      throw err;
    }
  }
}

function encodeCursor(position: Position): string {
  return Buffer.from(`${position.chunk}.${position.line}`).toString('base64url');
}

function decodeCursor(cursor: string): Position {
  const match = /^(\d{1,9})\.(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new VisionqError(ErrorCode.InvalidArgument, 'cursor is not one this API returned', [{ field: 'cursor', message: 'invalid cursor' }]);
  return { chunk: Number(match[1]), line: Number(match[2]) };
}
