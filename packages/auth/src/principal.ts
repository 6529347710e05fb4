import type { Scope } from './api-key.schema';
import { SCOPES } from './api-key.schema';

/** Who a request acts for: the tenant of its key, with that key's scopes and limits. */
export interface Principal {
  /** The key's id; null when the gateway serves without keys. */
  keyId: string | null;
  tenant: string;
  scopes: ReadonlySet<Scope>;
  /**
   * The tenant's folder under the uploads and results prefixes (`acme/`); '' when the
   * gateway serves without keys, where every task belongs to the one tenant.
   */
  folder: string;
  /** Where the tenant may read and write (bucket names or folder URIs); undefined = every allowed bucket. */
  buckets?: readonly string[];
  quotas: TenantQuotas;
}

/** Per-tenant limits; absent = none. */
export interface TenantQuotas {
  ratePerSecond?: number;
  imagesInFlight?: number;
  imagesPerDay?: number;
}

/** The one principal of a gateway that serves without keys (a loopback HOST, or AUTH=none). */
export const OPEN_PRINCIPAL: Principal = { keyId: null, tenant: 'default', scopes: new Set(SCOPES), folder: '', quotas: {} };

/** Whether `principal` may see a task of `tenant`: its own, or any with `admin`. */
export function canSee(principal: Principal, tenant: string): boolean {
  return principal.tenant === tenant || principal.scopes.has('admin');
}
