import type { Command } from 'commander';
import { describeSetting, flagName, loadConfig, type AppConfig, type SettingName } from '../config.ts';

/** Adds `--kafka-brokers <value>` etc. for each setting, documented with its env variable. */
export function withSettings(command: Command, settings: readonly SettingName[]): Command {
  for (const setting of settings) {
    command.option(`${flagName(setting)} <value>`, `${describeSetting(setting)} [env ${setting}]`);
  }
  return command;
}

export function configFrom(command: Command): AppConfig {
  return loadConfig(process.env, command.opts());
}
