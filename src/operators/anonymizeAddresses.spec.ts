import { describe, expect, it } from 'vitest';
import type { OffsetChunk } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
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
});
