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
