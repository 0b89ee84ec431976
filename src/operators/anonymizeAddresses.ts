import { map, type OperatorFunction } from 'rxjs';
import type { OffsetChunk } from '../domain/batch.ts';
import type { DecodedRecord, HttpLogRow } from '../domain/httpLogRow.ts';
import { anonymizeAddress as anonymizeAddressRule } from '../domain/anonymizeAddress.ts';

export interface AnonymizeAddressesConfig {
  /** The rule; defaults to the GDPR rule of `domain/anonymizeAddress.ts` (IPv4 /24, IPv6 /48). */
  readonly anonymize?: (raw: string) => { readonly value: string; readonly kind: string };
  /** Told (without the address) each time an address could not be parsed and became `X`. */
  readonly onInvalidAddress?: () => void;
}

/**
 * Replaces each record's raw client address with its anonymized form (`1.2.3.4` → `1.2.3.X`).
 *
 * <span class="informal">A `map` over chunks whose output type has no raw address field, so
 * nothing downstream can leak it.</span>
 *
 * The default rule is `anonymizeAddress`: IPv4 keeps its /24, IPv6 its /48, an IPv4-mapped
 * IPv6 address follows the IPv4 rule, and anything unparseable becomes `X` and is reported
 * to `onInvalidAddress` (without the address). The chunk's offsets pass unchanged; the
 * `rejected` list of `decodeRecords` is dropped here, `deadLetter` having handled it.
 *
 * ```
 * source:  -a-b|      a = [1.2.3.4, ::ffff:5.6.7.8]   b = [junk, 2001:db8:85a3::8a2e:370:7334]
 * result:  -x-y|      x = [1.2.3.X, 5.6.7.X]          y = [X, 2001:db8:85a3::X]  (onInvalidAddress once)
 * ```
 *
 * @param config `anonymize`: the rule (default `anonymizeAddress`); `onInvalidAddress`:
 * told each time an address became `X`.
 * @returns An operator from decoded chunks to chunks of `HttpLogRow`, in order.
 * @see {@link anonymizeAddress} the rule itself, for one address.
 *
 * @example
 * ```ts
 * import { anonymizeAddresses, decodeRecord, decodeRecords } from 'http-log-anonymizer';
 *
 * let invalid = 0;
 * const rows$ = kafkaChunks$.pipe(
 *   decodeRecords({ decode: decodeRecord }),
 *   anonymizeAddresses({ onInvalidAddress: () => invalid++ }),
 * );
 * ```
 */
export function anonymizeAddresses(config: AnonymizeAddressesConfig = {}): OperatorFunction<OffsetChunk<DecodedRecord>, OffsetChunk<HttpLogRow>> {
  const anonymize = config.anonymize ?? anonymizeAddressRule;
  return map(({ rejected: _handled, ...chunk }: OffsetChunk<DecodedRecord> & { rejected?: unknown }) => ({
    ...chunk,
    items: chunk.items.map((record): HttpLogRow => {
      const address = anonymize(record.rawRemoteAddr);
      if (address.kind === 'invalid') config.onInvalidAddress?.();
      return {
        timestamp: record.timestamp,
        resourceId: record.resourceId,
        bytesSent: record.bytesSent,
        requestTimeMilli: record.requestTimeMilli,
        responseStatus: record.responseStatus,
        cacheStatus: record.cacheStatus,
        method: record.method,
        remoteAddr: address.value,
        url: record.url,
      };
    }),
  }));
}
