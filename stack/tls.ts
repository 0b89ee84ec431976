// TLS material and SCRAM credentials for the secured local stack (STACK_SECURITY=tls), made
// with openssl into `<dir>` (STACK_DIR/tls): a private CA, the broker's and the proxy's
// server certificates (SAN IP:127.0.0.1 and DNS:localhost), and a client certificate for
// the broker's mTLS listener. All keys are unencrypted PKCS#8 PEM, which Kafka reads as a
// `PEM` keystore directly (no keytool, no JKS). Files that exist are kept, so `stack:up`
// run twice, and a broker formatted with these credentials, keep working.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The SCRAM user created at the broker's storage format time. */
export const SCRAM_USERNAME = 'anonymizer';
export const SCRAM_MECHANISM = 'SCRAM-SHA-512';

export interface StackTls {
  readonly dir: string;
  /** The CA every client trusts (`KAFKA_SSL_CA_FILE`, `CLICKHOUSE_CA_FILE`). */
  readonly caFile: string;
  /** The broker's key and certificate in one PEM file: Kafka's `ssl.keystore.location`. */
  readonly brokerKeystoreFile: string;
  readonly proxyCertFile: string;
  readonly proxyKeyFile: string;
  /** Client certificate and key for the mTLS (`SSL`) listener. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly username: string;
  /** The SCRAM password, alone in a 0600 file (`KAFKA_SASL_PASSWORD_FILE`). */
  readonly passwordFile: string;
  /** A password that is not the user's, for tests of a refused login. */
  readonly wrongPasswordFile: string;
}

const DAYS = '825';
const SERVER_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=IP:127.0.0.1,DNS:localhost',
].join('\n');
const CLIENT_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=clientAuth',
].join('\n');

function openssl(cwd: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`openssl ${args[0]} failed: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
}

/** An EC P-256 key and a certificate for `subject`, signed by the CA in `dir`. */
function issue(dir: string, name: string, subject: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
  openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', DAYS, '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  chmodSync(join(dir, `${name}.key`), 0o600);
}

// No trailing newline: a reader that keeps it whole and one that strips it agree.
function writeSecret(file: string): void {
  if (!existsSync(file)) writeFileSync(file, randomBytes(18).toString('base64url'), { mode: 0o600 });
}

/** Make (or reuse) the CA, the certificates and the SCRAM password files in `dir`. */
export function ensureStackTls(dirArg: string): StackTls {
  const dir = resolve(dirArg);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const at = (f: string): string => join(dir, f);
  if (!existsSync(at('ca.crt')) || !existsSync(at('ca.key'))) {
    openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'ca.key', '-out', 'ca.crt', '-days', DAYS, '-subj', '/CN=http-log-anonymizer stack CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    chmodSync(at('ca.key'), 0o600);
  }
  for (const [name, subject, ext] of [
    ['broker', '/CN=localhost', SERVER_EXT],
    ['proxy', '/CN=localhost', SERVER_EXT],
    ['client', '/CN=stack-client', CLIENT_EXT],
  ] as const) {
    if (!existsSync(at(`${name}.crt`)) || !existsSync(at(`${name}.key`))) issue(dir, name, subject, ext);
  }
  if (!existsSync(at('broker.pem'))) {
    writeFileSync(at('broker.pem'), readFileSync(at('broker.key'), 'utf8') + readFileSync(at('broker.crt'), 'utf8'), { mode: 0o600 });
  }
  writeSecret(at('kafka-password'));
  writeSecret(at('kafka-wrong-password'));
  return {
    dir,
    caFile: at('ca.crt'),
    brokerKeystoreFile: at('broker.pem'),
    proxyCertFile: at('proxy.crt'),
    proxyKeyFile: at('proxy.key'),
    clientCertFile: at('client.crt'),
    clientKeyFile: at('client.key'),
    username: SCRAM_USERNAME,
    passwordFile: at('kafka-password'),
    wrongPasswordFile: at('kafka-wrong-password'),
  };
}

/** A secret file's value: its content without the trailing newline. */
export function readSecret(file: string): string {
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
}
