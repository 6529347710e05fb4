import { ErrorCode, VisionqError } from '@visionq/api';
import { parseObjectUri, type BucketPolicy } from '@visionq/object-store';
import type { Principal } from './principal';

/** The prefixes visionq writes for every tenant: uploads and results, one folder per tenant. */
export interface ReservedPrefixes {
  uploadsUri: string;
  resultsUri: string;
}

/**
 * Where a tenant may read (images, `source` prefixes) and write (`output`): its own
 * folders of the uploads and results prefixes, and the deployment's allowed buckets
 * narrowed to its key entry's `buckets`; never another tenant's folder there, nor a prefix
 * that lists them. Without keys (one open tenant, folder '') only the allow-list applies.
 */
export class AccessPolicy {
  constructor(
    private readonly buckets: BucketPolicy,
    private readonly reserved: ReservedPrefixes,
  ) {}

  /** The folder of `principal`'s uploads (`<UPLOADS_URI><tenant>/`). */
  uploadsOf(principal: Principal): string {
    return this.reserved.uploadsUri + principal.folder;
  }

  /** The folder of `principal`'s results when a task names no `output`. */
  resultsOf(principal: Principal): string {
    return this.reserved.resultsUri + principal.folder;
  }

  /** Throws Forbidden (naming `field`) unless `principal` may use `uri`, an object or a prefix. */
  check(principal: Principal, uri: string, field: string): void {
    this.buckets.check(uri, field);
    // The tenant's own uploads and results are its own, whatever else its entry allows.
    if (uri.startsWith(this.uploadsOf(principal)) || uri.startsWith(this.resultsOf(principal))) return;
    if (principal.buckets && !principal.buckets.some((allowed) => within(uri, allowed))) {
      throw forbidden(field, `${uri} is outside the buckets of tenant "${principal.tenant}"`);
    }
    if (principal.folder === '' || principal.scopes.has('admin')) return;
    for (const reserved of [this.reserved.uploadsUri, this.reserved.resultsUri]) {
      const own = reserved + principal.folder;
      if (uri.startsWith(reserved) && !uri.startsWith(own)) throw forbidden(field, `${uri} is outside the folder of tenant "${principal.tenant}" (${own})`);
      if (reserved.startsWith(uri)) throw forbidden(field, `${uri} would list other tenants' uploads or results`);
    }
  }
}

/** Whether `uri` lies in `allowed`: a bucket name (the whole bucket) or a folder URI. */
function within(uri: string, allowed: string): boolean {
  return allowed.startsWith('s3://') ? uri.startsWith(allowed) : parseObjectUri(uri).bucket === allowed;
}

function forbidden(field: string, message: string): VisionqError {
  return new VisionqError(ErrorCode.Forbidden, `${field}: ${message}`, [{ field, message: 'not allowed for this tenant' }]);
}
