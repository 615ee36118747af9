import { Command, CommanderError } from 'commander';
import { installLocalhostResolver } from '../net/localhost-dns.js';
import { applyGlobalOptions, group, refuseOptionLikeValues } from './command.js';
import { CliError } from './errors.js';
import { registerLoginCommands } from './login.js';
import { registerKeyVaultCommands } from './keyvault.js';
import { registerKeyVaultSecretCommands } from './keyvault-secret.js';
import { registerKeyVaultKeyCommands } from './keyvault-key.js';
import { registerKeyVaultCertificateCommands } from './keyvault-certificate.js';
import { registerGroupCommands } from './group.js';
import { registerRoleCommands } from './role.js';
import { registerDebugCommands } from './debug.js';
import { registerAdCommands } from './ad.js';
import { registerIdentityCommands } from './identity.js';
import { registerRunCommands } from './run.js';
import { registerMonitorCommands } from './monitor.js';
import { registerEventGridCommands } from './eventgrid.js';
import { registerNetworkCommands } from './network.js';

installLocalhostResolver();

const program = new Command('coffer')
  .description('Coffer: a self-hosted, Azure Key Vault-compatible service (az-compatible CLI)')
  .showHelpAfterError('(add --help for usage)')
  // Commander's own usage errors print like az's and exit 2, as argparse does; help exits 0.
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'ERROR: ')) })
  .exitOverride();

// One line per command family; each family registers its commands (and groups) from its own file.
// `server …` loads the whole service (Fastify, storage engines, crypto); every other command starts without it.
if (process.argv[2] === 'server') (await import('./server.js')).registerServerCommands(program);
else group(program, 'server', 'Run Coffer (see `coffer server start --help`)');
registerLoginCommands(program);
registerKeyVaultCommands(program);
registerKeyVaultSecretCommands(program);
registerKeyVaultKeyCommands(program);
registerKeyVaultCertificateCommands(program);
registerGroupCommands(program);
registerRoleCommands(program);
registerDebugCommands(program);
registerAdCommands(program);
registerIdentityCommands(program);
registerRunCommands(program);
registerMonitorCommands(program);
registerEventGridCommands(program);
registerNetworkCommands(program);
applyGlobalOptions(program, ['server']);
refuseOptionLikeValues(program);

program.parseAsync(process.argv).catch((err) => {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  process.stderr.write(`ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof CliError ? err.exitCode : 1);
});
