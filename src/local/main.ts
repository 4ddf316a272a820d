import { parseArgs } from 'node:util';
import { runLocalDaemon } from './app.js';

/**
 * The local cluster daemon: started detached by `ambit local up`, stopped by `ambit local down`
 * (SIGTERM). Flags only; the CLI has already resolved configuration and validated the manifests.
 */
const { values } = parseArgs({
  options: {
    cluster: { type: 'string' },
    manifests: { type: 'string' },
    nodes: { type: 'string' },
    'run-root': { type: 'string' },
    'cgroup-root': { type: 'string' },
    'bpf-root': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    'cert-ttl': { type: 'string' },
  },
  strict: true,
});

for (const k of ['cluster', 'manifests', 'nodes', 'run-root', 'cgroup-root', 'bpf-root'] as const) {
  if (values[k] === undefined) {
    process.stderr.write(`ambit local daemon: --${k} is required (it is started by \`ambit local up\`)\n`);
    process.exit(2);
  }
}

await runLocalDaemon({
  cluster: values.cluster!,
  manifests: values.manifests!,
  nodes: Number(values.nodes),
  runRoot: values['run-root']!,
  cgroupRoot: values['cgroup-root']!,
  bpfRoot: values['bpf-root']!,
  logLevel: values['log-level'] as 'info',
  ...(values['cert-ttl'] === undefined ? {} : { certTtl: values['cert-ttl'] }),
});
