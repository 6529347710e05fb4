import type { Express } from 'express';

/** What this module reads of Express 5's router layers (the `router` package). */
interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  /** A router has a stack; a mounted app, a router. */
  handle: { stack?: Layer[]; router?: { stack: Layer[] } };
  /** Mounted at `/`: a router's routes keep their own paths. */
  slash: boolean;
  /** Where a router is mounted. */
  rawPath: string;
}

/**
 * Every route the app registers, as `METHOD /path` (Express's path form), read from its
 * router stack: what the OpenAPI document must describe. Routers mounted at `/` add their
 * routes; one mounted below (the queue UI, a page with an API and assets of its own) counts
 * as its page, `GET <mount path>`.
 */
export function registeredRoutes(app: Express): string[] {
  const walk = (stack: Layer[]): string[] =>
    stack.flatMap((layer) => {
      if (layer.route) return Object.keys(layer.route.methods).map((method) => `${method.toUpperCase()} ${layer.route!.path}`);
      const stack = layer.handle.stack ?? layer.handle.router?.stack;
      if (!stack) return [];
      return layer.slash ? walk(stack) : [`GET ${layer.rawPath}`];
    });
  return [...new Set(walk((app.router as unknown as { stack: Layer[] }).stack))];
}
