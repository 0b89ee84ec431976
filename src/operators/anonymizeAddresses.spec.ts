import { describe, expect, it } from 'vitest';
import type { OffsetChunk } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
import { DecodeError } from '../errors.ts';
import { anonymizeAddresses } from './anonymizeAddresses.ts';
import { newTestScheduler, row } from './testing.ts';

const record = (rawRemoteAddr: string): DecodedRecord => {
  const { remoteAddr: _dropped, ...fields } = row('/');
  return { ...fields, rawRemoteAddr };
};
const chunk = (...addresses: string[]): OffsetChunk<DecodedRecord> => ({ partition: 0, lastOffset: 5, items: addresses.map(record) });

describe('anonymizeAddresses', () => {
  it('replaces every raw address and counts the invalid ones', () => {
    let invalid = 0;
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b|', { a: chunk('1.2.3.4', '::ffff:5.6.7.8'), b: chunk('junk', '2001:db8:85a3::8a2e:370:7334') });
      expectObservable(source.pipe(anonymizeAddresses({ onInvalidAddress: () => invalid++ }))).toBe('-x-y|', {
        x: { partition: 0, lastOffset: 5, items: [row('/', '1.2.3.X'), row('/', '5.6.7.X')] },
        y: { partition: 0, lastOffset: 5, items: [row('/', 'X'), row('/', '2001:db8:85a3::X')] },
      });
    });
    expect(invalid).toBe(1);
  });

  it('its output carries no raw address field at all', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      const out = cold('a|', { a: chunk('9.8.7.6') }).pipe(anonymizeAddresses());
      expectObservable(out).toBe('a|', { a: { partition: 0, lastOffset: 5, items: [row('/', '9.8.7.X')] } });
    });
  });

  it('uses an injected rule', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      const out = cold('a|', { a: chunk('9.8.7.6') }).pipe(anonymizeAddresses({ anonymize: () => ({ value: 'redacted', kind: 'ipv4' }) }));
      expectObservable(out).toBe('a|', { a: { partition: 0, lastOffset: 5, items: [row('/', 'redacted')] } });
    });
  });

  it('passes errors through and unsubscribes early', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      expectObservable(cold<OffsetChunk<DecodedRecord>>('-#').pipe(anonymizeAddresses())).toBe('-#');
      const endless = cold<OffsetChunk<DecodedRecord>>('-a-', { a: chunk('1.1.1.1') });
      expectObservable(endless.pipe(anonymizeAddresses()), '^-!').toBe('-x', { x: { partition: 0, lastOffset: 5, items: [row('/', '1.1.1.X')] } });
      expectSubscriptions(endless.subscriptions).toBe('^-!');
    });
  });

  it('anonymizes addresses inside url by default, counts them, and keeps URLs verbatim with anonymizeUrls false', () => {
    const withUrl = (url: string): DecodedRecord => ({ ...record('10.77.1.2'), url });
    const input: OffsetChunk<DecodedRecord> = { partition: 0, lastOffset: 5, items: [withUrl('/p?ip=10.77.1.2'), withUrl('/x/[2001:db8:1:2::9]/y'), withUrl('/plain.js')] };
    let changed = 0;
    newTestScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('a|', { a: input }).pipe(anonymizeAddresses({ onUrlAddress: () => changed++ }))).toBe('a|', {
        a: { partition: 0, lastOffset: 5, items: [row('/p?ip=10.77.1.X', '10.77.1.X'), row('/x/[2001:db8:1::X]/y', '10.77.1.X'), row('/plain.js', '10.77.1.X')] },
      });
      expectObservable(cold('a|', { a: input }).pipe(anonymizeAddresses({ anonymizeUrls: false }))).toBe('a|', {
        a: { partition: 0, lastOffset: 5, items: [row('/p?ip=10.77.1.2', '10.77.1.X'), row('/x/[2001:db8:1:2::9]/y', '10.77.1.X'), row('/plain.js', '10.77.1.X')] },
      });
    });
    expect(changed).toBe(2);
  });

  it('passes the other fields of a decoded chunk (rejected, sources) through', () => {
    const rejected = [{ message: { partition: 0, offset: 4, value: null }, error: new DecodeError('bad') }];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const input = { ...chunk('1.2.3.4'), rejected, sources: [] };
      expectObservable(cold('a|', { a: input }).pipe(anonymizeAddresses())).toBe('a|', { a: { partition: 0, lastOffset: 5, items: [row('/', '1.2.3.X')], rejected, sources: [] } });
    });
  });
});
