import { describe, expect, it } from 'vitest';
import { describeConnectFailure, isTlsFailure } from './connectFailure.ts';

/** kafkajs's shapes: a retry wrapper whose `cause` is the connection error carrying the socket's code. */
const kafkajs = (inner: Record<string, unknown>) => Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: Object.assign(new Error(String(inner.message ?? 'Connection error')), inner) });
/** undici's shape: `fetch failed`-style wrapper, the socket error as `cause`. */
const undici = (code: string) => Object.assign(new Error('connect failed'), { cause: Object.assign(new Error(code), { code }) });

describe('describeConnectFailure', () => {
  it.each([
    ['refused', kafkajs({ name: 'KafkaJSConnectionError', code: 'ECONNREFUSED' }), /^connection refused$/, false],
    ['not resolvable', kafkajs({ name: 'KafkaJSConnectionError', code: 'ENOTFOUND' }), /^host not resolvable \(ENOTFOUND\)$/, false],
    ['DNS try again', undici('EAI_AGAIN'), /^host not resolvable/, false],
    ['self-signed CA not given', kafkajs({ name: 'KafkaJSConnectionError', code: 'SELF_SIGNED_CERT_IN_CHAIN' }), /^certificate not trusted \(SELF_SIGNED_CERT_IN_CHAIN\)/, true],
    ['leaf not verifiable', undici('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), /^certificate not trusted/, true],
    ['wrong host name', undici('ERR_TLS_CERT_ALTNAME_INVALID'), /^certificate is not for this host name/, true],
    ['expired', undici('CERT_HAS_EXPIRED'), /^certificate expired/, true],
    ['client certificate required', kafkajs({ name: 'KafkaJSConnectionError', code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }), /^TLS handshake failed \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\)$/, true],
    ['SASL refused', Object.assign(new Error('SASL SCRAM SHA512 authentication failed: Authentication failed'), { name: 'KafkaJSSASLAuthenticationError' }), /^authentication failed \(SASL SCRAM SHA512/, false],
    ['mechanism not enabled', kafkajs({ name: 'KafkaJSProtocolError', type: 'UNSUPPORTED_SASL_MECHANISM' }), /does not enable this SASL mechanism/, false],
    ['closed before an answer', kafkajs({ name: 'KafkaJSConnectionClosedError', message: 'Closed connection' }), /^the connection was closed before the broker answered/, false],
    ['connection timeout', kafkajs({ name: 'KafkaJSConnectionError', message: 'Connection timeout' }), /^no answer \(connection timed out\)$/, false],
    ['reset', undici('ECONNRESET'), /^connection closed by the peer \(ECONNRESET\)/, false],
    ['not authorized', kafkajs({ name: 'KafkaJSProtocolError', type: 'TOPIC_AUTHORIZATION_FAILED' }), /^not authorized \(TOPIC_AUTHORIZATION_FAILED\)$/, false],
    ['unknown: the outermost message, one line', new Error('something odd\nsecond line'), /^something odd$/, false],
  ])('%s', (_, error, expected, tls) => {
    expect(describeConnectFailure(error)).toMatch(expected);
    expect(isTlsFailure(error)).toBe(tls);
  });

  it('a cyclic cause chain ends', () => {
    const error = new Error('loop') as Error & { cause?: unknown };
    error.cause = error;
    expect(describeConnectFailure(error)).toBe('loop');
  });
});
