import { expect } from 'chai';
import { softmaxInPlace, topK } from '@visionq/inference';

describe('postprocess', () => {
  it('softmax matches the definition and survives huge logits', () => {
    const row = softmaxInPlace(new Float32Array([1, 2, 3]));
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
    const sum = e[0]! + e[1]! + e[2]!;
    e.forEach((v, i) => expect(row[i]).to.be.closeTo(v / sum, 1e-6));
    const huge = softmaxInPlace(new Float32Array([1000, 1000, -1000]));
    expect([...huge]).to.deep.equal([0.5, 0.5, 0]);
  });

  it('top-k returns the k most probable, most probable first, ties to the lower id', () => {
    const probabilities = new Float32Array([0.1, 0.4, 0.05, 0.4, 0.05]);
    const labels = ['a', 'b', 'c', 'd', 'e'];
    const best = topK(probabilities, 3, labels);
    expect(best.map((p) => p.class_id)).to.deep.equal([1, 3, 0]);
    expect(best[0]).to.deep.include({ label: 'b' });
    expect(best[0]!.probability).to.be.closeTo(0.4, 1e-6);
  });

  it('top-k agrees with a full sort on random rows', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 50; trial++) {
      const row = Float32Array.from({ length: 1000 }, random);
      const expected = [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b).slice(0, 5);
      expect(topK(row, 5, []).map((p) => p.class_id)).to.deep.equal(expected);
    }
  });

  it('top-k larger than the class count returns every class', () => {
    expect(topK(new Float32Array([0.3, 0.7]), 5, ['x', 'y']).map((p) => p.label)).to.deep.equal(['y', 'x']);
  });
});
