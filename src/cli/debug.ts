import type { Command } from 'commander';
import { action, group } from './command.js';

/** Administrator tools for tests and demos. */
export function registerDebugCommands(program: Command) {
  const clock = group(group(program, 'debug', 'Administrator tools for tests and demos'), 'clock', 'The service clock');
  clock.command('advance')
    .description('Advance the service clock (object lifecycles, retention and purge), e.g. `coffer debug clock advance 91d`')
    .argument('<duration>', 'how far: 91d, 12h, 30m, 10s or a sum like 1d12h')
    .action(action(async (_opts, env) => {
      const duration = env.args[0];
      return env.context().management('POST', '/coffer/admin/clock/advance', { body: { advance: duration } });
    }));
}
