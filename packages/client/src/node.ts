import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import type { Upload } from './visionq.client';

/**
 * A file as an upload, for Node: a Blob backed by the file, which FormData streams from
 * disk as the request is sent (and anew if it is sent again), never holding it whole.
 */
export async function openFile(path: string): Promise<Upload> {
  return { name: basename(path), blob: await openAsBlob(path) };
}
