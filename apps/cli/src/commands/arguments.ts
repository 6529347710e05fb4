import { InvalidArgumentError } from 'commander';
import { ErrorCode, VisionqError } from '@visionq/api';

/** Commander parser for options that take an integer of at least `min`. */
export function intAtLeast(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer ≥ ${min}`);
    return n;
  };
}

/** Commander parser for options that take one of `values`. */
export function oneOf(values: string[]): (value: string) => string {
  return (value) => {
    if (!values.includes(value)) throw new InvalidArgumentError(`one of ${values.join(', ')}`);
    return value;
  };
}

/** Commander parser for options that take a finite number. */
export function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('must be a number');
  return n;
}

/** A command's refusal of one of its arguments, in the error shape of the API. */
export function invalidArgument(field: string, message: string): VisionqError {
  return new VisionqError(ErrorCode.InvalidArgument, message, [{ field, message }]);
}
