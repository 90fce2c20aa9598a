/** Opens the backend chosen by the configuration, for the CLI. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Backend, Config } from '@gq/common';
import { dataHome } from '@gq/common';

/** The command that starts a local worker: this Node and the agent's bin script. */
export function agentCommand(): string[] {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@gq/agent/package.json');
  return [process.execPath, join(dirname(pkg), 'bin', 'gq-agent.js')];
}

export async function openCliBackend(config: Config): Promise<Backend> {
  if (config.backend === 'local') {
    const { openLocalBackend } = await import('@gq/common/local/index');
    return openLocalBackend({ home: dataHome(config), agentCommand: agentCommand() });
  }
  const { openAwsCliBackend } = await import('./aws/backend.js');
  return openAwsCliBackend(config);
}
