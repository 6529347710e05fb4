/** A model as `GET /models` shows it. */
export interface ModelView {
  name: string;
  version: string;
  description?: string;
  default: boolean;
  input: { name: string; shape: Array<number | string> };
  classes: number;
  /** Live workers serving it, and the execution providers they run it on. */
  workers: number;
  providers: string[];
}

export interface ModelsResponse {
  models: ModelView[];
}

/** `GET /healthz`: the process answers. */
export interface HealthResponse {
  status: 'ok';
}

/** `GET /readyz`: each dependency's check, `ok` (or a detail) or why it is unavailable. */
export interface ReadinessResponse {
  status: 'ready' | 'not_ready';
  checks: Record<string, string>;
}
