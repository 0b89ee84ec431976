/**
 * Imported first by main.ts, so that `run` re-executes itself with its memory settings
 * (memoryBound.ts) before the rest of the command line is evaluated.
 */
import { boundMemory } from './memoryBound.ts';

await boundMemory();
