import { expect } from 'chai';
import { BUCKET_NAME, ErrorCode, errorBody, folderUriSchema, httpStatusOf, PredictTimeoutError, VisionqError } from '@visionq/api';

describe('@visionq/api: the wire contract', () => {
  it('makes every error body in one shape, naming the task a client may still poll', () => {
    expect(errorBody(new VisionqError(ErrorCode.InvalidArgument, 'bad top_k', [{ field: 'top_k', message: 'at most 10' }]))).to.deep.equal({
      error: { code: 'invalid_argument', message: 'bad top_k', details: [{ field: 'top_k', message: 'at most 10' }] },
    });
    const timeout = new PredictTimeoutError('no result in time', 'abc');
    expect(timeout).to.be.instanceOf(VisionqError);
    expect(httpStatusOf(timeout.code)).to.equal(504);
    expect(errorBody(timeout)).to.deep.equal({ error: { code: 'timeout', message: 'no result in time', details: [] }, task_id: 'abc', status_url: '/tasks/abc' });
  });

  it('answers anything visionq did not raise on purpose as a bare internal error, saying nothing of it', () => {
    for (const err of [new Error('secret path /etc/x'), 'a string', undefined]) {
      expect(errorBody(err)).to.deep.equal({ error: { code: 'internal_error', message: 'internal error', details: [] } });
    }
  });

  it('accepts folder URIs of valid buckets only', () => {
    expect(BUCKET_NAME.test('visionq')).to.equal(true);
    expect(BUCKET_NAME.test('No_Caps')).to.equal(false);
    for (const ok of ['s3://visionq/', 's3://visionq/a/b/']) expect(folderUriSchema.safeParse(ok).success, ok).to.equal(true);
    for (const bad of ['s3://visionq/a', 's3://Bad_Bucket/', 'file:///tmp/', 's3://x/']) expect(folderUriSchema.safeParse(bad).success, bad).to.equal(false);
  });
});
