/**
 * PIL's `Image.convert('RGB')` from CMYK (Pillow's `cmyk2rgb`): no colour management,
 * each channel (255 - K) - C·(255 - K)/255 with Pillow's integer rounding. That is
 * what torchvision's PIL loader turns a CMYK JPEG into, so a model trained that way
 * saw these values, not an ICC-managed conversion. Input is interleaved CMYK as
 * libjpeg delivers it (Adobe-inverted files already un-inverted by the decoder).
 */
export function cmykToRgbLikePil(cmyk: Uint8Array, pixelCount: number): Uint8Array {
  const out = new Uint8Array(pixelCount * 3);
  for (let i = 0, p = 0, o = 0; i < pixelCount; i++, p += 4) {
    const nk = 255 - cmyk[p + 3];
    for (let c = 0; c < 3; c++) {
      // Pillow's MULDIV255(a, b): t = a * b + 128; ((t >> 8) + t) >> 8.
      const t = cmyk[p + c] * nk + 128;
      const v = nk - (((t >> 8) + t) >> 8);
      out[o++] = v < 0 ? 0 : v;
    }
  }
  return out;
}
