/**
 * Why a connection to a peer (a Kafka broker, ClickHouse or its proxy) failed, in a few
 * words an operator can act on: read from the error's code, kafkajs's error name or type,
 * or a socket/TLS code anywhere on its cause chain. Pure: table-tested in
 * connectFailure.test.ts.
 */

const NOT_RESOLVABLE = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const TIMED_OUT = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

interface Link {
  readonly name?: string;
  readonly code?: unknown;
  readonly type?: string;
  readonly message?: string;
}

function* chain(error: unknown): Generator<Link> {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 6; depth++) {
    yield current as Link;
    const next = (current as { cause?: unknown; originalError?: unknown }).cause ?? (current as { originalError?: unknown }).originalError;
    if (next === current) return;
    current = next;
  }
}

/** The first link's answer wins, from the outermost wrapper inwards. */
function describeLink(link: Link): string | undefined {
  const code = typeof link.code === 'string' ? link.code : undefined;
  if (link.name === 'KafkaJSSASLAuthenticationError' || link.type === 'SASL_AUTHENTICATION_FAILED') return `authentication failed (${link.message ?? 'SASL'})`;
  if (link.type === 'UNSUPPORTED_SASL_MECHANISM') return 'the broker does not enable this SASL mechanism (KAFKA_SASL_MECHANISM)';
  if (link.type === 'ILLEGAL_SASL_STATE') return 'the listener does not expect SASL (KAFKA_SECURITY_PROTOCOL)';
  if (link.type === 'TOPIC_AUTHORIZATION_FAILED' || link.type === 'GROUP_AUTHORIZATION_FAILED' || link.type === 'CLUSTER_AUTHORIZATION_FAILED') return `not authorized (${link.type})`;
  if (link.name === 'KafkaJSConnectionClosedError') return 'the connection was closed before the broker answered (not a Kafka listener, or a TLS listener reached without TLS?)';
  if (code === undefined) {
    if (/connection timeout/i.test(link.message ?? '')) return 'no answer (connection timed out)';
    return undefined;
  }
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (NOT_RESOLVABLE.has(code)) return `host not resolvable (${code})`;
  if (UNTRUSTED.has(code)) return `certificate not trusted (${code}): set the CA that signed it`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `certificate is not for this host name (${code})`;
  if (EXPIRED.has(code)) return `certificate expired or not yet valid (${code})`;
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO') return `TLS handshake failed (${code})`;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return `connection closed by the peer (${code}): a TLS listener reached without TLS, or the other way round?`;
  if (TIMED_OUT.has(code)) return `no answer (${code})`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `host unreachable (${code})`;
  return undefined;
}

export function describeConnectFailure(error: unknown): string {
  const links = [...chain(error)];
  // Innermost first: a wrapper's message ("Connection error: …") says less than its cause's code.
  for (const link of links.reverse()) {
    const described = describeLink(link);
    if (described !== undefined) return described;
  }
  const first = links.at(-1);
  return (first?.message ?? String(error)).split('\n')[0]!.slice(0, 300);
}

/** Whether TLS refused the peer (certificate or handshake): a configuration problem, not a passing outage. */
export function isTlsFailure(error: unknown): boolean {
  for (const link of chain(error)) {
    const code = typeof link.code === 'string' ? link.code : '';
    if (UNTRUSTED.has(code) || EXPIRED.has(code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code.startsWith('ERR_SSL_') || code === 'EPROTO') return true;
  }
  return false;
}
