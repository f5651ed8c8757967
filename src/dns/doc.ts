import { acceptedNames } from './env.js';
import type { ProviderEnvVar, ProviderMeta } from './types.js';

/**
 * docs/providers.md, rendered from the providers' metadata so that the page cannot drift from the code
 * (scripts/providers-doc.mjs prints it; test/dns/providers-doc.test.ts compares).
 */
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (names: string[]) => names.map((n) => `\`${n}\``).join(', ');

function varRow(v: ProviderEnvVar): string {
  const also = acceptedNames(v).filter((n) => n !== v.name);
  const kind = `${v.required ? 'yes' : 'no'}${v.secret ? ', secret' : ''}`;
  return `| \`${v.name}\` | ${code(also)} | ${kind} | ${cell(v.description)} |`;
}

function varTable(vars: ProviderEnvVar[]): string[] {
  if (vars.length === 0) return ['No settings.'];
  return ['| variable | also accepted | required | meaning |', '|---|---|---|---|', ...vars.map(varRow)];
}

function section(m: ProviderMeta): string[] {
  const parallel = m.parallel ? 'several records are written at once' : 'records are written one at a time';
  return [
    `## ${m.name}`,
    '',
    `${m.description.replace(/\.$/, '')}. Reference: <${m.docs}>.`,
    `Propagation is awaited up to ${m.propagationTimeoutSec} s, checking every ${m.pollIntervalSec} s (unless --dns-timeout / --dns-interval); ${parallel}.`,
    '',
    ...varTable(m.env),
    '',
  ];
}

export function renderProvidersDoc(providers: ProviderMeta[], httpEnv: ProviderEnvVar[]): string {
  const lines = [
    '# DNS providers',
    '',
    '<!-- Generated from the providers\' metadata: node --import tsx scripts/providers-doc.mjs > docs/providers.md',
    '     (test/dns/providers-doc.test.ts fails when this file and the code disagree). -->',
    '',
    '`guardctl cert issue --dns NAME` proves control of a domain with a DNS-01 TXT record written through one of',
    'these providers, configured from environment variables (acme.sh\'s and lego\'s names are accepted too).',
    'What they all do:',
    '',
    '- A secret can also come from a file: set `NAME_FILE` to its path (the file\'s content, trimmed, is the value),',
    '  for example `Ali_Secret_FILE=/run/credentials/guardctl.service/ali-secret`. Secrets never appear in logs or errors.',
    '- Records are added and removed by value: other TXT values at the same name (an apex and its wildcard, another',
    '  order) are kept, adding a value that is already there changes nothing, and removing one that is gone is not an error.',
    '- The API providers find the zone through their own API, trying each suffix of the name, longest first:',
    '  `_acme-challenge.a.b.example.com` is written in `b.example.com` if the account has that zone, else in `example.com`.',
    '- Their requests are retried on 429, 5xx and network errors with exponential backoff and jitter; the final error',
    '  names the provider, the action and the last status. Errors carry the code `GUARD_E_DNS_PROVIDER`.',
    '',
    '| provider | what it talks to | writes at once | propagation timeout / poll |',
    '|---|---|---|---|',
    ...providers.map((m) => `| [${m.name}](#${m.name}) | ${cell(m.description)} | ${m.parallel ? 'yes' : 'no'} | ${m.propagationTimeoutSec} s / ${m.pollIntervalSec} s |`),
    '',
    '## Settings shared by the API providers',
    '',
    ...varTable(httpEnv),
    '',
    ...providers.flatMap(section),
  ];
  return `${lines.join('\n').trimEnd()}\n`;
}
