export type { ListPage, ObjectBody, ObjectInfo, ObjectStore, PutBody } from './object-store';
export { ObjectAccessDeniedError, ObjectNotFoundError, ObjectTooLargeError, StoreUnavailableError } from './object-store.errors';
export { checkObjectKey, formatObjectUri, joinObjectUri, parseObjectUri } from './object-uri';
export type { ObjectUri } from './object-uri';
export { LocalObjectStore } from './local.object-store';
export { S3ObjectStore } from './s3.object-store';
export type { S3StoreOptions } from './s3.object-store';
export { BucketPolicy } from './bucket-policy';
export { openObjectStore } from './open-object-store';
