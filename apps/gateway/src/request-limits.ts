import type { RequestHandler } from 'express';
import { ErrorCode, VisionqError } from '@visionq/api';

/**
 * Bodies come as they are: a compressed body (JSON or multipart) is refused before it is
 * read, rather than inflated into something larger than its limits.
 */
export const refuseContentEncodings: RequestHandler = (req, _res, next) => {
  const encoding = req.get('content-encoding')?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    next(new VisionqError(ErrorCode.UnsupportedMediaType, `Content-Encoding ${encoding} is not accepted; send the body as it is`, [{ field: 'Content-Encoding', message: 'only identity' }]));
    return;
  }
  next();
};

/** A parsed JSON body nested deeper than `maxDepth` is 400, before any code walks it recursively. */
export function limitJsonDepth(maxDepth: number): RequestHandler {
  return (req, _res, next) => {
    if (jsonDepth(req.body, maxDepth) > maxDepth) {
      next(new VisionqError(ErrorCode.InvalidRequest, `the JSON body nests deeper than MAX_JSON_DEPTH=${maxDepth}`, [{ message: 'too deep' }]));
      return;
    }
    next();
  };
}

/** Depth of arrays and objects in `value`, walked without recursion, stopping once past `limit`. */
function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    const here = depth + 1;
    if (here > deepest) deepest = here;
    if (deepest > limit) return deepest;
    for (const child of Object.values(item)) stack.push([child, here]);
  }
  return deepest;
}
