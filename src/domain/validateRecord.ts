/**
 * What a decoded record's text must look like before it may become a row.
 *
 * A bit flip in a Cap'n Proto pointer can make a text field point at other bytes of the
 * message and still decode: fuzzing found `url`, `cache_status` and `method` holding the
 * client's raw address. These rules make that impossible or visible:
 *
 * - every text: valid UTF-8 (checked while decoding, decodeRecord.ts), no control
 *   character (U+0000–U+001F, U+007F–U+009F, NUL included), and no longer than its limit
 *   below. A pointer landing in the middle of a message almost always takes in a NUL or
 *   another control byte (every text is NUL-terminated, integers are mostly zero bytes);
 * - `method` and `cache_status`: a token of letters, `-` and `_` only, 0–32 characters.
 *   Every HTTP method registered with IANA (GET, PROPFIND, VERSION-CONTROL, …) and every
 *   value of nginx's `$upstream_cache_status` (HIT, MISS, BYPASS, EXPIRED, STALE, UPDATING,
 *   REVALIDATED, plus `-` for none) fits it. An IPv4 literal needs digits and `.`, an IPv6
 *   literal `:`: neither can be stored in these columns, whatever the input. (RFC 9110's
 *   token would allow digits and `.`, hence the narrower rule.) Empty is allowed: some
 *   edges log nothing rather than `-`;
 * - `url`: addresses inside it are anonymized (anonymizeUrlAddresses), not refused;
 * - `remote_addr`: only anonymized (anything unparseable becomes `X`); the length and
 *   control-character rules still apply, so garbage there is dead-lettered, not counted
 *   as an invalid address.
 *
 * A record breaking a rule is dead-lettered with `x-dlq-reason: invalid_text`.
 * Pure; src/domain/validateRecord.test.ts checks it as a table.
 */
import { InvalidTextError } from '../errors.ts';
import type { DecodedRecord, HttpLogRow } from './httpLogRow.ts';

/**
 * Longest text per field, in UTF-16 code units (= bytes for ASCII). 64 KiB of URL is far
 * above what any server accepts in a request line (nginx: 8 KiB by default, at most its
 * `large_client_header_buffers`); the token fields are short by nature; 64 bytes holds
 * the longest address form (`[ffff:…:ffff%zone]:65535`) with room to spare.
 */
export const MAX_TEXT_LENGTH = { url: 65_536, method: 32, cache_status: 32, remote_addr: 64 } as const;

type TextField = keyof typeof MAX_TEXT_LENGTH;

/** Throws `InvalidTextError` when a text field of `record` breaks a rule above. */
export function validateRecord(record: DecodedRecord): void {
  checkToken('method', record.method);
  checkToken('cache_status', record.cacheStatus);
  checkText('remote_addr', record.rawRemoteAddr);
  checkText('url', record.url);
}

function checkText(field: TextField, value: string): void {
  const limit = MAX_TEXT_LENGTH[field];
  if (value.length > limit) throw new InvalidTextError(field, `${field} is ${value.length} characters long, over its limit of ${limit}`);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) throw new InvalidTextError(field, `${field} holds the control character U+${c.toString(16).padStart(4, '0').toUpperCase()} at ${i}`);
  }
}

function checkToken(field: TextField, value: string): void {
  const limit = MAX_TEXT_LENGTH[field];
  if (value.length > limit) throw new InvalidTextError(field, `${field} is ${value.length} characters long, over its limit of ${limit}`);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    // A–Z, a–z, '-', '_'
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95)) {
      throw new InvalidTextError(field, `${field} must be letters, '-' and '_' only (a character at ${i} is not)`);
    }
  }
}

/**
 * An upper bound on the compressed size of a body holding `row` alone, for `encode`
 * (the insert body encoder) and any of our codecs, without encoding or compressing:
 * the body of a row with empty texts (measured once per encoder), plus each text's
 * UTF-8 bytes (at most 3 per UTF-16 unit) and a length prefix, plus the worst a codec
 * adds to incompressible input (stored blocks: gzip 5 B per 64 KiB, zstd 3 B per 128 KiB,
 * brotli less; 1/64 and 128 B cover them all with room to spare).
 * `rejectOversizedRows` measures for real only rows whose bound is over the limit.
 */
export function singleRowBodyBound(row: HttpLogRow, emptyRowBodyBytes: number): number {
  const texts = 3 * (row.url.length + row.method.length + row.cacheStatus.length + row.remoteAddr.length) + 4 * 32;
  const raw = emptyRowBodyBytes + texts;
  return raw + Math.ceil(raw / 64) + 128;
}
