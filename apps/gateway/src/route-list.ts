import type { Express } from 'express';

/** What this module reads of Express 5's router layers (the `router` package). */
interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
  /** Mounted at `/`: a router's routes keep their own paths. */
  slash: boolean;
}

/**
 * Every route the app registers, as `METHOD /path` (Express's path form), read from its
 * router stack: what the OpenAPI document must describe. Routers must be mounted at `/`,
 * where a route's path is the whole path.
 */
export function registeredRoutes(app: Express): string[] {
  const walk = (stack: Layer[]): string[] =>
    stack.flatMap((layer) => {
      if (layer.route) return Object.keys(layer.route.methods).map((method) => `${method.toUpperCase()} ${layer.route!.path}`);
      if (!layer.handle.stack) return [];
      if (!layer.slash) throw new Error("a router mounted below /: its routes' paths would be partial");
      return walk(layer.handle.stack);
    });
  return walk((app.router as unknown as { stack: Layer[] }).stack);
}
