/**
 * Body compression for inserts. Node's async zlib runs on the libuv thread pool, so even
 * brotli at level 11 (seconds of CPU once a minute) never blocks the event loop.
 * Each codec is one ClickHouse accepts as an HTTP `Content-Encoding`.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Codec } from '../domain/batch.ts';

const brotli = promisify(zlib.brotliCompress);
const zstd = promisify(zlib.zstdCompress);
const gzip = promisify(zlib.gzip);

export const CODECS: readonly Codec[] = ['br', 'zstd', 'gzip', 'none'];

/** The level each codec uses when none is given: the strongest that pays off once a minute. */
export const DEFAULT_LEVEL: Readonly<Record<Codec, number>> = { br: 11, zstd: 19, gzip: 9, none: 0 };

export const LEVEL_RANGE: Readonly<Record<Codec, readonly [number, number]>> = {
  br: [0, 11],
  zstd: [1, 22],
  gzip: [1, 9],
  none: [0, 0],
};

/**
 * Brotli's window, as log2 bytes. Quality 10–11 keeps a match tree of 8 bytes per window
 * position (up to the input's size), so the window bounds the working memory: measured
 * at quality 11 on one 1 MiB body, 46 MiB at 2^24 and 16 MiB at 2^20 for uniform rows
 * (3.7 MB raw), 114 and 28 MiB for 150,000 realistic rows (12 MB raw). A body is sorted
 * by url, so the matches that pay are near: 2^20 made bodies 0.1 % (uniform) and 0.6 %
 * (realistic) smaller than 2^24, not larger.
 */
export const BROTLI_WINDOW_BITS = 20;

export async function compress(codec: Codec, level: number, input: Uint8Array): Promise<Uint8Array> {
  switch (codec) {
    case 'br':
      return brotli(input, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: level,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: input.byteLength,
          [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_BITS,
        },
      });
    case 'zstd':
      return zstd(input, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level } });
    case 'gzip':
      return gzip(input, { level });
    case 'none':
      return input;
  }
}

const unbrotli = promisify(zlib.brotliDecompress);
const unzstd = promisify(zlib.zstdDecompress);
const gunzip = promisify(zlib.gunzip);

export async function decompress(codec: Codec, input: Uint8Array): Promise<Uint8Array> {
  switch (codec) {
    case 'br':
      return unbrotli(input);
    case 'zstd':
      return unzstd(input);
    case 'gzip':
      return gunzip(input);
    case 'none':
      return input;
  }
}
