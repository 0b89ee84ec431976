#!/usr/bin/env node
// The entry point stays plain JavaScript so that an old Node gets a clear message instead
// of a syntax error.
//
// Installed from the package, it runs the compiled dist/. In a checkout (src/ beside bin/:
// the package does not ship src/), it runs the TypeScript sources by Node's own type
// stripping, with no build step. The choice is made by src/, not by dist/: a dist/ left
// in a checkout by an earlier `npm run build` may be stale, and must never shadow src/.
//
// `run` then re-executes itself once with its allocator settings and heap cap when they
// are missing (src/cli/memoryBound.ts), whatever started it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `anonymizer: Node ${process.versions.node} is too old; it needs Node 22.12 or newer (24 recommended).\n` +
      '  Run it through npm (`npm start`, `npx anonymizer`), which uses the Node 24 installed in node_modules.\n',
  );
  process.exit(2);
}
const checkout = existsSync(new URL('../src/cli/main.ts', import.meta.url));
if (checkout && !process.features.typescript) {
  // Node 22.12–22.17 strip types only behind a flag: run again with it (in place when Node can).
  const args = ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', ...process.execArgv, ...process.argv.slice(1)];
  if (typeof process.execve === 'function') process.execve(process.execPath, [process.execPath, ...args]);
  const child = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(child.status ?? 1);
}
// The re-execution first, before the command line's module graph is loaded: loading it
// twice would add a second or more to every start of `run`.
await import(checkout ? '../src/cli/relaunch.ts' : '../dist/cli/relaunch.js');
await import(checkout ? '../src/cli/main.ts' : '../dist/cli/main.js');
