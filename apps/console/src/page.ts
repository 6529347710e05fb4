import type { VisionqClient } from '@visionq/client';

export interface PageContext {
  client: VisionqClient;
  /** Aborted when the page is left: its streams and pending calls stop. */
  signal: AbortSignal;
  /** Renders the page again, as after a change it made (a cancel, a retry). */
  reload(): void;
}

/** Fills `view` (the emptied <main>) for the current route. */
export type Page = (view: HTMLElement, context: PageContext) => void | Promise<void>;
