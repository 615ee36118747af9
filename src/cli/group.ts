import readline from 'node:readline/promises';
import type { Command } from 'commander';
import { action, group, parseTags, type ActionEnv } from './command.js';
import { CliError } from './errors.js';
import { RESOURCE_GROUPS_API_VERSION } from './keyvault.js';

interface ArmResourceGroup {
  id: string;
  name: string;
  type: string;
  location: string;
  managedBy?: string | null;
  tags?: Record<string, string> | null;
  properties?: { provisioningState?: string };
}

/** A resource group as az 2.45 prints it: every field present, `null` when absent. */
const groupOutput = (g: ArmResourceGroup) => ({
  id: g.id,
  location: g.location,
  managedBy: g.managedBy ?? null,
  name: g.name,
  properties: { provisioningState: g.properties?.provisioningState ?? 'Succeeded' },
  tags: g.tags && Object.keys(g.tags).length ? g.tags : null,
  type: g.type,
});

/** az's `-n/--name/-g/--resource-group`: one argument, four spellings. */
function groupName(opts: { name?: string; resourceGroup?: string }): string {
  const name = opts.name ?? opts.resourceGroup;
  if (!name) throw new CliError('the following arguments are required: --name/-n/--resource-group/-g', 2);
  return name;
}

const groupsPath = (env: ActionEnv) => `/subscriptions/${env.context().subscriptionId()}/resourcegroups`;
const groupPath = (env: ActionEnv, name: string) => `${groupsPath(env)}/${encodeURIComponent(name)}?api-version=${RESOURCE_GROUPS_API_VERSION}`;

/** knack's prompt_y_n: asks on a terminal; without one, --yes is required. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new CliError('Unable to prompt for confirmation as no tty available. Use --yes.');
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} (y/n): `)).trim());
  } finally {
    rl.close();
  }
}

export function registerGroupCommands(program: Command) {
  const groups = group(program, 'group', 'Manage resource groups');

  groups.command('create')
    .description('Create a new resource group, or update an existing one')
    .option('-n, --name <name>', 'name of the new resource group')
    .option('-g, --resource-group <name>', 'same as --name')
    .requiredOption('-l, --location <location>', 'location')
    .option('--tags [tags...]', 'space-separated tags: key[=value] [key[=value] ...]')
    .action(action(async (opts: { name?: string; resourceGroup?: string; location: string; tags?: string[] }, env) =>
      groupOutput(await env.context().management<ArmResourceGroup>('PUT', groupPath(env, groupName(opts)), {
        body: { location: opts.location, tags: parseTags(opts.tags) },
      }))));

  groups.command('show')
    .description('Get a resource group')
    .option('-n, --name <name>', 'name of the resource group')
    .option('-g, --resource-group <name>', 'same as --name')
    .action(action(async (opts: { name?: string; resourceGroup?: string }, env) => groupOutput(await env.context().management<ArmResourceGroup>('GET', groupPath(env, groupName(opts))))));

  groups.command('list')
    .description('List resource groups')
    .option('--tag <tag>', 'a single tag in key[=value] format')
    .action(action(async (opts: { tag?: string }, env) => {
      const { value } = await env.context().management<{ value: ArmResourceGroup[] }>('GET', `${groupsPath(env)}?api-version=${RESOURCE_GROUPS_API_VERSION}`);
      const [tagName, tagValue] = Object.entries(parseTags(opts.tag === undefined ? undefined : [opts.tag]) ?? {})[0] ?? [];
      const tagged = tagName === undefined ? value : value.filter((g) => g.tags && tagName in g.tags && (tagValue === '' || g.tags[tagName] === tagValue));
      return tagged.map(groupOutput);
    }));

  groups.command('delete')
    .description('Delete a resource group and (softly) the vaults in it')
    .option('-n, --name <name>', 'name of the resource group')
    .option('-g, --resource-group <name>', 'same as --name')
    .option('-y, --yes', 'do not prompt for confirmation')
    .option('--no-wait', 'do not wait for the deletion to finish (it always finishes at once)')
    .action(action(async (opts: { name?: string; resourceGroup?: string; yes?: boolean }, env) => {
      const name = groupName(opts);
      if (!opts.yes && !(await confirm('Are you sure you want to perform this operation?'))) return undefined;
      await env.context().management('DELETE', groupPath(env, name));
      return undefined;
    }));

  return groups;
}
