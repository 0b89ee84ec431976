/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: Debian's
 * `docker-compose` (scripts/ensure-tools.sh installs it) validates the file offline and
 * prints it normalized, and the assertions below read that normalized form, so they see
 * what Compose itself would run (interpolated, defaults applied, paths made absolute).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { query as chdbQuery } from 'chdb';
import { describe, expect, it } from 'vitest';
import { CLICKHOUSE_PLUGIN_VERSION } from '../grafana/buildDashboard.ts';
import { PINNED_KAFKA_VERSION } from '../../stack/kafka.ts';
import { HEAP_FLAGS } from '../../src/cli/memoryBound.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const COMPOSE_FILE = resolve(ROOT, 'docker-compose.yml');
const DOCKERFILE = resolve(ROOT, 'Dockerfile');

type Port = string | number | { published?: string | number; target: string | number; host_ip?: string };
type Volume = string | { type: string; source?: string; target: string; read_only?: boolean };
interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  ports?: Port[];
  volumes?: Volume[];
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  command?: string | string[];
  entrypoint?: string | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
}
interface ComposeConfig {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/**
 * Variables the compose file reads from the caller's environment: removed, so that the
 * defaults written in the file are what is checked, whatever the shell running the tests has.
 */
const INTERPOLATED = ['KAFKA_ADVERTISED_HOST', 'KAFKA_PRODUCER_DELAY_MS', 'PROXY_RATE', 'PROXY_MAX_BODY', 'PROXY_MIN_INTERVAL_MS', 'PROXY_MAX_BODY_BYTES'];
const composeEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !INTERPOLATED.includes(name) && !name.startsWith('COMPOSE_')));

function dockerCompose(args: string[]) {
  const result = spawnSync('docker-compose', ['-f', COMPOSE_FILE, ...args], { cwd: ROOT, env: composeEnv(), encoding: 'utf8' });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error('docker-compose is not installed: run `bash scripts/ensure-tools.sh` (it installs Debian\'s docker-compose), then run this test again');
  }
  if (result.error) throw result.error;
  return result;
}

let normalized: ComposeConfig | undefined;
/** `docker-compose config` as an object: v2 prints JSON itself; Debian's v1 prints YAML, read with the PyYAML it depends on. */
function config(): ComposeConfig {
  if (normalized) return normalized;
  const json = dockerCompose(['config', '--format', 'json']);
  // v1 answers an unknown option with its usage and exit code 0: trust JSON only.
  if (json.status === 0 && json.stdout.trimStart().startsWith('{')) return (normalized = JSON.parse(json.stdout) as ComposeConfig);
  const yaml = dockerCompose(['config']);
  if (yaml.status !== 0) throw new Error(`docker-compose config failed:\n${yaml.stderr}`);
  const toJson = spawnSync('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: yaml.stdout, encoding: 'utf8' });
  if (toJson.status !== 0) throw new Error(`cannot read docker-compose's YAML with python3 + PyYAML (a dependency of Debian's docker-compose):\n${toJson.stderr}`);
  return (normalized = JSON.parse(toJson.stdout) as ComposeConfig);
}

function service(name: string): Service {
  const found = config().services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
}

function environment(name: string): Record<string, string> {
  const env = service(name).environment ?? {};
  const entries = Array.isArray(env) ? env.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]) : Object.entries(env);
  return Object.fromEntries(entries.map(([key, value]) => [key, value === null || value === undefined ? '' : String(value)]));
}

/** Host ports a service publishes, from the short (`[ip:]host:container[/proto]`) or the long form. */
function publishedPorts(svc: Service): number[] {
  return (svc.ports ?? []).flatMap((port) => {
    if (typeof port === 'object') return port.published === undefined ? [] : [Number(port.published)];
    const parts = String(port).replace(/\/\w+$/, '').split(':');
    return parts.length >= 2 ? [Number(parts.at(-2))] : [];
  });
}

/** Each published port with the host address it binds ('' for all addresses). */
function portBindings(svc: Service): Array<{ published: number; hostIp: string }> {
  return (svc.ports ?? []).flatMap((port) => {
    if (typeof port === 'object') return port.published === undefined ? [] : [{ published: Number(port.published), hostIp: port.host_ip ?? '' }];
    const parts = String(port).replace(/\/\w+$/, '').split(':');
    return parts.length >= 2 ? [{ published: Number(parts.at(-2)), hostIp: parts.length === 3 ? parts[0]! : '' }] : [];
  });
}

interface Mount { source: string; target: string; bind: boolean }
function mounts(svc: Service): Mount[] {
  return (svc.volumes ?? []).map((volume) => {
    if (typeof volume === 'object') return { source: volume.source ?? '', target: volume.target, bind: volume.type === 'bind' };
    const [source = '', target = ''] = volume.split(':');
    return { source, target, bind: /^[./~]/.test(source) };
  });
}

const commandText = (svc: Service): string => [svc.entrypoint, svc.command].flat().filter((part) => part !== undefined).join(' ');

describe('docker-compose.yml', () => {
  it('is valid for docker-compose (`docker-compose config -q` exits 0)', () => {
    const result = dockerCompose(['config', '-q']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('has every service of the documented stack: Kafka, ClickHouse, the proxy, producer, anonymizer, Prometheus, Grafana, Kafka UI', () => {
    const names = Object.keys(config().services);
    for (const name of ['kafka', 'kafka-init', 'clickhouse', 'ch-proxy', 'producer', 'anonymizer', 'prometheus', 'grafana', 'kafka-ui']) expect(names).toContain(name);
  });

  it.each([
    ['kafka', 9092],
    ['ch-proxy', 8124],
    ['grafana', 3000],
    ['kafka-ui', 4000],
  ])('%s publishes host port %i', (name, port) => {
    expect(publishedPorts(service(name))).toContain(port);
  });

  it('publishes no host port twice', () => {
    const all = Object.values(config().services).flatMap(publishedPorts);
    expect(all.length).toBeGreaterThanOrEqual(4);
    expect(new Set(all).size).toBe(all.length);
  });

  it('bind-mounts only files and directories that exist in the repository', () => {
    const binds = Object.entries(config().services).flatMap(([name, svc]) => mounts(svc).filter((mount) => mount.bind).map((mount) => ({ name, ...mount })));
    const sources = binds.map((bind) => relative(ROOT, resolve(ROOT, bind.source)));
    // The ones the stack needs: if one goes missing from the file, this says which.
    for (const needed of ['etc/clickhouse/schema.sql', 'etc/ch-proxy/nginx.conf', 'etc/prometheus/prometheus.yml', 'etc/grafana/provisioning', 'etc/grafana/dashboards']) {
      expect(sources).toContain(needed);
    }
    for (const [index, bind] of binds.entries()) {
      const source = sources[index]!;
      expect(isAbsolute(source) || source.startsWith('..'), `${bind.name}: ${bind.source} is outside the repository`).toBe(false);
      expect(existsSync(resolve(ROOT, source)), `${bind.name}: ${source} does not exist`).toBe(true);
    }
  });

  it('declares every named volume it mounts', () => {
    const declared = Object.keys(config().volumes ?? {});
    const named = Object.values(config().services).flatMap((svc) => mounts(svc).filter((mount) => !mount.bind && mount.source !== '').map((mount) => mount.source));
    expect(named.length).toBeGreaterThan(0);
    for (const volume of named) expect(declared).toContain(volume);
  });

  it('builds every image it builds from ./Dockerfile at the repository root', () => {
    const building = Object.entries(config().services).filter(([, svc]) => svc.build !== undefined);
    expect(building.map(([name]) => name).sort()).toEqual(['anonymizer', 'producer']);
    for (const [, svc] of building) {
      const build = typeof svc.build === 'string' ? { context: svc.build } : svc.build!;
      const context = resolve(ROOT, build.context);
      expect(context).toBe(ROOT);
      expect(resolve(context, build.dockerfile ?? 'Dockerfile')).toBe(DOCKERFILE);
    }
    expect(existsSync(DOCKERFILE)).toBe(true);
  });

  it('gives Grafana the admin password `kafka` and the ClickHouse plugin, with provisioning mounted', () => {
    const env = environment('grafana');
    expect(env.GF_SECURITY_ADMIN_USER ?? 'admin').toBe('admin');
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toBe('kafka');
    // Installed once (before provisioning runs), at the version the panels' pluginVersion names.
    expect(env.GF_INSTALL_PLUGINS, 'GF_INSTALL_PLUGINS would install the plugin a second time').toBeUndefined();
    expect(env.GF_PLUGINS_PREINSTALL_SYNC).toBe(`grafana-clickhouse-datasource@${CLICKHOUSE_PLUGIN_VERSION}`);
    const dashboard = readFileSync(resolve(ROOT, 'etc/grafana/dashboards/http-log.json'), 'utf8');
    const versions = new Set([...dashboard.matchAll(/"pluginVersion": "([^"]+)"/g)].map((m) => m[1]));
    expect([...versions]).toEqual([CLICKHOUSE_PLUGIN_VERSION]);
    expect(mounts(service('grafana')).map((mount) => mount.target)).toContain('/etc/grafana/provisioning');
    const datasources = readFileSync(resolve(ROOT, 'etc/grafana/provisioning/datasources/datasources.yml'), 'utf8');
    expect(datasources).toMatch(/type:\s*grafana-clickhouse-datasource/);
    expect(datasources).toMatch(/host:\s*clickhouse\b/);
    expect(datasources).toMatch(/url:\s*http:\/\/prometheus:9090/);
    const provider = readFileSync(resolve(ROOT, 'etc/grafana/provisioning/dashboards/dashboards.yml'), 'utf8');
    const dashboards = mounts(service('grafana')).find((mount) => mount.source.endsWith('etc/grafana/dashboards'));
    expect(dashboards, 'etc/grafana/dashboards is not mounted').toBeDefined();
    expect(provider).toContain(`path: ${dashboards!.target}`);
  });

  it('runs the anonymizer with a /healthz healthcheck and its spool on a named volume', () => {
    const anonymizer = service('anonymizer');
    expect(anonymizer.healthcheck?.disable ?? false).toBe(false);
    expect([anonymizer.healthcheck?.test].flat().join(' ')).toContain(':9464/healthz');
    const spoolDir = environment('anonymizer').SPOOL_DIR;
    expect(spoolDir).toBeTruthy();
    const spool = mounts(anonymizer).find((mount) => mount.target === spoolDir);
    expect(spool, `nothing is mounted on SPOOL_DIR ${spoolDir}`).toBeDefined();
    expect(spool!.bind).toBe(false);
    expect(Object.keys(config().volumes ?? {})).toContain(spool!.source);
  });

  it('points the anonymizer at the proxy, the internal Kafka listener and 0.0.0.0 for metrics', () => {
    const env = environment('anonymizer');
    expect(env.CLICKHOUSE_URL).toBe('http://ch-proxy:8124');
    expect(env.KAFKA_BROKERS).toBe('kafka:29092');
    expect(environment('kafka').KAFKA_ADVERTISED_LISTENERS).toContain('//kafka:29092');
    expect(env.METRICS_HOST).toBe('0.0.0.0');
    for (const flag of HEAP_FLAGS) expect(env.NODE_OPTIONS).toContain(flag);
    expect(readFileSync(resolve(ROOT, 'etc/prometheus/prometheus.yml'), 'utf8')).toContain(`anonymizer:${env.METRICS_PORT ?? '9464'}`);
  });

  it('sets every placeholder of etc/ch-proxy/nginx.conf in ch-proxy, which renders it as the main nginx.conf', () => {
    const placeholders = [...readFileSync(resolve(ROOT, 'etc/ch-proxy/nginx.conf'), 'utf8').matchAll(/\$\{(\w+)\}/g)].map((match) => match[1]!);
    expect(new Set(placeholders)).toEqual(new Set(['PREFIX', 'PROXY_RATE', 'PROXY_MAX_BODY', 'PROXY_LISTEN', 'PROXY_PORT', 'UPSTREAM']));
    const env = environment('ch-proxy');
    for (const name of placeholders) expect(env[name], `ch-proxy does not set ${name}`).toBeTruthy();
    expect(env).toMatchObject({ PROXY_RATE: '1r/m', PROXY_MAX_BODY: '1m', PROXY_PORT: '8124', UPSTREAM: 'clickhouse:8123', NGINX_ENVSUBST_OUTPUT_DIR: '/etc/nginx' });
    const template = mounts(service('ch-proxy')).find((mount) => mount.source.endsWith('etc/ch-proxy/nginx.conf'));
    expect(template?.target).toBe('/etc/nginx/templates/nginx.conf.template');
  });

  it('runs the pinned Kafka (etc/kafka/pom.xml) in KRaft mode with the reference retention, and creates http_log with 3 partitions', () => {
    expect(service('kafka').image).toBe(`apache/kafka:${PINNED_KAFKA_VERSION}`);
    expect(service('kafka-init').image).toBe(`apache/kafka:${PINNED_KAFKA_VERSION}`);
    const env = environment('kafka');
    expect(env.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(env.KAFKA_LOG_RETENTION_MS).toBe('60000');
    const init = commandText(service('kafka-init'));
    expect(init).toMatch(/--topic http_log --partitions 3\b/);
    expect(init).toMatch(/--topic http_log_dlq\b/);
  });

  it('runs ClickHouse on the engine line the tests run (chdb\'s version())', () => {
    const engine = String(chdbQuery('SELECT version()', 'TabSeparated')).trim();
    const [major, minor] = engine.split('.');
    expect(engine).toMatch(/^\d+\.\d+\./);
    expect(service('clickhouse').image).toMatch(new RegExp(`^clickhouse/clickhouse-server:${major}\\.${minor}(\\.|$)`));
  });

  it('pins every image it pulls to a release (no latest, no bare major)', () => {
    const pulled = Object.entries(config().services).filter(([, svc]) => svc.build === undefined);
    expect(pulled.length).toBeGreaterThanOrEqual(7);
    for (const [name, svc] of pulled) {
      const tag = /:([^/:@]+)$/.exec(svc.image ?? '')?.[1];
      expect(tag, `${name}: ${svc.image} has no tag`).toBeDefined();
      expect(tag, `${name}: ${svc.image}`).toMatch(/^v?\d+\.\d+(\.\d+)*(-[a-z0-9.]+)?$/);
    }
  });

  it('runs the same images as STACK=containers (stack/containers.ts)', () => {
    const source = readFileSync(resolve(ROOT, 'stack/containers.ts'), 'utf8');
    // Kafka's tag follows the pinned version (a template literal there); the others are literals.
    const images = Object.fromEntries([...source.matchAll(/export const (\w+)_IMAGE = [`']([^`']+)[`']/g)].map((m) => [m[1], m[2]!.replace('${kafkaVersion()}', PINNED_KAFKA_VERSION)]));
    expect(images).toEqual({ KAFKA: service('kafka').image, CLICKHOUSE: service('clickhouse').image, NGINX: service('ch-proxy').image });
  });

  it('publishes Kafka UI on 127.0.0.1 only: it has no login and shows raw messages', () => {
    const bindings = portBindings(service('kafka-ui'));
    expect(bindings.length).toBeGreaterThan(0);
    for (const binding of bindings) expect(binding.hostIp, `kafka-ui publishes ${binding.published} on every address`).toBe('127.0.0.1');
  });

  it('sends ch-proxy\'s access and error logs to the container\'s stdout and stderr', () => {
    const conf = readFileSync(resolve(ROOT, 'etc/ch-proxy/nginx.conf'), 'utf8');
    const prefix = environment('ch-proxy').PREFIX!;
    const accessLog = /^\s*access_log\s+(\S+)/m.exec(conf)?.[1]?.replace('${PREFIX}', prefix);
    const errorLog = /^\s*error_log\s+(\S+)/m.exec(conf)?.[1]?.replace('${PREFIX}', prefix);
    expect(accessLog).toBe(`${prefix}/access.log`);
    expect(errorLog).toBe(`${prefix}/error.log`);
    const command = commandText(service('ch-proxy'));
    expect(command).toContain(`ln -sf /dev/stdout ${accessLog}`);
    expect(command).toContain(`ln -sf /dev/stderr ${errorLog}`);
    // …and then the image's own entrypoint, which renders the template, in the foreground.
    expect(command).toMatch(/exec \/docker-entrypoint\.sh nginx -g 'daemon off;'/);
  });

  it('applies etc/clickhouse/schema.sql at ClickHouse\'s first start', () => {
    const schema = mounts(service('clickhouse')).find((mount) => mount.source.endsWith('etc/clickhouse/schema.sql'));
    expect(schema?.target).toMatch(/^\/docker-entrypoint-initdb\.d\/[^/]+\.sql$/);
  });

  it('runs the producer at 1000 / KAFKA_PRODUCER_DELAY_MS records/s, 5 ms by default', () => {
    expect(environment('producer').KAFKA_PRODUCER_DELAY_MS).toBe('5');
    const command = commandText(service('producer'));
    expect(command).toContain('produce --rate');
    expect(command).toMatch(/1000 \/ delay/);
  });
});

describe('Dockerfile', () => {
  const text = () => readFileSync(DOCKERFILE, 'utf8');
  /** The instructions with a keyword, each on one line (continuations joined, comments dropped). */
  const instructions = (keyword: string) =>
    text()
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .join('\n')
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .filter((line) => new RegExp(`^${keyword}\\s`, 'i').test(line));

  it('is multi-stage, on node:24-bookworm-slim', () => {
    const from = instructions('FROM');
    expect(from.length).toBeGreaterThanOrEqual(2);
    for (const line of from) expect(line).toMatch(/^FROM node:24-bookworm-slim\b/);
  });

  it('installs production dependencies only, from the lock file', () => {
    expect(instructions('RUN').join('\n')).toMatch(/npm (ci|install) --omit=dev/);
    expect(instructions('COPY').find((line) => line.includes('package-lock.json'))).toBeDefined();
  });

  it('runs as a non-root user, with a healthcheck and the anonymizer as entry point', () => {
    const user = instructions('USER').at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER\s+(root|0)(:|\s|$)/);
    expect(instructions('HEALTHCHECK').join('\n')).toContain('/healthz');
    expect(instructions('ENTRYPOINT')).toEqual(['ENTRYPOINT ["node", "bin/anonymizer.js"]']);
  });

  it('copies every directory the runtime needs, and each exists', () => {
    const copied = instructions('COPY').filter((line) => !line.includes('--from')).flatMap((line) => line.split(/\s+/).slice(1, -1));
    for (const needed of ['package.json', 'package-lock.json', 'bin', 'src', 'schema', 'etc/clickhouse']) expect(copied).toContain(needed);
    for (const path of copied) expect(existsSync(resolve(ROOT, path)) && (statSync(resolve(ROOT, path)).isFile() || statSync(resolve(ROOT, path)).isDirectory()), `${path} does not exist`).toBe(true);
  });
});
