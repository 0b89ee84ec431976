/**
 * The package as a user installs it: `npm pack` of this checkout (its prepack builds dist/)
 * into `dir`, and the tarball installed into a fresh project `dir/consumer`, with the
 * registry's packages taken from npm's cache when it has them. Used by
 * test/package/tarball.test.ts and by `npm run soak -- --launch npx`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** What a user's shell has: this Node first on PATH, for the bin's `#!/usr/bin/env node`. */
export const USER_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' };

export interface PackResult {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly entryCount: number;
  readonly files: ReadonlyArray<{ path: string }>;
}

export interface InstalledPackage {
  readonly packed: PackResult;
  /** The consumer project, with the package in its node_modules. */
  readonly project: string;
}

/** Packs the checkout and installs the tarball (plus `alsoInstall`) into `dir/consumer`. */
export function packAndInstall(dir: string, alsoInstall: readonly string[] = []): InstalledPackage {
  // prepack's build log shares stdout with --json: the JSON is the last part.
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, env: USER_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 90_000 });
  const packed = (JSON.parse(out.slice(out.indexOf('[\n'))) as PackResult[])[0]!;
  const project = join(dir, 'consumer');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(dir, packed.filename), ...alsoInstall], {
    cwd: project,
    env: USER_ENV,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 90_000,
  });
  return { packed, project };
}
