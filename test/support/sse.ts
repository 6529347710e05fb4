export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Reads Server-Sent Events from `url` until the server closes the stream, `stopAfter`
 * returns true for an event (then it disconnects), or `signal` aborts.
 */
export async function readEvents(url: string, headers: Record<string, string>, stopAfter: (event: SseEvent, all: SseEvent[]) => boolean = () => false): Promise<{ events: SseEvent[]; comments: number; contentType: string | null }> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
  if (!res.ok || !res.body) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  const events: SseEvent[] = [];
  let comments = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  try {
    for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(piece, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.startsWith(':')) {
          comments++;
          continue;
        }
        const event: SseEvent = { event: 'message', data: '' };
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          const [field, value] = [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')];
          if (field === 'id') event.id = value;
          else if (field === 'event') event.event = value;
          else if (field === 'data') event.data += value;
        }
        events.push(event);
        if (stopAfter(event, events)) {
          controller.abort();
          return { events, comments, contentType: res.headers.get('content-type') };
        }
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  }
  return { events, comments, contentType: res.headers.get('content-type') };
}
