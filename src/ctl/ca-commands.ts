import { parseArgs } from 'node:util';
import { CA_ADMIN_PATHS, type CaStatus } from '../api/ca-admin.js';
import { AmbitError, ErrorCode } from '../errors.js';
import { fabricNetns } from '../local/layout.js';
import type { LocalState } from '../local/state.js';
import { loadState } from './local-common.js';
import { httpInNetns } from './netns-http.js';
import { parseOutputFormat, render, table } from './output.js';
import { configDump } from './proxy-commands.js';
import type { CliSettings } from './settings.js';

export const CA_USAGE = `Usage: ambit ca <status|rotate|drop-old-roots> [--name cluster] [-o table|json|yaml] [--force]

The mesh CA's roots and how to rotate them without breaking a connection:
  status           the roots peers trust, which one signs, and which root each proxy's certificates chain to
  rotate           start signing with a new root; the old one stays trusted, so every certificate keeps working
                   while workload certificates move to the new root as they renew (at half life)
  drop-old-roots   trust only the signing root; refused while a proxy still holds a certificate of an old
                   root (it would no longer be trusted by its peers), unless --force`;

/** The control plane's admin port (CA administration), on the loopback of the fabric namespace. */
const CP_ADMIN_PORT = 15010;

interface ProxyCert {
  readonly node: string;
  readonly identity: string;
  readonly root: string;
}

export async function caCommand(argv: readonly string[], s: CliSettings): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      name: { type: 'string' },
      output: { type: 'string', short: 'o' },
      force: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [action, ...extra] = positionals;
  if (action === undefined || !['status', 'rotate', 'drop-old-roots'].includes(action) || extra.length > 0) {
    throw new AmbitError(ErrorCode.USAGE, `expected status, rotate or drop-old-roots\n\n${CA_USAGE}`);
  }
  const format = parseOutputFormat(values.output);
  const state = loadState(s, values.name);
  const cp = (path: string, method: 'GET' | 'POST') =>
    httpInNetns(
      fabricNetns(state.cluster),
      CP_ADMIN_PORT,
      path,
      method,
      (why) => `the control plane did not answer (${why}); is it running? (ambit local status)`,
    ).then((body) => JSON.parse(body) as CaStatus);

  if (action === 'drop-old-roots' && !values.force) {
    const status = await cp(CA_ADMIN_PATHS.status, 'GET');
    const stale = (await proxyCerts(state)).filter((c) => c.root !== status.signingRoot);
    if (stale.length > 0) {
      throw new AmbitError(
        ErrorCode.CERTIFICATE,
        `not dropping old roots: ${stale.length} certificate(s) still chain to one, e.g. ${stale[0]!.identity} on ${stale[0]!.node}; they move to the signing root as they renew (at half life). Run again later, or pass --force`,
      );
    }
  }
  const status =
    action === 'status'
      ? await cp(CA_ADMIN_PATHS.status, 'GET')
      : await cp(action === 'rotate' ? CA_ADMIN_PATHS.rotate : CA_ADMIN_PATHS.dropOldRoots, 'POST');
  const certs = await proxyCerts(state);
  if (format === 'json' || format === 'yaml') {
    process.stdout.write(`${render({ ...status, certificates: certs }, format)}\n`);
    return 0;
  }
  const bySerial = new Map<string, number>();
  for (const c of certs) bySerial.set(c.root, (bySerial.get(c.root) ?? 0) + 1);
  const out = table(
    ['ROOT', 'SIGNING', 'NOT BEFORE', 'NOT AFTER', 'WORKLOAD CERTS'],
    status.trusted.map((r) => [
      r.serial.slice(0, 16),
      r.signing ? 'yes' : 'no',
      r.notBefore,
      r.notAfter,
      String(bySerial.get(r.serial) ?? 0),
    ]),
  );
  const note =
    action === 'rotate'
      ? '\n\nrotated: new certificates come from the new root; the old root stays trusted. When no proxy holds a certificate of an old root (WORKLOAD CERTS above), run `ambit ca drop-old-roots`.'
      : action === 'drop-old-roots'
        ? '\n\nold roots dropped: peers now trust only the signing root.'
        : '';
  process.stdout.write(`${out}${note}\n`);
  return 0;
}

/** Which root each workload certificate of every node proxy chains to. */
async function proxyCerts(state: LocalState): Promise<ProxyCert[]> {
  const out: ProxyCert[] = [];
  for (const node of state.nodes) {
    const dump = await configDump(state, node.name);
    for (const c of dump.certificates) out.push({ node: node.name, identity: c.identity, root: c.root });
  }
  return out;
}
