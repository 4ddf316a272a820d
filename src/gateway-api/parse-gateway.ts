import type { Fields } from '../config/field-reader.js';
import { show } from '../config/issue.js';
import type { Labels } from '../config/kube-types.js';
import { dns1123Subdomain, labelValue, qualifiedName } from '../config/validators.js';
import { hostname, sectionName } from './parse-common.js';
import { type Gateway, type Listener, WAYPOINT_CLASS } from './types.js';

/* Gateway (`gateway.networking.k8s.io/v1`) -> Gateway, with the CRD's defaults and rules. */

const PROTOCOL =
  /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$/;
const UNKNOWN = 'a Gateway with a field Ambit does not read is rejected';

function allowedRoutes(f: Fields | undefined): Listener['allowedRoutes'] {
  if (f === undefined) return { from: 'Same' };
  f.rejectUnknown(['namespaces', 'kinds'], UNKNOWN);
  f.objects('kinds', (k) => {
    k.rejectUnknown(['group', 'kind'], UNKNOWN);
    k.string('group', { allowEmpty: true });
    k.string('kind', { required: true });
    return undefined;
  });
  const ns = f.object('namespaces');
  if (ns === undefined) return { from: 'Same' };
  ns.rejectUnknown(['from', 'selector'], UNKNOWN);
  const from = ns.oneOf('from', ['Same', 'All', 'Selector'] as const) ?? 'Same';
  if (from !== 'Selector') {
    if (ns.has('selector')) ns.error('selector', 'is only read when from is Selector');
    return { from };
  }
  const sel = ns.object('selector', { required: true });
  sel?.rejectUnknown(['matchLabels'], UNKNOWN);
  if (sel?.has('matchExpressions')) sel.error('matchExpressions', 'is not supported; use matchLabels');
  const selector: Labels =
    sel?.stringMap('matchLabels', { keyCheck: qualifiedName, valueCheck: labelValue }) ?? {};
  return { from, selector };
}

function listener(f: Fields): Listener | undefined {
  f.rejectUnknown(['name', 'hostname', 'port', 'protocol', 'tls', 'allowedRoutes'], UNKNOWN);
  const name = f.string('name', { required: true, check: sectionName });
  const port = f.int('port', { required: true, min: 1, max: 65535 });
  const protocol = f.string('protocol', {
    required: true,
    check: (v) => (v.length <= 255 && PROTOCOL.test(v) ? undefined : 'is not a protocol name'),
  });
  const host = f.string('hostname', { check: hostname });
  if (f.has('tls')) {
    if (protocol === 'HTTP' || protocol === 'TCP' || protocol === 'UDP' || protocol === 'HBONE')
      f.error('tls', `must not be set for protocol ${protocol}`);
    else f.error('tls', 'is not supported by Ambit');
  }
  if (host !== undefined && (protocol === 'TCP' || protocol === 'UDP'))
    f.error('hostname', `must not be set for protocol ${protocol}`);
  const routes = allowedRoutes(f.object('allowedRoutes'));
  if (name === undefined || port === undefined || protocol === undefined) return undefined;
  return { name, port, protocol, ...(host === undefined ? {} : { hostname: host }), allowedRoutes: routes };
}

/** Reads a Gateway spec. Returns undefined when any error was reported. */
export function parseGateway(
  spec: Fields,
  meta: {
    readonly namespace: string;
    readonly name: string;
    readonly labels: Labels;
    readonly annotations?: Labels;
  },
): Gateway | undefined {
  const { f, errors } = spec.counted();
  f.rejectUnknown(
    [
      'gatewayClassName',
      'listeners',
      'addresses',
      'infrastructure',
      'allowedListeners',
      'tls',
      'defaultScope',
    ],
    UNKNOWN,
  );
  for (const k of ['allowedListeners', 'tls', 'defaultScope'])
    if (f.has(k)) f.error(k, 'is not supported by Ambit');
  const gatewayClassName = f.string('gatewayClassName', { required: true, check: dns1123Subdomain });
  const listeners = f.objects('listeners', listener, { required: true, nonEmpty: true, max: 64 }) ?? [];
  const names = new Set<string>();
  const combos = new Set<string>();
  listeners.forEach((l, i) => {
    if (names.has(l.name))
      f.sink.error(f.at('listeners').concat(i, 'name'), `${show(l.name)} is used by another listener`);
    names.add(l.name);
    const combo = `${l.port}/${l.protocol}/${l.hostname ?? ''}`;
    if (combos.has(combo))
      f.sink.error(f.at('listeners').concat(i), 'has the port, protocol and hostname of another listener');
    combos.add(combo);
  });
  const addresses =
    f.objects('addresses', (a) => {
      a.rejectUnknown(['type', 'value'], UNKNOWN);
      const type = a.string('type') ?? 'IPAddress';
      const value = a.string('value', { required: true });
      return value === undefined ? undefined : { type, value };
    }) ?? [];
  const infra = f.object('infrastructure');
  if (infra !== undefined) {
    infra.rejectUnknown(['labels', 'annotations', 'parametersRef'], UNKNOWN);
    infra.stringMap('labels', { keyCheck: qualifiedName, valueCheck: labelValue });
    infra.stringMap('annotations', { keyCheck: qualifiedName });
    if (infra.has('parametersRef')) infra.error('parametersRef', 'is not supported by Ambit');
  }
  if (
    gatewayClassName === WAYPOINT_CLASS &&
    !listeners.some((l) => l.protocol === 'HBONE' && l.port === 15008)
  )
    f.error(
      'listeners',
      `a waypoint (class ${WAYPOINT_CLASS}) needs a listener {name: mesh, port: 15008, protocol: HBONE}`,
    );
  if (errors() > 0 || gatewayClassName === undefined) return undefined;
  return { ...meta, gatewayClassName, listeners, addresses };
}
