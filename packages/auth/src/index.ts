export { AccessPolicy } from './access.policy';
export type { ReservedPrefixes } from './access.policy';
export { createApiKey } from './api-key.file';
export type { NewKey } from './api-key.file';
export { apiKeysFileSchema, SCOPES, TENANT_NAME } from './api-key.schema';
export type { ApiKeyEntry, Scope } from './api-key.schema';
export { ApiKeyStore } from './api-key.store';
export { canSee, OPEN_PRINCIPAL } from './principal';
export type { Principal, TenantQuotas } from './principal';
