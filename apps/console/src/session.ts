import { VisionqClient } from '@visionq/client';

/** The key lives in sessionStorage: it goes with the tab, never to disk for long. */
const KEY_ITEM = 'visionq-key';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function keepKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_ITEM);
}

/** A client of the gateway that served this page (so every call stays on its origin). */
export function clientFor(key: string | null): VisionqClient {
  return new VisionqClient({ url: location.origin, ...(key === null ? {} : { key }) });
}

/** Whether the gateway serves without keys: it answers `GET /models` to a request that carries none. */
export async function gatewayIsOpen(): Promise<boolean> {
  try {
    await clientFor(null).models();
    return true;
  } catch {
    return false;
  }
}
