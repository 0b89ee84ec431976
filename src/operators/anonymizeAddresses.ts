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
 * Replaces each record's raw client address with its anonymized form. Its output type,
 * `HttpLogRow`, has no raw address field, so nothing downstream can leak it.
 *
 * ```
 * source:  --[1.2.3.4, ::ffff:5.6.7.8, junk]--|
 * result:  --[1.2.3.X, 5.6.7.X,        X   ]--|
 * ```
 *
 * @example
 * records$.pipe(anonymizeAddresses({ onInvalidAddress: () => metrics.invalidAddresses.inc() }))
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
