import { expect } from 'chai';
import { join } from 'node:path';
import { UnavailableError } from '@visionq/api';
import { SimulatedSession } from '@visionq/inference';
import { readModelFolder } from '@visionq/models';

const FASHION = join(__dirname, '..', '..', 'models', 'fashion-vgg');

describe('simulated session (bench only)', () => {
  it('declares the manifest\'s input and output with a dynamic batch axis', async () => {
    const session = await SimulatedSession.backend({ msPerBatch: 0, msPerImage: 0 }).create(await readModelFolder(FASHION), { providers: ['cpu'] });
    expect(session.provider).to.equal('simulated');
    expect(session.inputs).to.deep.equal([{ name: 'input', type: 'float32', shape: ['batch', 3, 224, 224] }]);
    expect(session.outputs).to.deep.equal([{ name: 'logits', type: 'float32', shape: ['batch', 10] }]);
  });

  it('runs one batch at a time in order, returning -c for class c of every image', async () => {
    const session = await SimulatedSession.backend({ msPerBatch: 2, msPerImage: 1 }).create(await readModelFolder(FASHION), { providers: ['cpu'] });
    const ended: number[] = [];
    const runs = [5, 1, 3].map((batch, i) =>
      session.run('input', new Float32Array(batch * 3 * 224 * 224), [batch, 3, 224, 224], 'logits').then((out) => {
        ended.push(i);
        return out;
      }),
    );
    const outputs = await Promise.all(runs);
    // The batch of one asked second ends second, although it is the shortest.
    expect(ended).to.deep.equal([0, 1, 2]);
    expect(outputs.map((o) => o.dims)).to.deep.equal([[5, 10], [1, 10], [3, 10]]);
    expect([...outputs[1]!.data]).to.deep.equal([0, -1, -2, -3, -4, -5, -6, -7, -8, -9]);
    expect([...outputs[0]!.data.subarray(40, 50)]).to.deep.equal([0, -1, -2, -3, -4, -5, -6, -7, -8, -9]);
  });

  it('refuses a wrong tensor name, and every run once released (release idempotent)', async () => {
    const session = await SimulatedSession.backend({ msPerBatch: 0, msPerImage: 0 }).create(await readModelFolder(FASHION), { providers: ['cpu'] });
    const wrong = await session.run('image', new Float32Array(3), [1, 3, 1, 1], 'logits').then(
      () => 'ran',
      (err: Error) => err.message,
    );
    expect(wrong).to.match(/input "input"/);
    const first = session.release();
    expect(session.release()).to.equal(first);
    await first;
    expect(session.alive).to.equal(false);
    try {
      await session.run('input', new Float32Array(3 * 224 * 224), [1, 3, 224, 224], 'logits');
      expect.fail('ran after release');
    } catch (err) {
      expect(err).to.be.instanceOf(UnavailableError);
    }
  });

  it('refuses a negative timing', () => {
    expect(() => SimulatedSession.backend({ msPerBatch: -1, msPerImage: 0 })).to.throw(RangeError);
  });
});
