import os from 'node:os';
import path from 'node:path';

export interface Locations {
  /** Data directory: key store, master key, audit logs, certificates. */
  home: string;
  /** The YAML config file (may not exist). */
  configFile: string;
}

export interface LocationInputs {
  homeFlag?: string;
  configFlag?: string;
  env: NodeJS.ProcessEnv;
  /** Injected for tests; defaults to the process's effective uid. */
  uid?: number;
}

/**
 * Where guardctl keeps its data and reads its config. --home / GUARDCTL_HOME hold both (config as
 * guardctl.yaml inside); otherwise root uses the FHS places and everyone else the XDG ones.
 */
export function resolveLocations({ homeFlag, configFlag, env, uid }: LocationInputs): Locations {
  const explicitHome = homeFlag ?? nonEmpty(env.GUARDCTL_HOME);
  const explicitConfig = configFlag ?? nonEmpty(env.GUARDCTL_CONFIG);
  if (explicitHome) {
    const home = path.resolve(explicitHome);
    return { home, configFile: path.resolve(explicitConfig ?? path.join(home, 'guardctl.yaml')) };
  }
  const isRoot = (uid ?? (process.getuid ? process.getuid() : 1000)) === 0;
  if (isRoot) {
    return { home: '/var/lib/guardctl', configFile: path.resolve(explicitConfig ?? '/etc/guardctl/guardctl.yaml') };
  }
  const userHome = env.HOME ?? os.homedir();
  const dataHome = nonEmpty(env.XDG_DATA_HOME) ?? path.join(userHome, '.local', 'share');
  const configHome = nonEmpty(env.XDG_CONFIG_HOME) ?? path.join(userHome, '.config');
  return {
    home: path.join(dataHome, 'guardctl'),
    configFile: path.resolve(explicitConfig ?? path.join(configHome, 'guardctl', 'guardctl.yaml')),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
