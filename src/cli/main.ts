import { Command } from 'commander';
import { installLocalhostResolver } from '../net/localhost-dns.js';
import { registerServerCommands } from './server.js';

installLocalhostResolver();

const program = new Command('coffer')
  .description('Coffer: a self-hosted, Azure Key Vault-compatible service (az-compatible CLI)')
  .showHelpAfterError();

registerServerCommands(program);

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
