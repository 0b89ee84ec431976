import { describe, expect, it } from 'vitest';
import { HEAP_FLAGS, relaunchFor, RELAUNCHED_ENV, type ProcessView } from './memoryBound.ts';

const NODE = '/usr/bin/node';
const BIN = '/app/bin/anonymizer.js';
const view = (args: string[], env: Record<string, string> = {}, execArgv: string[] = [], platform: NodeJS.Platform = 'linux'): ProcessView => ({ platform, argv: [NODE, BIN, ...args], execArgv, env });
const BOUND = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };

describe('relaunchFor: when `run` re-executes itself, and with what', () => {
  const cases: Array<[string, ProcessView, { args: string[]; env: Record<string, string> } | undefined]> = [
    ['run with nothing set: both glibc settings, the heap cap, and the marker', view(['run']), { args: [NODE, ...HEAP_FLAGS, BIN, 'run'], env: { ...BOUND, [RELAUNCHED_ENV]: '1' } }],
    ['run --drain keeps its arguments and the caller environment', view(['run', '--drain'], { PATH: '/bin' }), { args: [NODE, ...HEAP_FLAGS, BIN, 'run', '--drain'], env: { PATH: '/bin', ...BOUND, [RELAUNCHED_ENV]: '1' } }],
    ['node flags stay, after the heap cap', view(['run'], {}, ['--enable-source-maps']), { args: [NODE, ...HEAP_FLAGS, '--enable-source-maps', BIN, 'run'], env: { ...BOUND, [RELAUNCHED_ENV]: '1' } }],
    ['a value the caller set is kept; only the missing one is added', view(['run'], { MALLOC_ARENA_MAX: '4' }), { args: [NODE, ...HEAP_FLAGS, BIN, 'run'], env: { MALLOC_ARENA_MAX: '4', MALLOC_MMAP_THRESHOLD_: '131072', [RELAUNCHED_ENV]: '1' } }],
    ['an empty value counts as missing', view(['run'], { MALLOC_ARENA_MAX: '' , MALLOC_MMAP_THRESHOLD_: '' }), { args: [NODE, ...HEAP_FLAGS, BIN, 'run'], env: { ...BOUND, [RELAUNCHED_ENV]: '1' } }],
    ['a heap cap in NODE_OPTIONS is kept (no second flag), the young-generation cap added', view(['run'], { NODE_OPTIONS: '--max-old-space-size=512' }), { args: [NODE, '--max-semi-space-size=16', BIN, 'run'], env: { NODE_OPTIONS: '--max-old-space-size=512', ...BOUND, [RELAUNCHED_ENV]: '1' } }],
    ['a heap cap on the command line is kept', view(['run'], {}, ['--max_old_space_size=300']), { args: [NODE, '--max-semi-space-size=16', '--max_old_space_size=300', BIN, 'run'], env: { ...BOUND, [RELAUNCHED_ENV]: '1' } }],
    ['both heap flags given, the glibc settings set: no re-execution', view(['run'], BOUND, ['--max-semi-space-size=8', '--max-old-space-size=300']), undefined],
    ['the old heap cap alone (npm start before the young-generation cap): re-executed with it', view(['run'], { ...BOUND, NODE_OPTIONS: '--max-old-space-size=192' }), { args: [NODE, '--max-semi-space-size=16', BIN, 'run'], env: { ...BOUND, NODE_OPTIONS: '--max-old-space-size=192', [RELAUNCHED_ENV]: '1' } }],
    ['everything set (npm start, the image): no re-execution', view(['run'], { ...BOUND, NODE_OPTIONS: '--max-old-space-size=192 --max-semi-space-size=16' }), undefined],
    ['already re-executed: never again, whatever the environment says', view(['run'], { [RELAUNCHED_ENV]: '1' }), undefined],
    ['an empty marker counts as unset', view(['run'], { [RELAUNCHED_ENV]: '' }), { args: [NODE, ...HEAP_FLAGS, BIN, 'run'], env: { ...BOUND, [RELAUNCHED_ENV]: '1' } }],
    ['other commands run as they are', view(['produce', '--rate', '10']), undefined],
    ['no command (help, version)', view(['--version']), undefined],
    ['not Linux: the settings are glibc\'s', view(['run'], {}, [], 'darwin'), undefined],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(relaunchFor(input)).toEqual(expected);
  });
});
