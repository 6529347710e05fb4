/**
 * Thumbnails of the files uploaded from this page, by task: object URLs, gone with the page.
 * The gateway names the n-th upload of a task `NNNNN-<name>` (n zero-padded to five digits),
 * which is how a result line finds its file.
 */
const uploadedByTask = new Map<string, string[]>();

export function rememberUploads(taskId: string, files: File[]): void {
  uploadedByTask.set(taskId, files.map((file) => URL.createObjectURL(file)));
}

export function thumbnailOf(taskId: string, image: string): string | undefined {
  if (!image.includes(`/${taskId}/`)) return undefined;
  const index = /\/(\d{5})-[^/]*$/.exec(image)?.[1];
  return index === undefined ? undefined : uploadedByTask.get(taskId)?.[Number(index)];
}
