import { expect } from 'chai';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { ErrorCode, ImageError } from '@visionq/api';
import { ImagePreprocessor, type PreprocessSpec } from '@visionq/imaging';
import { formatName, sniffFormat } from '../../packages/imaging/src/image-format';

const ftyp = (major: string, ...compatible: string[]): Buffer => {
  const body = Buffer.from(`ftyp${major}\0\0\0\0${compatible.join('')}`, 'latin1');
  const size = Buffer.alloc(4);
  size.writeUInt32BE(body.length + 4);
  return Buffer.concat([size, body, Buffer.alloc(32)]);
};

describe('image format detection', () => {
  it('tells AVIF from HEIC by the ftyp brands, whatever the major brand', () => {
    expect(sniffFormat(ftyp('avif', 'mif1', 'miaf'))).to.equal('avif');
    expect(sniffFormat(ftyp('mif1', 'mif1', 'avif'))).to.equal('avif');
    expect(sniffFormat(ftyp('heic', 'mif1', 'heic'))).to.equal('heic');
    expect(sniffFormat(ftyp('mif1', 'mif1', 'heic'))).to.equal('heic');
    expect(sniffFormat(ftyp('isom', 'mp41'))).to.equal(undefined);
  });

  it('names sharp\'s HEIF container by its compression', () => {
    expect(formatName('heif', 'av1')).to.equal('avif');
    expect(formatName('heif', 'hevc')).to.equal('heic');
    expect(formatName('jpeg')).to.equal('jpeg');
  });

  it('knows the accepted formats sharp writes, and plain text as nothing', async () => {
    const img = sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } });
    for (const format of ['jpeg', 'png', 'webp', 'avif', 'tiff', 'gif'] as const) {
      expect(sniffFormat(await img.clone().toFormat(format).toBuffer()), format).to.equal(format);
    }
    expect(sniffFormat(Buffer.from('hello, world'))).to.equal(undefined);
  });

  it('refuses SVG and other markup by its bytes, whatever the prologue, before any decoder', async () => {
    const body = '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32" height="32"/></svg>';
    const prologues = [
      '',
      '<?xml version="1.0"?>\n',
      '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n',
      '\ufeff  \n<!-- made by hand -->\n',
      '<?xml-stylesheet href="a.css"?><!DOCTYPE x [<!ENTITY e "e">]>',
    ];
    const spec: PreprocessSpec = {
      height: 224, width: 224, resizeMode: 'shorter_side', resizeSize: 256,
      mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 255, channelOrder: 'RGB',
    };
    for (const prologue of prologues) {
      const svg = Buffer.from(prologue + body);
      expect(sniffFormat(svg), JSON.stringify(prologue)).to.equal('svg');
      let caught: unknown;
      try {
        await new ImagePreprocessor({ maxImageBytes: 1e6, maxImagePixels: 1e6 }).preprocess(svg, spec);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(ImageError);
      expect((caught as ImageError).code).to.equal(ErrorCode.UnsupportedFormat);
      expect((caught as ImageError).message).to.match(/format svg is not supported/);
    }
    expect(sniffFormat(Buffer.from('<html><body>hi</body></html>'))).to.equal('xml');
    expect(sniffFormat(zlib.gzipSync(Buffer.from(body)))).to.equal('gzip');
    expect(sniffFormat(Buffer.from('\ufeff' + body, 'utf16le'))).to.equal('utf-16 text');
  });
});
