import { map, type OperatorFunction } from 'rxjs';
import type { OffsetChunk } from '../domain/batch.ts';
import type { DecodedRecord, HttpLogRow } from '../domain/httpLogRow.ts';
import { anonymizeAddress as anonymizeAddressRule, anonymizeUrlAddresses } from '../domain/anonymizeAddress.ts';

export interface AnonymizeAddressesConfig {
  /** The rule; defaults to the GDPR rule of `domain/anonymizeAddress.ts` (IPv4 /24, IPv6 /48). */
  readonly anonymize?: (raw: string) => { readonly value: string; readonly kind: string };
  /** Told (without the address) each time an address could not be parsed and became `X`. */
  readonly onInvalidAddress?: () => void;
  /**
   * Anonymize IPv4 and IPv6 literals inside `url` too, by the same rule
   * (`anonymizeUrlAddresses`). Default true (`ANONYMIZE_URL_ADDRESSES`); false keeps URLs verbatim.
   */
  readonly anonymizeUrls?: boolean;
  /** Told (without the URL) each time a URL held an address and was changed. */
  readonly onUrlAddress?: () => void;
}

/**
 * Replaces each record's raw client address with its anonymized form (`1.2.3.4` → `1.2.3.X`).
 *
 * <span class="informal">A `map` over chunks whose output type has no raw address field, so
 * nothing downstream can leak it.</span>
 *
 * The default rule is `anonymizeAddress`: IPv4 keeps its /24, IPv6 its /48, an IPv4-mapped
 * IPv6 address follows the IPv4 rule, and anything unparseable becomes `X` and is reported
 * to `onInvalidAddress` (without the address). Addresses inside the URL are anonymized by
 * the same rule unless `anonymizeUrls` is false. Every other field of the chunk (offsets,
 * `rejected`, `sources`) passes unchanged, so `deadLetter` may come before or after.
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
export function anonymizeAddresses<C extends OffsetChunk<DecodedRecord>>(config: AnonymizeAddressesConfig = {}): OperatorFunction<C, Omit<C, 'items'> & OffsetChunk<HttpLogRow>> {
  const anonymize = config.anonymize ?? anonymizeAddressRule;
  const anonymizeUrls = config.anonymizeUrls ?? true;
  return map((chunk: C) => ({
    ...chunk,
    items: chunk.items.map((record): HttpLogRow => {
      const address = anonymize(record.rawRemoteAddr);
      if (address.kind === 'invalid') config.onInvalidAddress?.();
      let url = record.url;
      if (anonymizeUrls) {
        url = anonymizeUrlAddresses(record.url);
        if (url !== record.url) config.onUrlAddress?.();
      }
      return {
        timestamp: record.timestamp,
        resourceId: record.resourceId,
        bytesSent: record.bytesSent,
        requestTimeMilli: record.requestTimeMilli,
        responseStatus: record.responseStatus,
        cacheStatus: record.cacheStatus,
        method: record.method,
        remoteAddr: address.value,
        url,
      };
    }),
  }));
}
