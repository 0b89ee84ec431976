#!/usr/bin/env node
// The entry point stays plain JavaScript so that an old Node gets a clear message instead
// of a syntax error: the sources are TypeScript, run by Node's own type stripping.
import { spawnSync } from 'node:child_process';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `anonymizer: Node ${process.versions.node} is too old; it needs Node 22.12 or newer (24 recommended).\n` +
      '  Run it through npm (`npm start`, `npx anonymizer`), which uses the Node 24 installed in node_modules.\n',
  );
  process.exit(2);
}
if (!process.features.typescript) {
  // Node 22.12–22.17 strip types only behind a flag: run again with it.
  const flags = ['--experimental-strip-types', '--disable-warning=ExperimentalWarning'];
  const child = spawnSync(process.execPath, [...flags, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(child.status ?? 1);
}
await import('../src/cli/main.ts');
