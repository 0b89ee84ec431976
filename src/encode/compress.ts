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

export async function compress(codec: Codec, level: number, input: Uint8Array): Promise<Uint8Array> {
  switch (codec) {
    case 'br':
      return brotli(input, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: level,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: input.byteLength,
          [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
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
