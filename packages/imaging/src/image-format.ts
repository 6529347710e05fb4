/**
 * Which image formats visionq accepts, decided from the bytes, never from a file name.
 *
 * The signature is looked at first: a known image or document format we do not accept
 * (PDF, SVG, HEIC, JPEG 2000, JPEG XL, BMP, PPM, FITS, …) is `unsupported_format`
 * before any decoder sees it. Then sharp (libvips) names the format it recognises; we
 * accept the six formats of {@link ACCEPTED_FORMATS} and refuse anything else it reads
 * (SVG with an unusual prologue, HEIC, magick, raw, …) with `unsupported_format`. Bytes
 * neither recognises (text, random bytes, an accepted format too damaged to identify)
 * are `image_decode_failed`.
 */

/** The formats we decode, as we name them in messages. */
export const ACCEPTED_FORMATS = ['jpeg', 'png', 'webp', 'avif', 'tiff', 'gif'] as const;
export type AcceptedFormat = (typeof ACCEPTED_FORMATS)[number];

const ACCEPTED = new Set<string>(ACCEPTED_FORMATS);

/**
 * Our name for what sharp reports: its `format` and, for the HEIF container (`heif`),
 * the `compression` inside it — AV1 is AVIF, HEVC is HEIC.
 */
export function formatName(sharpFormat: string, compression?: string): string {
  if (sharpFormat === 'heif') {
    if (compression === 'av1') return 'avif';
    return compression === 'hevc' ? 'heic' : `heif${compression ? ` (${compression})` : ''}`;
  }
  return sharpFormat;
}

export function isAccepted(name: string): name is AcceptedFormat {
  return ACCEPTED.has(name);
}

const ascii = (bytes: Uint8Array, from: number, to: number): string =>
  String.fromCharCode(...bytes.subarray(from, Math.min(to, bytes.length)));

const startsWith = (bytes: Uint8Array, sig: readonly number[], at = 0): boolean =>
  bytes.length >= at + sig.length && sig.every((b, i) => bytes[at + i] === b);

/** ISO-BMFF `ftyp` brands of the HEIF family (AVIF included). */
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1', 'avif', 'avis']);

/**
 * AVIF or another HEIF flavour, from the `ftyp` box: an AVIF file lists `avif`/`avis`
 * among its brands, whatever its major brand (often the generic `mif1`).
 */
function heifKind(bytes: Uint8Array): string | undefined {
  const boxSize = Math.min(((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0, bytes.length);
  const brands = [ascii(bytes, 8, 12)];
  for (let at = 16; at + 4 <= boxSize; at += 4) brands.push(ascii(bytes, at, at + 4));
  if (brands.some((b) => b === 'avif' || b === 'avis')) return 'avif';
  return brands.some((b) => HEIF_BRANDS.has(b)) ? 'heic' : undefined;
}

/** Sizes of the BMP info header that follows the 14-byte file header. */
const BMP_HEADER_SIZES = new Set([12, 16, 40, 52, 56, 64, 108, 124]);

/**
 * Names the format of bytes by signature, or returns undefined. Formats we refuse are
 * refused on this alone, before any decoder parses them; for the rest sharp decides.
 */
export function sniffFormat(bytes: Uint8Array): string | undefined {
  const head = ascii(bytes, 0, 16);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (head.startsWith('GIF87a') || head.startsWith('GIF89a')) return 'gif';
  if (head.startsWith('RIFF') && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (head.startsWith('II*\0') || head.startsWith('MM\0*') || head.startsWith('II+\0') || head.startsWith('MM\0+')) return 'tiff';
  if (ascii(bytes, 4, 8) === 'ftyp') return heifKind(bytes);
  if (head.startsWith('%PDF-')) return 'pdf';
  if (startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(bytes, [0xff, 0x4f, 0xff, 0x51])) return 'jp2';
  if (startsWith(bytes, [0xff, 0x0a]) || startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return 'jxl';
  if (head.startsWith('BM') && bytes.length >= 18 && BMP_HEADER_SIZES.has(bytes[14] | (bytes[15] << 8))) return 'bmp';
  if (head.startsWith('8BPS')) return 'psd';
  if (/^P[1-7]\s/.test(head) || head.startsWith('PF\n') || head.startsWith('Pf\n')) return 'ppm';
  if (head.startsWith('SIMPLE  =')) return 'fits';
  if (head.startsWith('#?RADIANCE') || head.startsWith('#?RGBE')) return 'rad';
  if (startsWith(bytes, [0x08, 0xf2, 0xa6, 0xb6]) || startsWith(bytes, [0xb6, 0xa6, 0xf2, 0x08])) return 'vips';
  if (startsWith(bytes, [0x1f, 0x8b])) return 'gzip'; // librsvg would inflate an .svgz
  if (startsWith(bytes, [0xff, 0xfe]) || startsWith(bytes, [0xfe, 0xff])) return 'utf-16 text';
  // Markup of any prologue (BOM, doctype, comments, processing instructions, whitespace):
  // no accepted format starts with "<", so none of it ever reaches an SVG or XML parser.
  const text = ascii(bytes, startsWith(bytes, [0xef, 0xbb, 0xbf]) ? 3 : 0, 4096);
  if (/^\s*</.test(text)) return /<svg[\s>/]/i.test(text) ? 'svg' : 'xml';
  return undefined;
}
