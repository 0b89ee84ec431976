import { expect } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

/** The ConfigError `loadConfig(env)` throws; fails the test if it throws none, or one that is not a single line. */
export function configErrorOf(env: Record<string, string>): ConfigError {
  let error: unknown;
  try {
    loadConfig(env);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as Error).message).not.toContain('\n');
  return error as ConfigError;
}
